// 2x2 stride-2 pooling with floor ("valid") output size, forward and backward. NHWC.
//   max_fwd / avg_fwd: y[n, oy, ox, c] = max / mean of x[n, 2oy+a, 2ox+b, c], a, b in {0, 1}
//   max_bwd: dx = dy of the window at the window's first maximum (row-major), else 0
//   max_bwd4: max_bwd for 4 channels of a whole window per invocation (c a multiple of 4)
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

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

// One invocation per window of ceil(h/2) x ceil(w/2) and 4 channels (p.total = their
// count): it reads the window once and writes all of its input pixels; windows over the row
// or column that the floor drops (odd h or w) write zeros.
@compute @workgroup_size(256, 1, 1)
fn max_bwd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.total) { return; }
    let cq = p.c / 4u;
    let wh = (p.w + 1u) / 2u;
    let hh = (p.h + 1u) / 2u;
    let c4 = i % cq;
    let t = i / cq;
    let ox = t % wh;
    let t2 = t / wh;
    let oy = t2 % hh;
    let img = t2 / hh;
    let i0 = (at(img, 2u * oy, 2u * ox, 0u)) / 4u + c4;
    let row = p.w * cq;
    if (oy >= p.ho || ox >= p.wo) {
        // The dropped row or column: every pixel of this window inside the image gets 0.
        for (var k = 0u; k < 4u; k++) {
            if (2u * oy + k / 2u < p.h && 2u * ox + k % 2u < p.w) {
                y4[i0 + (k / 2u) * row + (k % 2u) * cq] = vec4<f32>(0.0);
            }
        }
        return;
    }
    let v0 = x4[i0];
    let v1 = x4[i0 + cq];
    let v2 = x4[i0 + row];
    let v3 = x4[i0 + row + cq];
    // First maximum in row-major order, per channel.
    var best = v0;
    var arg = vec4<u32>(0u);
    let m1 = v1 > best; best = select(best, v1, m1); arg = select(arg, vec4<u32>(1u), m1);
    let m2 = v2 > best; best = select(best, v2, m2); arg = select(arg, vec4<u32>(2u), m2);
    let m3 = v3 > best; arg = select(arg, vec4<u32>(3u), m3);
    let g = dy4[((img * p.ho + oy) * p.wo + ox) * cq + c4];
    let zero = vec4<f32>(0.0);
    y4[i0] = select(zero, g, arg == vec4<u32>(0u));
    y4[i0 + cq] = select(zero, g, arg == vec4<u32>(1u));
    y4[i0 + row] = select(zero, g, arg == vec4<u32>(2u));
    y4[i0 + row + cq] = select(zero, g, arg == vec4<u32>(3u));
}
