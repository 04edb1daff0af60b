// Element-wise kernels over flat float32 arrays.
//   add         - y = a + b (residual connections)
//   output_tanh - y = tanh(x) * scale + offset (the fast network's output mapping, 150 and 127.5)

struct Params {
    len: u32,
    scale: f32,
    offset: f32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256, 1, 1)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    y[i] = a[i] + b[i];
}

// tanh written out so that large |x| saturates instead of overflowing exp() to inf/inf.
fn stable_tanh(v: f32) -> f32 {
    let t = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - t) / (1.0 + t);
}

@compute @workgroup_size(256, 1, 1)
fn output_tanh(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    y[i] = stable_tanh(a[i]) * p.scale + p.offset;
}

// Backward of output_tanh: y = dy * scale * (1 - tanh(x)^2), with a = x and b = dy.
@compute @workgroup_size(256, 1, 1)
fn output_tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    let t = stable_tanh(a[i]);
    y[i] = b[i] * p.scale * (1.0 - t * t);
}
