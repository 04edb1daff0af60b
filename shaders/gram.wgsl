// Gram matrix of a feature map as a tiled GEMM: F = x viewed as [H*W, C] (one image),
//   G[i, j] = scale * sum_k F[k, i] * F[k, j]      (scale = 1 / (H*W*C))
// Each workgroup computes a 16x16 tile of G with 2x2 outputs per invocation (8x8
// invocations); K is staged through workgroup memory in steps of 16. The backward
// (dF = F · D with D = dL/dG + dL/dGᵀ, scaled) is a 1x1 convolution (shaders/conv2d/).
// On CPU drivers the Gram matrix is instead a split-K product of gemm.wgsl's `rows` kernel
// (F^T F over chunks of pixels), whose partial matrices `sum_splits` adds up.

const T: u32 = 16u;
const BK: u32 = 16u;

struct Params {
    k: u32, c: u32, scale: f32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> f: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;

var<workgroup> ta: array<f32, 256>; // [BK][T] rows k, columns i
var<workgroup> tb: array<f32, 256>; // [BK][T] rows k, columns j

@compute @workgroup_size(8, 8, 1)
fn forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let i0 = wid.y * T;
    let j0 = wid.x * T;
    let tid = lid.y * 8u + lid.x;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var e = tid; e < BK * T; e += 64u) {
            let kk = k0 + e / T;
            let col = e % T;
            var va = 0.0;
            var vb = 0.0;
            if (kk < p.k) {
                if (i0 + col < p.c) { va = f[kk * p.c + i0 + col]; }
                if (j0 + col < p.c) { vb = f[kk * p.c + j0 + col]; }
            }
            ta[e] = va;
            tb[e] = vb;
        }
        workgroupBarrier();
        for (var kl = 0u; kl < BK; kl++) {
            let a0 = ta[kl * T + lid.y];
            let a1 = ta[kl * T + lid.y + 8u];
            let b0 = tb[kl * T + lid.x];
            let b1 = tb[kl * T + lid.x + 8u];
            acc[0] = fma(a0, b0, acc[0]);
            acc[1] = fma(a0, b1, acc[1]);
            acc[2] = fma(a1, b0, acc[2]);
            acc[3] = fma(a1, b1, acc[3]);
        }
        workgroupBarrier();
    }
    for (var q = 0u; q < 4u; q++) {
        let i = i0 + lid.y + (q / 2u) * 8u;
        let j = j0 + lid.x + (q % 2u) * 8u;
        if (i < p.c && j < p.c) { g[i * p.c + j] = acc[q] * p.scale; }
    }
}

// G = scale * the sum of p.k partial C x C matrices stored back to back in `f`, in order
// (deterministic).
@compute @workgroup_size(256, 1, 1)
fn sum_splits(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let e = gid.x + gid.y * nwg.x * 256u;
    let cc = p.c * p.c;
    if (e >= cc) { return; }
    var s = 0.0;
    for (var k = 0u; k < p.k; k++) { s += f[k * cc + e]; }
    g[e] = s * p.scale;
}
