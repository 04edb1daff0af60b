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
// the subgroup build, #if SUBGROUP below, loads it with 4 loads per subgroup and hands
// it round with `subgroupShuffle`). Rows past m read row m - 1 (every invocation of a
// subgroup runs the same loop) and are not stored.
// With the pipeline constant TRANS_A, A is stored transposed (4*k4 x m, m a multiple of 8):
// an invocation loads the 4 x 2 vec4s of its 8 rows at each step and transposes them in
// registers (the Gram matrix F^T F of NHWC features F, where F^T is what is stored).
//
// `tiled` (GPUs): 16 x 16 invocations, a 64 x 64 tile of C per workgroup, A and B tiles of
// depth 16 in workgroup memory, 4 rows x 1 vec4 per invocation; n4 a multiple of 8 too.
//
// Built by src/ops/conv_shaders.rs with the preprocessor of src/gpu/wgsl.rs (flag SUBGROUP).

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

#if SUBGROUP
// The subgroup build (SUBGROUP feature, subgroups of at least 8 invocations). Every
// invocation needs the same 4 x 8 vec4s of B per step (they differ by row of A, not by
// column): invocation l of each 8 loads column n0 + l of the 4 rows (4 loads, where the plain
// build's invocations make 32 each) and `subgroupShuffle` with a constant index (one vector
// shuffle on lavapipe) hands them round.
fn block(i: u32, lane: u32) -> Block {
    let l = lane % 8u;
    let v0 = b[i + l];
    let v1 = b[i + p.n4 + l];
    let v2 = b[i + 2u * p.n4 + l];
    let v3 = b[i + 3u * p.n4 + l];
    return Block(
#for J in 0..8
        mat4x4<f32>(subgroupShuffle(v0, {{J}}u), subgroupShuffle(v1, {{J}}u), subgroupShuffle(v2, {{J}}u), subgroupShuffle(v3, {{J}}u)),
#endfor
    );
}

// Every invocation of a subgroup must run the loop for the others' loads of B: return only
// when the whole subgroup is past the last row.
fn retired(past: bool) -> bool {
    return subgroupAll(past);
}
#else
fn col(i: u32) -> mat4x4<f32> {
    return mat4x4<f32>(b[i], b[i + p.n4], b[i + 2u * p.n4], b[i + 3u * p.n4]);
}

fn block(i: u32, lane: u32) -> Block {
    return Block(
        col(i),
#for J in 1..8
        col(i + {{J}}u),
#endfor
    );
}

// Whether an invocation whose rows are all past m may return at once.
fn retired(past: bool) -> bool {
    return past;
}
#endif

fn store(row: u32, o: u32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>) {
    if (row >= p.m) { return; }
    c[o] = v0; c[o + 1u] = v1; c[o + 2u] = v2; c[o + 3u] = v3;
    c[o + 4u] = v4; c[o + 5u] = v5; c[o + 6u] = v6; c[o + 7u] = v7;
}

@compute @workgroup_size(64, 1, 1)
fn rows(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
#if SUBGROUP
    @builtin(subgroup_invocation_id) lane: u32,
#else
    @builtin(local_invocation_index) lane: u32, // unused
#endif
) {
    let r0 = (wid.x * 64u + lid.x) * RM;
    let n0 = wid.y * select(8u, 16u, N16);
    // (The subgroup build returns only when the whole subgroup is past the last row.)
    if (retired(r0 >= p.m)) { return; }
    let last = p.m - 1u;
#for I in 0..8
    let a{{I}} = wid.z * p.a_batch + min(r0 + {{I}}u, last) * p.k4;
#endfor
    // TRANS_A: vec4 r0 / 4 of A's transposed rows (m / 4 vec4s each).
    let m4 = p.m / 4u;
    let at = wid.z * p.a_batch + r0 / 4u;
    // Plain variables rather than arrays, so that CPU compilers keep them in registers.
    // c: columns n0 .. n0 + 31; with N16, d: columns n0 + 32 .. n0 + 63.
#for I in 0..8
#for J in 0..8
    var c{{I}}{{J}} = vec4<f32>(0.0);
#endfor
#endfor
#for I in 0..8
#for J in 0..8
    var d{{I}}{{J}} = vec4<f32>(0.0);
#endfor
#endfor
    var bi = wid.z * p.b_batch + n0;
    for (var kk = 0u; kk < p.k4; kk++) {
        let w = block(bi, lane);
#for I in 0..8
        var x{{I}}: vec4<f32>;
#endfor
        // TRANS_A is a pipeline constant: one branch folds away.
        if (TRANS_A) {
            // Columns: A's rows r0.. at k = 4kk + j; transposed: row r's 4 values of k.
            let t = at + 4u * kk * m4;
            let lo = transpose(mat4x4<f32>(a[t], a[t + m4], a[t + 2u * m4], a[t + 3u * m4]));
            let hi = transpose(mat4x4<f32>(a[t + 1u], a[t + m4 + 1u], a[t + 2u * m4 + 1u], a[t + 3u * m4 + 1u]));
#for I in 0..4
            x{{I}} = lo[{{I}}];
#endfor
#for I in 0..4
            x{{I+4}} = hi[{{I}}];
#endfor
        } else {
#for I in 0..8
            x{{I}} = a[a{{I}} + kk];
#endfor
        }
#for I in 0..8
#for J in 0..8
        c{{I}}{{J}} += w.m{{J}} * x{{I}};
#endfor
#endfor
        // N16 is a pipeline constant: without it this folds away.
        if (N16) {
            let v = block(bi + 8u, lane);
#for I in 0..8
#for J in 0..8
            d{{I}}{{J}} += v.m{{J}} * x{{I}};
#endfor
#endfor
        }
        bi += 4u * p.n4;
    }
    let o = wid.z * p.c_batch + r0 * p.n4 + n0;
    store(r0, o, c00, c01, c02, c03, c04, c05, c06, c07);
#for I in 1..8
    store(r0 + {{I}}u, o + {{I}}u * p.n4, c{{I}}0, c{{I}}1, c{{I}}2, c{{I}}3, c{{I}}4, c{{I}}5, c{{I}}6, c{{I}}7);
#endfor
    if (N16) {
        store(r0, o + 8u, d00, d01, d02, d03, d04, d05, d06, d07);
#for I in 1..8
        store(r0 + {{I}}u, o + {{I}}u * p.n4 + 8u, d{{I}}0, d{{I}}1, d{{I}}2, d{{I}}3, d{{I}}4, d{{I}}5, d{{I}}6, d{{I}}7);
#endfor
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
