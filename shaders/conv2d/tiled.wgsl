// `main`: the convolution as an implicit GEMM over workgroup tiles (GPUs). The GEMM is
//   out[m, co] = sum_k A[m, k] * B[k, co]      m = (n, oy, ox),  k = (ky, kx, ci)
// where A is gathered from the input on the fly (never materialised) and B is the kernel.
//
// Each workgroup computes a BM x BN output tile (BM = 4 * WG_Y pixels, BN = 4 * WG_X
// channels); each invocation a 4 x 4 register block. A and B tiles of depth BK are
// staged in workgroup memory. The tile shape is chosen per pipeline through the
// override constants of common.wgsl; the problem shape comes from the uniform `p`.

var<workgroup> a_tile: array<hf, BK * TM * WG_Y>;   // [BK][BM]
var<workgroup> b_tile: array<hf, BK * TN * WG_X>;   // [BK][BN]
var<workgroup> m_org: array<Origin, TM * WG_Y>;      // the tile's output pixels

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let bm = TM * WG_Y;
    let bn = TN * WG_X;
    let threads = WG_X * WG_Y;
    let tid = lid.y * WG_X + lid.x;
    let m_count = p.n * p.ho * p.wo;
    let k_count = p.kh * p.kw * p.cin;
    let m0 = (wid.y + wid.z * nwg.y) * bm;
    let n0 = wid.x * bn;
    if (m0 >= m_count) { return; } // uniform across the workgroup

    // Decode the tile's output pixels once.
    for (var i = tid; i < bm; i += threads) { m_org[i] = origin(m0 + i, m_count); }

    // `part` sums in hf; with FLUSH it is added into `acc` after every K step.
    var acc: array<array<f32, TN>, TM>;
    var part: array<array<hf, TN>, TM>;
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; part[i][j] = hf(0.0); }
    }
    workgroupBarrier();

    // This invocation always loads the same k column of the A tile.
    let a_k = tid % BK;
    let a_m_step = threads / BK;
    for (var k0 = 0u; k0 < k_count; k0 += BK) {
        // A tile: [BK][BM], gathered from the input.
        let k = k0 + a_k;
        let k_ok = k < k_count;
        let ci = k % p.cin;
        let tap = k / p.cin;
        let kx = i32(tap % p.kw);
        let ky = i32(tap / p.kw);
        for (var ml = tid / BK; ml < bm; ml += a_m_step) {
            var v = 0.0;
            if (k_ok) { v = gather(m_org[ml], ky, kx, ci); }
            a_tile[a_k * bm + ml] = hf(v);
        }
        // B tile: [BK][BN], rows of the HWIO kernel.
        for (var e = tid; e < BK * bn; e += threads) {
            let kl = e / bn;
            let nl = e % bn;
            let kk = k0 + kl;
            let nn = n0 + nl;
            var v = 0.0;
            if (kk < k_count && nn < p.cout) { v = wt[kk * p.cout + nn]; }
            b_tile[e] = hf(v);
        }
        workgroupBarrier();

        for (var kl = 0u; kl < BK; kl++) {
            var a: array<hf, TM>;
            var b: array<hf, TN>;
            for (var i = 0u; i < TM; i++) { a[i] = a_tile[kl * bm + lid.y + i * WG_Y]; }
            for (var j = 0u; j < TN; j++) { b[j] = b_tile[kl * bn + lid.x + j * WG_X]; }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) { part[i][j] = fma(a[i], b[j], part[i][j]); }
            }
        }
        if (FLUSH) {
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) { acc[i][j] += f32(part[i][j]); part[i][j] = hf(0.0); }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] += f32(part[i][j]); }
    }

    for (var i = 0u; i < TM; i++) {
        let m = m0 + lid.y + i * WG_Y;
        if (m >= m_count) { continue; }
        for (var j = 0u; j < TN; j++) {
            let n = n0 + lid.x + j * WG_X;
            if (n >= p.cout) { continue; }
            var v = acc[i][j];
            if ((p.flags & FLAG_BIAS) != 0u) { v += bias[n]; }
            if ((p.flags & FLAG_RELU) != 0u) { v = max(v, 0.0); }
            y[m * p.cout + n] = v;
        }
    }
}
