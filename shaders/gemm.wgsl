// Batched matrix product C[b] = A[b] B[b] (b = workgroup z), float32, all matrices row-major
// and read as vec4s: A is m x 4*k4, B is 4*k4 x 4*n4, C is m x 4*n4; the batches lie
// a_batch, b_batch and c_batch vec4s apart. Used by the Winograd convolution
// (shaders/winograd.wgsl: 36 products of transformed tiles and kernels per convolution).
//
// `rows` (no workgroup memory; CPU drivers): each invocation computes RM = 8 rows x 8 vec4s
// (32 columns) of C, so n4 must be a multiple of 8, or with the pipeline constant N16 8 rows x
// 16 vec4s where n4 is a multiple of 16 (10 % faster on lavapipe). lavapipe runs every storage load whose
// address differs between invocations as a loop over the SIMD lanes; per step of 4 along k an
// invocation loads 8 vec4s of A and the 4 x 8 vec4 block of B (the same for every invocation:
// the subgroup build, shaders/gemm_subgroup.wgsl, loads it with 4 loads per subgroup and hands
// it round with `subgroupShuffle`). Rows past m read row m - 1 (every invocation of a
// subgroup runs the same loop) and are not stored.
// With the pipeline constant TRANS_A, A is stored transposed (4*k4 x m, m a multiple of 8):
// an invocation loads the 4 x 2 vec4s of its 8 rows at each step and transposes them in
// registers (the Gram matrix F^T F of NHWC features F, where F^T is what is stored).
//
// `tiled` (GPUs): 16 x 16 invocations, a 64 x 64 tile of C per workgroup, A and B tiles of
// depth 16 in workgroup memory, 4 rows x 1 vec4 per invocation; n4 a multiple of 8 too.

struct Params {
    m: u32, k4: u32, n4: u32, _p0: u32,
    a_batch: u32, b_batch: u32, c_batch: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

const RM: u32 = 8u;
override N16: bool = false; // `rows`: 16 vec4s (64 columns) per invocation, n4 a multiple of 16
override TRANS_A: bool = false; // `rows`: A stored as its transpose, m a multiple of 8

// Rows 4kk..4kk+3 of B, vec4 columns n0+j (j = 0..7), as matrices whose columns are those
// rows: `m * x` sums x.x * row 0 + ... + x.w * row 3.
struct Block {
    m0: mat4x4<f32>, m1: mat4x4<f32>, m2: mat4x4<f32>, m3: mat4x4<f32>,
    m4: mat4x4<f32>, m5: mat4x4<f32>, m6: mat4x4<f32>, m7: mat4x4<f32>,
}

// subgroup: begin (the subgroup build puts shaders/gemm_subgroup.wgsl in place of this)

fn col(i: u32) -> mat4x4<f32> {
    return mat4x4<f32>(b[i], b[i + p.n4], b[i + 2u * p.n4], b[i + 3u * p.n4]);
}

fn block(i: u32, lane: u32) -> Block {
    return Block(col(i), col(i + 1u), col(i + 2u), col(i + 3u), col(i + 4u), col(i + 5u), col(i + 6u), col(i + 7u));
}

// Whether an invocation whose rows are all past m may return at once.
fn retired(past: bool) -> bool {
    return past;
}

// subgroup: end

fn store(row: u32, o: u32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>) {
    if (row >= p.m) { return; }
    c[o] = v0; c[o + 1u] = v1; c[o + 2u] = v2; c[o + 3u] = v3;
    c[o + 4u] = v4; c[o + 5u] = v5; c[o + 6u] = v6; c[o + 7u] = v7;
}

@compute @workgroup_size(64, 1, 1)
fn rows(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32, // unused; the subgroup build: subgroup_invocation_id
) {
    let r0 = (wid.x * 64u + lid.x) * RM;
    let n0 = wid.y * select(8u, 16u, N16);
    // (The subgroup build returns only when the whole subgroup is past the last row.)
    if (retired(r0 >= p.m)) { return; }
    let last = p.m - 1u;
    let a0 = wid.z * p.a_batch + min(r0 + 0u, last) * p.k4;
    let a1 = wid.z * p.a_batch + min(r0 + 1u, last) * p.k4;
    let a2 = wid.z * p.a_batch + min(r0 + 2u, last) * p.k4;
    let a3 = wid.z * p.a_batch + min(r0 + 3u, last) * p.k4;
    let a4 = wid.z * p.a_batch + min(r0 + 4u, last) * p.k4;
    let a5 = wid.z * p.a_batch + min(r0 + 5u, last) * p.k4;
    let a6 = wid.z * p.a_batch + min(r0 + 6u, last) * p.k4;
    let a7 = wid.z * p.a_batch + min(r0 + 7u, last) * p.k4;
    // TRANS_A: vec4 r0 / 4 of A's transposed rows (m / 4 vec4s each).
    let m4 = p.m / 4u;
    let at = wid.z * p.a_batch + r0 / 4u;
    // Plain variables rather than arrays, so that CPU compilers keep them in registers.
    var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0); var c02 = vec4<f32>(0.0); var c03 = vec4<f32>(0.0); var c04 = vec4<f32>(0.0); var c05 = vec4<f32>(0.0); var c06 = vec4<f32>(0.0); var c07 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0); var c16 = vec4<f32>(0.0); var c17 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0); var c22 = vec4<f32>(0.0); var c23 = vec4<f32>(0.0); var c24 = vec4<f32>(0.0); var c25 = vec4<f32>(0.0); var c26 = vec4<f32>(0.0); var c27 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0); var c32 = vec4<f32>(0.0); var c33 = vec4<f32>(0.0); var c34 = vec4<f32>(0.0); var c35 = vec4<f32>(0.0); var c36 = vec4<f32>(0.0); var c37 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0); var c42 = vec4<f32>(0.0); var c43 = vec4<f32>(0.0); var c44 = vec4<f32>(0.0); var c45 = vec4<f32>(0.0); var c46 = vec4<f32>(0.0); var c47 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0); var c52 = vec4<f32>(0.0); var c53 = vec4<f32>(0.0); var c54 = vec4<f32>(0.0); var c55 = vec4<f32>(0.0); var c56 = vec4<f32>(0.0); var c57 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0); var c62 = vec4<f32>(0.0); var c63 = vec4<f32>(0.0); var c64 = vec4<f32>(0.0); var c65 = vec4<f32>(0.0); var c66 = vec4<f32>(0.0); var c67 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0); var c72 = vec4<f32>(0.0); var c73 = vec4<f32>(0.0); var c74 = vec4<f32>(0.0); var c75 = vec4<f32>(0.0); var c76 = vec4<f32>(0.0); var c77 = vec4<f32>(0.0);
    // With N16: columns n0 + 32 .. n0 + 63.
    var d00 = vec4<f32>(0.0); var d01 = vec4<f32>(0.0); var d02 = vec4<f32>(0.0); var d03 = vec4<f32>(0.0); var d04 = vec4<f32>(0.0); var d05 = vec4<f32>(0.0); var d06 = vec4<f32>(0.0); var d07 = vec4<f32>(0.0);
    var d10 = vec4<f32>(0.0); var d11 = vec4<f32>(0.0); var d12 = vec4<f32>(0.0); var d13 = vec4<f32>(0.0); var d14 = vec4<f32>(0.0); var d15 = vec4<f32>(0.0); var d16 = vec4<f32>(0.0); var d17 = vec4<f32>(0.0);
    var d20 = vec4<f32>(0.0); var d21 = vec4<f32>(0.0); var d22 = vec4<f32>(0.0); var d23 = vec4<f32>(0.0); var d24 = vec4<f32>(0.0); var d25 = vec4<f32>(0.0); var d26 = vec4<f32>(0.0); var d27 = vec4<f32>(0.0);
    var d30 = vec4<f32>(0.0); var d31 = vec4<f32>(0.0); var d32 = vec4<f32>(0.0); var d33 = vec4<f32>(0.0); var d34 = vec4<f32>(0.0); var d35 = vec4<f32>(0.0); var d36 = vec4<f32>(0.0); var d37 = vec4<f32>(0.0);
    var d40 = vec4<f32>(0.0); var d41 = vec4<f32>(0.0); var d42 = vec4<f32>(0.0); var d43 = vec4<f32>(0.0); var d44 = vec4<f32>(0.0); var d45 = vec4<f32>(0.0); var d46 = vec4<f32>(0.0); var d47 = vec4<f32>(0.0);
    var d50 = vec4<f32>(0.0); var d51 = vec4<f32>(0.0); var d52 = vec4<f32>(0.0); var d53 = vec4<f32>(0.0); var d54 = vec4<f32>(0.0); var d55 = vec4<f32>(0.0); var d56 = vec4<f32>(0.0); var d57 = vec4<f32>(0.0);
    var d60 = vec4<f32>(0.0); var d61 = vec4<f32>(0.0); var d62 = vec4<f32>(0.0); var d63 = vec4<f32>(0.0); var d64 = vec4<f32>(0.0); var d65 = vec4<f32>(0.0); var d66 = vec4<f32>(0.0); var d67 = vec4<f32>(0.0);
    var d70 = vec4<f32>(0.0); var d71 = vec4<f32>(0.0); var d72 = vec4<f32>(0.0); var d73 = vec4<f32>(0.0); var d74 = vec4<f32>(0.0); var d75 = vec4<f32>(0.0); var d76 = vec4<f32>(0.0); var d77 = vec4<f32>(0.0);
    var bi = wid.z * p.b_batch + n0;
    for (var kk = 0u; kk < p.k4; kk++) {
        let w = block(bi, lane);
        var x0: vec4<f32>; var x1: vec4<f32>; var x2: vec4<f32>; var x3: vec4<f32>;
        var x4: vec4<f32>; var x5: vec4<f32>; var x6: vec4<f32>; var x7: vec4<f32>;
        // TRANS_A is a pipeline constant: one branch folds away.
        if (TRANS_A) {
            // Columns: A's rows r0.. at k = 4kk + j; transposed: row r's 4 values of k.
            let t = at + 4u * kk * m4;
            let lo = transpose(mat4x4<f32>(a[t], a[t + m4], a[t + 2u * m4], a[t + 3u * m4]));
            let hi = transpose(mat4x4<f32>(a[t + 1u], a[t + m4 + 1u], a[t + 2u * m4 + 1u], a[t + 3u * m4 + 1u]));
            x0 = lo[0]; x1 = lo[1]; x2 = lo[2]; x3 = lo[3];
            x4 = hi[0]; x5 = hi[1]; x6 = hi[2]; x7 = hi[3];
        } else {
            x0 = a[a0 + kk]; x1 = a[a1 + kk]; x2 = a[a2 + kk]; x3 = a[a3 + kk];
            x4 = a[a4 + kk]; x5 = a[a5 + kk]; x6 = a[a6 + kk]; x7 = a[a7 + kk];
        }
        c00 += w.m0 * x0; c01 += w.m1 * x0; c02 += w.m2 * x0; c03 += w.m3 * x0; c04 += w.m4 * x0; c05 += w.m5 * x0; c06 += w.m6 * x0; c07 += w.m7 * x0;
        c10 += w.m0 * x1; c11 += w.m1 * x1; c12 += w.m2 * x1; c13 += w.m3 * x1; c14 += w.m4 * x1; c15 += w.m5 * x1; c16 += w.m6 * x1; c17 += w.m7 * x1;
        c20 += w.m0 * x2; c21 += w.m1 * x2; c22 += w.m2 * x2; c23 += w.m3 * x2; c24 += w.m4 * x2; c25 += w.m5 * x2; c26 += w.m6 * x2; c27 += w.m7 * x2;
        c30 += w.m0 * x3; c31 += w.m1 * x3; c32 += w.m2 * x3; c33 += w.m3 * x3; c34 += w.m4 * x3; c35 += w.m5 * x3; c36 += w.m6 * x3; c37 += w.m7 * x3;
        c40 += w.m0 * x4; c41 += w.m1 * x4; c42 += w.m2 * x4; c43 += w.m3 * x4; c44 += w.m4 * x4; c45 += w.m5 * x4; c46 += w.m6 * x4; c47 += w.m7 * x4;
        c50 += w.m0 * x5; c51 += w.m1 * x5; c52 += w.m2 * x5; c53 += w.m3 * x5; c54 += w.m4 * x5; c55 += w.m5 * x5; c56 += w.m6 * x5; c57 += w.m7 * x5;
        c60 += w.m0 * x6; c61 += w.m1 * x6; c62 += w.m2 * x6; c63 += w.m3 * x6; c64 += w.m4 * x6; c65 += w.m5 * x6; c66 += w.m6 * x6; c67 += w.m7 * x6;
        c70 += w.m0 * x7; c71 += w.m1 * x7; c72 += w.m2 * x7; c73 += w.m3 * x7; c74 += w.m4 * x7; c75 += w.m5 * x7; c76 += w.m6 * x7; c77 += w.m7 * x7;
        // N16 is a pipeline constant: without it this folds away.
        if (N16) {
            let v = block(bi + 8u, lane);
            d00 += v.m0 * x0; d01 += v.m1 * x0; d02 += v.m2 * x0; d03 += v.m3 * x0; d04 += v.m4 * x0; d05 += v.m5 * x0; d06 += v.m6 * x0; d07 += v.m7 * x0;
            d10 += v.m0 * x1; d11 += v.m1 * x1; d12 += v.m2 * x1; d13 += v.m3 * x1; d14 += v.m4 * x1; d15 += v.m5 * x1; d16 += v.m6 * x1; d17 += v.m7 * x1;
            d20 += v.m0 * x2; d21 += v.m1 * x2; d22 += v.m2 * x2; d23 += v.m3 * x2; d24 += v.m4 * x2; d25 += v.m5 * x2; d26 += v.m6 * x2; d27 += v.m7 * x2;
            d30 += v.m0 * x3; d31 += v.m1 * x3; d32 += v.m2 * x3; d33 += v.m3 * x3; d34 += v.m4 * x3; d35 += v.m5 * x3; d36 += v.m6 * x3; d37 += v.m7 * x3;
            d40 += v.m0 * x4; d41 += v.m1 * x4; d42 += v.m2 * x4; d43 += v.m3 * x4; d44 += v.m4 * x4; d45 += v.m5 * x4; d46 += v.m6 * x4; d47 += v.m7 * x4;
            d50 += v.m0 * x5; d51 += v.m1 * x5; d52 += v.m2 * x5; d53 += v.m3 * x5; d54 += v.m4 * x5; d55 += v.m5 * x5; d56 += v.m6 * x5; d57 += v.m7 * x5;
            d60 += v.m0 * x6; d61 += v.m1 * x6; d62 += v.m2 * x6; d63 += v.m3 * x6; d64 += v.m4 * x6; d65 += v.m5 * x6; d66 += v.m6 * x6; d67 += v.m7 * x6;
            d70 += v.m0 * x7; d71 += v.m1 * x7; d72 += v.m2 * x7; d73 += v.m3 * x7; d74 += v.m4 * x7; d75 += v.m5 * x7; d76 += v.m6 * x7; d77 += v.m7 * x7;
        }
        bi += 4u * p.n4;
    }
    let o = wid.z * p.c_batch + r0 * p.n4 + n0;
    store(r0, o, c00, c01, c02, c03, c04, c05, c06, c07);
    store(r0 + 1u, o + 1u * p.n4, c10, c11, c12, c13, c14, c15, c16, c17);
    store(r0 + 2u, o + 2u * p.n4, c20, c21, c22, c23, c24, c25, c26, c27);
    store(r0 + 3u, o + 3u * p.n4, c30, c31, c32, c33, c34, c35, c36, c37);
    store(r0 + 4u, o + 4u * p.n4, c40, c41, c42, c43, c44, c45, c46, c47);
    store(r0 + 5u, o + 5u * p.n4, c50, c51, c52, c53, c54, c55, c56, c57);
    store(r0 + 6u, o + 6u * p.n4, c60, c61, c62, c63, c64, c65, c66, c67);
    store(r0 + 7u, o + 7u * p.n4, c70, c71, c72, c73, c74, c75, c76, c77);
    if (N16) {
        store(r0, o + 8u, d00, d01, d02, d03, d04, d05, d06, d07);
        store(r0 + 1u, o + 1u * p.n4 + 8u, d10, d11, d12, d13, d14, d15, d16, d17);
        store(r0 + 2u, o + 2u * p.n4 + 8u, d20, d21, d22, d23, d24, d25, d26, d27);
        store(r0 + 3u, o + 3u * p.n4 + 8u, d30, d31, d32, d33, d34, d35, d36, d37);
        store(r0 + 4u, o + 4u * p.n4 + 8u, d40, d41, d42, d43, d44, d45, d46, d47);
        store(r0 + 5u, o + 5u * p.n4 + 8u, d50, d51, d52, d53, d54, d55, d56, d57);
        store(r0 + 6u, o + 6u * p.n4 + 8u, d60, d61, d62, d63, d64, d65, d66, d67);
        store(r0 + 7u, o + 7u * p.n4 + 8u, d70, d71, d72, d73, d74, d75, d76, d77);
    }
}

// ---------------------------------------------------------------------------------------
// `tiled`: A tile [64 rows][4 vec4s of k], B tile [16 rows of k][16 vec4s].

var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16, 1)
fn tiled(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tid = lid.y * 16u + lid.x;
    let r0 = wid.x * 64u;
    let n0 = wid.y * 16u;
    let last = p.m - 1u;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    // What this invocation loads: A row tid / 4, vec4 tid % 4 of the step; B row tid / 16,
    // vec4 column tid % 16.
    let a_row = wid.z * p.a_batch + min(r0 + tid / 4u, last) * p.k4;
    let b_col = n0 + tid % 16u;
    let b_ok = b_col < p.n4;
    for (var k0 = 0u; k0 < p.k4; k0 += 4u) {
        let ka = k0 + tid % 4u;
        a_tile[tid] = select(vec4<f32>(0.0), a[a_row + min(ka, p.k4 - 1u)], ka < p.k4);
        let kb = 4u * k0 + tid / 16u; // row of B
        let b_ok_k = b_ok && kb < 4u * p.k4;
        b_tile[tid] = select(vec4<f32>(0.0), b[wid.z * p.b_batch + min(kb, 4u * p.k4 - 1u) * p.n4 + min(b_col, p.n4 - 1u)], b_ok_k);
        workgroupBarrier();
        for (var q = 0u; q < 4u; q++) {
            let w = mat4x4<f32>(b_tile[(4u * q) * 16u + lid.x], b_tile[(4u * q + 1u) * 16u + lid.x], b_tile[(4u * q + 2u) * 16u + lid.x], b_tile[(4u * q + 3u) * 16u + lid.x]);
            for (var i = 0u; i < 4u; i++) {
                acc[i] += w * a_tile[(4u * lid.y + i) * 4u + q];
            }
        }
        workgroupBarrier();
    }
    let col = n0 + lid.x;
    if (col >= p.n4) { return; }
    for (var i = 0u; i < 4u; i++) {
        let row = r0 + 4u * lid.y + i;
        if (row < p.m) { c[wid.z * p.c_batch + row * p.n4 + col] = acc[i]; }
    }
}
