// The cooperative-matrix kernel `coop`, in the cooperative-matrix builds only (ENABLE_F16 and
// COOP; it uses common.wgsl's Params, bindings, `Origin`, `origin` and `gather`). S is the
// fragment size, 8 or 16 (the two sizes wgpu offers). Needs the
// EXPERIMENTAL_COOPERATIVE_MATRIX feature with that size for f16 A and B and f32 C (lavapipe
// in Mesa 26: 8x8x8; NVIDIA: 16x16x16), SUBGROUP, and one subgroup size (`SG`).
//
// The same implicit GEMM as `main`: out[m, co] = sum_k A[m, k] B[k, co], m = (n, oy, ox),
// k = (ky, kx, ci). A workgroup of 4 subgroups computes a CBM x CBN output tile; each
// subgroup a 2x2 block of S x S fragments, accumulated in f32 cooperative matrices (on
// GPUs, the matrix units). Per K step of CBK, all invocations gather the A tile from the
// input and the B tile from the kernel into workgroup memory as f16, and every subgroup loads
// its fragments from there. At the end the fragments go through workgroup memory once more
// so that bias, ReLU and the bounds of the output are applied per element.

const S: u32 = {{S}}u;         // fragment size
const CBM: u32 = 4u * S;    // output pixels per workgroup (2 subgroups x 2 fragments)
const CBN: u32 = 4u * S;    // output channels per workgroup
const CBK: u32 = 2u * S;    // K depth of one step

override SG: u32 = 32u;     // the adapter's subgroup size: the workgroup is 4 subgroups

var<workgroup> ca: array<f16, CBM * CBK>;  // A tile, row-major [m][k]
var<workgroup> cb: array<f16, CBK * CBN>;  // B tile, row-major [k][n]
var<workgroup> cc: array<f32, CBM * CBN>;  // output tile, row-major [m][n]
var<workgroup> c_org: array<Origin, CBM>;

@compute @workgroup_size(SG * 4u, 1, 1)
fn coop(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
) {
    let threads = SG * 4u;
    let m_count = p.n * p.ho * p.wo;
    let k_count = p.kh * p.kw * p.cin;
    let m0 = (wid.y + wid.z * nwg.y) * CBM;
    let n0 = wid.x * CBN;
    if (m0 >= m_count) { return; } // uniform across the workgroup

    for (var i = tid; i < CBM; i += threads) { c_org[i] = origin(m0 + i, m_count); }
    // This subgroup's block of the tile: rows rm.., columns cn..
    let rm = (sg / 2u) * 2u * S;
    let cn = (sg % 2u) * 2u * S;
    var c00 = coop_mat{{S}}x{{S}}<f32, C>();
    var c01 = coop_mat{{S}}x{{S}}<f32, C>();
    var c10 = coop_mat{{S}}x{{S}}<f32, C>();
    var c11 = coop_mat{{S}}x{{S}}<f32, C>();
    workgroupBarrier();

    for (var k0 = 0u; k0 < k_count; k0 += CBK) {
        for (var e = tid; e < CBM * CBK; e += threads) {
            let k = k0 + e % CBK;
            var v = 0.0;
            if (k < k_count) {
                let tap = k / p.cin;
                v = gather(c_org[e / CBK], i32(tap / p.kw), i32(tap % p.kw), k % p.cin);
            }
            ca[e] = f16(v);
        }
        for (var e = tid; e < CBK * CBN; e += threads) {
            let k = k0 + e / CBN;
            let n = n0 + e % CBN;
            var v = 0.0;
            if (k < k_count && n < p.cout) { v = wt[k * p.wcout + n]; }
            cb[e] = f16(v);
        }
        workgroupBarrier();
        for (var kf = 0u; kf < CBK; kf += S) {
            let a0 = coopLoadT<coop_mat{{S}}x{{S}}<f16, A>>(&ca[rm * CBK + kf], CBK);
            let a1 = coopLoadT<coop_mat{{S}}x{{S}}<f16, A>>(&ca[(rm + S) * CBK + kf], CBK);
            let b0 = coopLoadT<coop_mat{{S}}x{{S}}<f16, B>>(&cb[kf * CBN + cn], CBN);
            let b1 = coopLoadT<coop_mat{{S}}x{{S}}<f16, B>>(&cb[kf * CBN + cn + S], CBN);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        workgroupBarrier();
    }

    coopStoreT(c00, &cc[rm * CBN + cn], CBN);
    coopStoreT(c01, &cc[rm * CBN + cn + S], CBN);
    coopStoreT(c10, &cc[(rm + S) * CBN + cn], CBN);
    coopStoreT(c11, &cc[(rm + S) * CBN + cn + S], CBN);
    workgroupBarrier();
    for (var e = tid; e < CBM * CBN; e += threads) {
        let m = m0 + e / CBN;
        let n = n0 + e % CBN;
        if (m < m_count && n < p.cout) {
            var v = cc[e];
            if ((p.flags & FLAG_BIAS) != 0u) { v += bias[n]; }
            if ((p.flags & FLAG_RELU) != 0u) { v = max(v, 0.0); }
            y[m * p.cout + n] = v;
        }
    }
}
