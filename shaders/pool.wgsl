// 2x2 stride-2 pooling with floor ("valid") output size, forward and backward. NHWC.
//   max_fwd / avg_fwd: y[n, oy, ox, c] = max / mean of x[n, 2oy+a, 2ox+b, c], a, b in {0, 1}
//   max_bwd: dx = dy of the window at the window's first maximum (row-major), else 0
//   avg_bwd: dx = dy / 4 inside the pooled region; rows/columns dropped by the floor get 0

struct Params {
    n: u32, h: u32, w: u32, c: u32,
    ho: u32, wo: u32, total: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn at(img: u32, iy: u32, ix: u32, ch: u32) -> u32 {
    return ((img * p.h + iy) * p.w + ix) * p.c + ch;
}

@compute @workgroup_size(256, 1, 1)
fn max_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.total) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let ox = t % p.wo;
    let t2 = t / p.wo;
    let oy = t2 % p.ho;
    let img = t2 / p.ho;
    let a = x[at(img, 2u * oy, 2u * ox, ch)];
    let b = x[at(img, 2u * oy, 2u * ox + 1u, ch)];
    let c = x[at(img, 2u * oy + 1u, 2u * ox, ch)];
    let d = x[at(img, 2u * oy + 1u, 2u * ox + 1u, ch)];
    y[i] = max(max(a, b), max(c, d));
}

@compute @workgroup_size(256, 1, 1)
fn avg_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.total) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let ox = t % p.wo;
    let t2 = t / p.wo;
    let oy = t2 % p.ho;
    let img = t2 / p.ho;
    let a = x[at(img, 2u * oy, 2u * ox, ch)];
    let b = x[at(img, 2u * oy, 2u * ox + 1u, ch)];
    let c = x[at(img, 2u * oy + 1u, 2u * ox, ch)];
    let d = x[at(img, 2u * oy + 1u, 2u * ox + 1u, ch)];
    y[i] = ((a + b) + (c + d)) * 0.25;
}

// One invocation per input element (total = n*h*w*c); dy has the pooled shape.
@compute @workgroup_size(256, 1, 1)
fn max_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.total) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let ix = t % p.w;
    let t2 = t / p.w;
    let iy = t2 % p.h;
    let img = t2 / p.h;
    let oy = iy / 2u;
    let ox = ix / 2u;
    if (oy >= p.ho || ox >= p.wo) { y[i] = 0.0; return; }
    // First maximum of the window in row-major order.
    var best = x[at(img, 2u * oy, 2u * ox, ch)];
    var arg = 0u;
    for (var k = 1u; k < 4u; k++) {
        let v = x[at(img, 2u * oy + k / 2u, 2u * ox + k % 2u, ch)];
        if (v > best) { best = v; arg = k; }
    }
    let mine = (iy - 2u * oy) * 2u + (ix - 2u * ox);
    var g = 0.0;
    if (mine == arg) { g = dy[((img * p.ho + oy) * p.wo + ox) * p.c + ch]; }
    y[i] = g;
}

@compute @workgroup_size(256, 1, 1)
fn avg_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.total) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let ix = t % p.w;
    let t2 = t / p.w;
    let iy = t2 % p.h;
    let img = t2 / p.h;
    let oy = iy / 2u;
    let ox = ix / 2u;
    if (oy >= p.ho || ox >= p.wo) { y[i] = 0.0; return; }
    y[i] = dy[((img * p.ho + oy) * p.wo + ox) * p.c + ch] * 0.25;
}
