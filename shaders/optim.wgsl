// The Adam update over flat float32 arrays (other vector kernels: vecops.wgsl, reduce.wgsl).
//   adam:  m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//          x -= lr * (m / bc1) / (sqrt(v / bc2) + eps)     (bc = 1 - beta^t, from the host)

struct Params {
    len: u32, _p0: u32, _p1: u32, _p4: u32,
    lr: f32, b1: f32, b2: f32, eps: f32,
    bc1: f32, bc2: f32, _p2: f32, _p3: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// y = x (updated in place), a = gradient.
@compute @workgroup_size(256, 1, 1)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    let g = a[i];
    let mi = p.b1 * m[i] + (1.0 - p.b1) * g;
    let vi = p.b2 * v[i] + (1.0 - p.b2) * (g * g);
    m[i] = mi;
    v[i] = vi;
    y[i] = y[i] - p.lr * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
}
