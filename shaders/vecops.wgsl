// Vector kernels of the optimisers and of the VGG backward pass, flat float32 arrays.
//   axpy:     y = y + alpha * a
//   scale:    y = alpha * a
//   fill:     y = alpha
//   relu_bwd: y = (a > 0) ? b (+ c when flags & 1) : 0   (gradient through a ReLU with output a)
//   relu_bwd4: relu_bwd on vec4s (p.len counts vec4s; 3-4x fewer load instructions on lavapipe)

struct Params {
    len: u32, flags: u32, alpha: f32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256, 1, 1)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    y[i] = fma(p.alpha, a[i], y[i]);
}

@compute @workgroup_size(256, 1, 1)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    y[i] = p.alpha * a[i];
}

@compute @workgroup_size(256, 1, 1)
fn relu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    var g = b[i];
    if ((p.flags & 1u) != 0u) { g += c[i]; }
    y[i] = select(0.0, g, a[i] > 0.0);
}

@compute @workgroup_size(256, 1, 1)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    y[i] = p.alpha;
}

@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> c4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(256, 1, 1)
fn relu_bwd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    var g = b4[i];
    if ((p.flags & 1u) != 0u) { g += c4[i]; }
    y4[i] = select(vec4<f32>(0.0), g, a4[i] > vec4<f32>(0.0));
}
