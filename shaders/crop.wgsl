// Copies a window of an NHWC tensor, zero where it lies outside the source:
//   y[n, i, j, c] = x[n, y0 + i, x0 + j, c]     for i < h, j < w, c < c_out
// (0 where y0 + i >= src_h, x0 + j >= src_w or c >= src_c: padding).

struct Params {
    n: u32, src_h: u32, src_w: u32, c: u32,
    y0: u32, x0: u32, h: u32, w: u32,
    total: u32, src_c: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn crop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let ch = i % p.c;
    let t = i / p.c;
    let j = t % p.w;
    let t2 = t / p.w;
    let r = t2 % p.h;
    let img = t2 / p.h;
    let sy = p.y0 + r;
    let sx = p.x0 + j;
    var v = 0.0;
    if (sy < p.src_h && sx < p.src_w && ch < p.src_c) {
        v = x[((img * p.src_h + sy) * p.src_w + sx) * p.src_c + ch];
    }
    y[i] = v;
}
