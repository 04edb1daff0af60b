// Losses of optimisation style transfer and their gradients (NHWC, float32).
//   scaled_diff: y = scale * (a - b)        content gradient, style dL/dG
//   tv_partial:  per-workgroup sums of the total variation
//                sum_{i<H-1} (x[i+1,j]-x[i,j])^2 + sum_{j<W-1} (x[i,j+1]-x[i,j])^2
//   tv_grad:     y = g + scale * d tv / dx
//   combine:     s[1] = sum of content slots, s[2] = sum of style slots, s[0] = s1+s2+s3

struct Params {
    len: u32, h: u32, w: u32, c: u32,
    scale: f32, first: u32, n_content: u32, n_style: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> sh: array<f32, 256>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256, 1, 1)
fn scaled_diff(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    y[i] = p.scale * (a[i] - b[i]);
}

// Squared differences towards the next row and the next column of element i.
fn tv_at(i: u32) -> f32 {
    let x = i / p.c % p.w;
    let row = i / (p.c * p.w) % p.h;
    var s = 0.0;
    if (row + 1u < p.h) {
        let d = a[i + p.w * p.c] - a[i];
        s = d * d;
    }
    if (x + 1u < p.w) {
        let d = a[i + p.c] - a[i];
        s = fma(d, d, s);
    }
    return s;
}

@compute @workgroup_size(256, 1, 1)
fn tv_partial(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    var acc = 0.0;
    for (var i = wid.x * 256u + lid; i < p.len; i += nwg.x * 256u) { acc += tv_at(i); }
    sh[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) { sh[lid] += sh[lid + s]; }
        workgroupBarrier();
    }
    if (lid == 0u) { y[wid.x] = sh[0]; }
}

@compute @workgroup_size(256, 1, 1)
fn tv_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.len) { return; }
    let x = i / p.c % p.w;
    let row = i / (p.c * p.w) % p.h;
    let v = a[i];
    var d = 0.0;
    if (row > 0u) { d += v - a[i - p.w * p.c]; }
    if (row + 1u < p.h) { d -= a[i + p.w * p.c] - v; }
    if (x > 0u) { d += v - a[i - p.c]; }
    if (x + 1u < p.w) { d -= a[i + p.c] - v; }
    y[i] = b[i] + p.scale * 2.0 * d;
}

@compute @workgroup_size(1, 1, 1)
fn combine() {
    var c = 0.0;
    for (var k = 0u; k < p.n_content; k++) { c += y[p.first + k]; }
    var s = 0.0;
    for (var k = 0u; k < p.n_style; k++) { s += y[p.first + p.n_content + k]; }
    y[1] = c;
    y[2] = s;
    y[0] = (c + s) + y[3];
}
