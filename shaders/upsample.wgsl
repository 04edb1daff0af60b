// Nearest-neighbour upsampling of an NHWC tensor by an integer factor:
//   y[n, oy, ox, c] = x[n, oy / f, ox / f, c]

struct Params {
    n: u32, h: u32, w: u32, c: u32,
    factor: u32, total: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn nearest(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let ho = p.h * p.factor;
    let wo = p.w * p.factor;
    let ch = i % p.c;
    let t = i / p.c;
    let ox = t % wo;
    let t2 = t / wo;
    let oy = t2 % ho;
    let img = t2 / ho;
    y[i] = x[((img * p.h + oy / p.factor) * p.w + ox / p.factor) * p.c + ch];
}

// Backward of `nearest`: dx[n, y, x, c] = sum over the f x f block of dy above it.
// Here (h, w) is the size of dx and `total` its length; dy is [n, f*h, f*w, c].
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn nearest_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let wo = p.w * p.factor;
    let ch = i % p.c;
    let t = i / p.c;
    let ix = t % p.w;
    let t2 = t / p.w;
    let iy = t2 % p.h;
    let img = t2 / p.h;
    var s = 0.0;
    for (var a = 0u; a < p.factor; a++) {
        let row = (img * p.h + iy) * p.factor + a;
        for (var b = 0u; b < p.factor; b++) {
            s += dy[(row * wo + ix * p.factor + b) * p.c + ch];
        }
    }
    dx[i] = s;
}
