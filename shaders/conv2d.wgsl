// 2-D convolution and transposed convolution as an implicit GEMM over workgroup tiles.
//
// Tensors are NHWC float32. The GEMM is
//   out[m, co] = sum_k A[m, k] * B[k, co]      m = (n, oy, ox),  k = (ky, kx, ci)
// where A is gathered from the input on the fly (never materialised) and B is the
// kernel in HWIO layout [kh, kw, cin, cout], i.e. a row-major K x Cout matrix.
//
// Each workgroup computes a BM x BN output tile (BM = 4 * WG_Y pixels, BN = 4 * WG_X
// channels); each invocation a 4 x 4 register block. A and B tiles of depth BK are
// staged in workgroup memory. The tile shape is chosen per pipeline through the
// override constants below; the problem shape comes from the uniform `p`.
//
// Precision: tiles and products are of type `hf`. This file builds as written with
// `hf = f32`; wgstyle also builds it with `enable f16;` and `hf = f16` (the one substitution
// made by `conv2d_f16()` in src/gpu/kernels.rs) for adapters with SHADER_F16. Then FLUSH is
// true: products are summed in f16 over one K step (BK terms; 16 input channels in the
// direct kernel) and those partial sums in f32, so
// the error does not grow with the depth of the reduction. Global memory stays f32.

override WG_X: u32 = 16u;  // invocations along output channels
override WG_Y: u32 = 16u;  // invocations along output pixels
override BK: u32 = 16u;    // depth of one K step; WG_X * WG_Y must be a multiple of BK
override FLUSH: bool = false; // add the hf partial sums into f32 accumulators every 16 terms
override ROWS: bool = false;  // direct kernel: stride 1, pixels of one row, sliding window
override NARROW: bool = false; // direct kernel: at most 4 output channels (only the first 4 of 8)

alias hf = f32;

const TM: u32 = 4u;
const TN: u32 = 4u;

// mode
const MODE_ZERO_PAD: u32 = 0u;    // TF "SAME"/"VALID" style zero padding
const MODE_REFLECT_PAD: u32 = 1u; // reflection padding (PyTorch ReflectionPad2d)
const MODE_TRANSPOSED: u32 = 2u;  // conv2d_transpose: out[oy*s - pad + ky] += in[oy] * w
// flags
const FLAG_BIAS: u32 = 1u;
const FLAG_RELU: u32 = 2u;

struct Params {
    n: u32, h: u32, w: u32, cin: u32,
    ho: u32, wo: u32, cout: u32, kh: u32,
    kw: u32, stride: u32, pad_t: i32, pad_l: i32,
    mode: u32, flags: u32,
    wcout: u32, // row length of the kernel: cout, or cout padded to a multiple of 4 (vec4 bodies)
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> a_tile: array<hf, BK * TM * WG_Y>;   // [BK][BM]
var<workgroup> b_tile: array<hf, BK * TN * WG_X>;   // [BK][BN]
var<workgroup> m_org: array<Origin, TM * WG_Y>;      // the tile's output pixels

fn reflect(i: i32, n: i32) -> i32 {
    var r = i;
    if (r < 0) { r = -r; }
    if (r >= n) { r = 2 * n - 2 - r; }
    return clamp(r, 0, n - 1);
}

// An output pixel of the implicit GEMM: where its image starts in the input (n * H * W * Cin),
// the input position of its kernel tap (0, 0) (for transposed convolutions: its own position
// plus the padding), and whether it exists (slots past the last pixel do not).
struct Origin {
    base: u32,
    y0: i32,
    x0: i32,
    ok: bool,
}

// Output pixel m (of m_count) as an Origin.
fn origin(m: u32, m_count: u32) -> Origin {
    let mm = min(m, m_count - 1u);
    let ox = mm % p.wo;
    let t = mm / p.wo;
    let oy = t % p.ho;
    let base = (t / p.ho) * p.h * p.w * p.cin;
    if (p.mode == MODE_TRANSPOSED) {
        return Origin(base, i32(oy) + p.pad_t, i32(ox) + p.pad_l, m < m_count);
    }
    return Origin(base, i32(oy * p.stride) - p.pad_t, i32(ox * p.stride) - p.pad_l, m < m_count);
}

// Input value for the output pixel `o` and kernel tap (ky, kx, ci): 0 for padding and for
// pixels that do not exist.
fn gather(o: Origin, ky: i32, kx: i32, ci: u32) -> f32 {
    if (!o.ok) { return 0.0; }
    let h = i32(p.h);
    let w = i32(p.w);
    var iy: i32;
    var ix: i32;
    if (p.mode == MODE_TRANSPOSED) {
        let ny = o.y0 - ky;
        let nx = o.x0 - kx;
        let s = i32(p.stride);
        if (ny < 0 || nx < 0 || ny % s != 0 || nx % s != 0) { return 0.0; }
        iy = ny / s;
        ix = nx / s;
        if (iy >= h || ix >= w) { return 0.0; }
    } else {
        iy = o.y0 + ky;
        ix = o.x0 + kx;
        if (p.mode == MODE_REFLECT_PAD) {
            iy = reflect(iy, h);
            ix = reflect(ix, w);
        } else if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
            return 0.0;
        }
    }
    return x[o.base + (u32(iy) * p.w + u32(ix)) * p.cin + ci];
}

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

// ---------------------------------------------------------------------------------------
// Direct variants: no workgroup memory and no barriers. Each invocation computes DTM
// output pixels x DTN consecutive output channels straight from global memory, looping over
// kernel taps (ky, kx) and then input channels, 4 at a time, without any index division.
// Here x runs along output *pixels* (CPU drivers such as lavapipe vectorise across x, so a
// narrow output such as 3 channels still fills the SIMD lanes) and y along channel groups.
// CPU drivers, which serialise barriers and treat workgroup memory like any other memory,
// run these faster than the tiled kernel; GPUs prefer the tiled one.
//
// Both read the input and the kernel as vec4 arrays, so channel counts must be multiples of
// 4: wgstyle pads the others with zeros first (the kernel's output channels only in its
// rows, `wcout`; the output keeps `cout`). lavapipe runs every non-uniform storage load as a
// per-lane loop with a bounds test per component: the cost is per load instruction and lane,
// and one vec4 load costs little more than one scalar load.

const DTM: u32 = 16u; // pixels per invocation (more pixels: fewer weight loads per FMA)
const DTN: u32 = 8u; // channels per invocation (two vec4 accumulators per pixel)

// Input offset of pixel (oy0, ox0) + tap (ky, kx), and 1.0 if it lies inside the input
// (0.0 for padding; the offset is then 0, a valid address).
struct Tap {
    addr: u32,
    ok: f32,
}

fn tap(base: u32, oy0: i32, ox0: i32, ky: u32, kx: u32, inside: bool) -> Tap {
    let h = i32(p.h);
    let w = i32(p.w);
    var iy: i32;
    var ix: i32;
    var valid = inside;
    if (p.mode == MODE_TRANSPOSED) {
        let s = i32(p.stride);
        let ny = oy0 - i32(ky);
        let nx = ox0 - i32(kx);
        valid = valid && ny >= 0 && nx >= 0 && ny % s == 0 && nx % s == 0;
        iy = ny / s;
        ix = nx / s;
    } else {
        iy = oy0 + i32(ky);
        ix = ox0 + i32(kx);
        if (p.mode == MODE_REFLECT_PAD) {
            iy = reflect(iy, h);
            ix = reflect(ix, w);
        }
    }
    valid = valid && iy >= 0 && iy < h && ix >= 0 && ix < w;
    return Tap(select(0u, base + (u32(iy) * p.w + u32(ix)) * p.cin, valid), select(0.0, 1.0, valid));
}

struct Pixel {
    base: u32,
    oy0: i32,
    ox0: i32,
    inside: bool,
    out: u32, // index of the output pixel (0 when outside)
}

// Transposed convolutions of stride s visit their output in parity-major order here: per
// image, the s*s classes (oy mod s, ox mod s), each a sub-grid of ceil(ho/s) x ceil(wo/s)
// pixels padded to a multiple of `class_unit()` slots (DTM; the subgroup build: a
// workgroup's DTM * WG_X, so that every invocation of a subgroup runs the same taps). The
// DTM pixels of an invocation then share one class, so the tap loop visits only the kernel
// rows and columns of that class (1 in s of each) instead of addressing every tap and
// masking s*s - 1 in s*s of them out.
fn class_len() -> u32 {
    let s = p.stride;
    let len = ((p.ho + s - 1u) / s) * ((p.wo + s - 1u) / s);
    let unit = class_unit();
    return (len + unit - 1u) / unit * unit;
}

// Output slots of the direct kernel (the Rust side computes the same in `direct_slots`).
fn direct_slots() -> u32 {
    if (p.mode == MODE_TRANSPOSED) {
        return p.n * p.stride * p.stride * class_len();
    }
    return p.n * p.ho * p.wo;
}

fn pixel(m: u32, m_count: u32) -> Pixel {
    let mm = min(m, m_count - 1u);
    if (p.mode == MODE_TRANSPOSED) {
        let s = p.stride;
        let sw = (p.wo + s - 1u) / s;
        let cl = class_len();
        let per_img = s * s * cl;
        let img = mm / per_img;
        let cls = (mm % per_img) / cl;
        let k = mm % cl;
        let oy = cls / s + s * (k / sw);
        let ox = cls % s + s * (k % sw);
        let inside = m < m_count && oy < p.ho && ox < p.wo;
        let out = select(0u, (img * p.ho + oy) * p.wo + ox, inside);
        return Pixel(img * p.h * p.w * p.cin, i32(oy) + p.pad_t, i32(ox) + p.pad_l, inside, out);
    }
    let ox = mm % p.wo;
    let t = mm / p.wo;
    let oy = t % p.ho;
    let base = (t / p.ho) * p.h * p.w * p.cin;
    return Pixel(base, i32(oy * p.stride) - p.pad_t, i32(ox * p.stride) - p.pad_l, m < m_count, mm);
}

fn store(q: Pixel, n0: u32, v0: vec4<f32>, v1: vec4<f32>) {
    if (!q.inside) { return; }
    let m = q.out;
    let v = array<f32, 8>(v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w);
    for (var j = 0u; j < DTN; j++) {
        let n = n0 + j;
        if (n >= p.cout) { return; }
        var r = v[j];
        if ((p.flags & FLAG_BIAS) != 0u) { r += bias[n]; }
        if ((p.flags & FLAG_RELU) != 0u) { r = max(r, 0.0); }
        y[m * p.cout + n] = r;
    }
}

// ---------------------------------------------------------------------------------------
// `direct`: per tap and step of 4 input channels, one vec4 load of the input per pixel and
// two 4x4 weight blocks (8 vec4 loads). (A scalar version, 4 input loads per pixel and 32
// weight loads per 4 channels, was 1.6x slower.) The same buffers are bound as vec4 arrays
// (read-only bindings may alias).
//
// With ROWS (stride 1, not transposed) the DTM pixels of an invocation are consecutive
// pixels of one output row (rows padded to a multiple of DTM slots), so for one kernel row
// they read one window of DTM + kw - 1 input columns: the window is loaded once and slid
// along the kernel row (one new column per tap) instead of loading DTM columns for every
// tap: for a 3x3 kernel 18 input loads per kernel row instead of 48, for 9x9 24 instead
// of 144.

@group(0) @binding(1) var<storage, read> xq: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wq: array<vec4<f32>>;

// Output channels n0..n0+3 of input channel rows i, i+cq, i+2cq, i+3cq (vec4 index i, row
// stride cq = wcout/4) as the columns of a matrix: `m * x` sums the 4 input channels in x.
fn wblock(i: u32, cq: u32) -> mat4x4<hf> {
    return mat4x4<hf>(vec4<hf>(wq[i]), vec4<hf>(wq[i + cq]), vec4<hf>(wq[i + 2u * cq]), vec4<hf>(wq[i + 3u * cq]));
}

// The weights of one tap and 4 input channels for output channels n0..n0+3 (a) and
// n0+4..n0+7 (b): 8 vec4 loads.
struct WPair {
    a: mat4x4<hf>,
    b: mat4x4<hf>,
}

// subgroup: begin (the subgroup build puts shaders/conv2d_subgroup.wgsl in place of these)

fn wpair(i: u32, cq: u32, lane: u32) -> WPair {
    return WPair(wblock(i, cq), wblock(i + 1u, cq));
}

// The weights of one tap and 4 input channels for output channels n0..n0+31 (`wide`): 32 vec4
// loads.
fn wblock32(i: u32, cq: u32, lane: u32) -> WBlock {
    return WBlock(wblock(i, cq), wblock(i + 1u, cq), wblock(i + 2u, cq), wblock(i + 3u, cq), wblock(i + 4u, cq), wblock(i + 5u, cq), wblock(i + 6u, cq), wblock(i + 7u, cq));
}

// Whether an invocation whose slots are all `past` the last pixel may return at once.
fn retired(past: bool) -> bool {
    return past;
}

// Transposed convolutions: parity classes are padded to multiples of this many slots.
fn class_unit() -> u32 {
    return DTM;
}

// subgroup: end

// Adds a pixel's hf partial sums (output channels n0..n0+3 and n0+4..n0+7) into its f32
// accumulators and clears them (with FLUSH every 16 input channels, or with ROWS every 4 input
// channels of a kernel row; always at the end).
fn flush(a0: ptr<function, vec4<f32>>, a1: ptr<function, vec4<f32>>, s0: ptr<function, vec4<hf>>, s1: ptr<function, vec4<hf>>) {
    *a0 += vec4<f32>(*s0);
    *a1 += vec4<f32>(*s1);
    *s0 = vec4<hf>(0.0);
    *s1 = vec4<hf>(0.0);
}

// Output slots of a row with ROWS (the Rust side computes the same in `direct_slots`).
fn row_len() -> u32 {
    return (p.wo + DTM - 1u) / DTM * DTM;
}

// Pixel j of the invocation whose first slot is m0 (outside for slots past m_count; with
// ROWS they read the last row's input).
fn slot(m0: u32, j: u32, m_count: u32) -> Pixel {
    if (ROWS) {
        let mr = min(m0, m_count - DTM);
        let r = mr / row_len(); // img * ho + oy
        let ox = mr % row_len() + j;
        let inside = m0 < m_count && ox < p.wo;
        return Pixel(0u, 0, 0, inside, select(0u, r * p.wo + ox, inside));
    }
    return pixel(m0 + j, m_count);
}

// Input channels 4*c4..4*c4+3 at column ix of the input row starting at `row` (zero outside
// the input or when the row is not `row_ok`; reflected with reflection padding).
fn column(row: u32, row_ok: bool, ix: i32, c4: u32) -> vec4<hf> {
    var c = ix;
    if (p.mode == MODE_REFLECT_PAD) { c = reflect(c, i32(p.w)); }
    let ok = row_ok && c >= 0 && c < i32(p.w);
    let v = xq[(row + u32(clamp(c, 0, i32(p.w) - 1)) * p.cin) / 4u + c4];
    return vec4<hf>(select(vec4<f32>(0.0), v, ok));
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn direct(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32, // unused; the subgroup build: subgroup_invocation_id
) {
    var m_count = direct_slots();
    if (ROWS) { m_count = p.n * p.ho * row_len(); }
    let m0 = ((wid.x + wid.z * nwg.x) * WG_X + lid.x) * DTM;
    let n0 = (wid.y * WG_Y + lid.y) * DTN;
    // (The subgroup build returns only when the whole subgroup is past the last pixel: the
    // others run on, storing nothing, for their weight loads.)
    if (retired(m0 >= m_count) || n0 >= p.cout) { return; }

    // Plain variables rather than arrays, so that CPU compilers keep them in registers.
    let q0 = slot(m0, 0u, m_count);
    let q1 = slot(m0, 1u, m_count);
    let q2 = slot(m0, 2u, m_count);
    let q3 = slot(m0, 3u, m_count);
    let q4 = slot(m0, 4u, m_count);
    let q5 = slot(m0, 5u, m_count);
    let q6 = slot(m0, 6u, m_count);
    let q7 = slot(m0, 7u, m_count);
    let q8 = slot(m0, 8u, m_count);
    let q9 = slot(m0, 9u, m_count);
    let q10 = slot(m0, 10u, m_count);
    let q11 = slot(m0, 11u, m_count);
    let q12 = slot(m0, 12u, m_count);
    let q13 = slot(m0, 13u, m_count);
    let q14 = slot(m0, 14u, m_count);
    let q15 = slot(m0, 15u, m_count);
    // f32 accumulators, and hf partial sums (with FLUSH added in every 16 input channels, or
    // with ROWS every 4 input channels of a kernel row; without, the partial sums are the
    // accumulators and `a` is only written at the end).
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0); var a31 = vec4<f32>(0.0);
    var a40 = vec4<f32>(0.0); var a41 = vec4<f32>(0.0);
    var a50 = vec4<f32>(0.0); var a51 = vec4<f32>(0.0);
    var a60 = vec4<f32>(0.0); var a61 = vec4<f32>(0.0);
    var a70 = vec4<f32>(0.0); var a71 = vec4<f32>(0.0);
    var a80 = vec4<f32>(0.0); var a81 = vec4<f32>(0.0);
    var a90 = vec4<f32>(0.0); var a91 = vec4<f32>(0.0);
    var a100 = vec4<f32>(0.0); var a101 = vec4<f32>(0.0);
    var a110 = vec4<f32>(0.0); var a111 = vec4<f32>(0.0);
    var a120 = vec4<f32>(0.0); var a121 = vec4<f32>(0.0);
    var a130 = vec4<f32>(0.0); var a131 = vec4<f32>(0.0);
    var a140 = vec4<f32>(0.0); var a141 = vec4<f32>(0.0);
    var a150 = vec4<f32>(0.0); var a151 = vec4<f32>(0.0);
    var s00 = vec4<hf>(0.0); var s01 = vec4<hf>(0.0);
    var s10 = vec4<hf>(0.0); var s11 = vec4<hf>(0.0);
    var s20 = vec4<hf>(0.0); var s21 = vec4<hf>(0.0);
    var s30 = vec4<hf>(0.0); var s31 = vec4<hf>(0.0);
    var s40 = vec4<hf>(0.0); var s41 = vec4<hf>(0.0);
    var s50 = vec4<hf>(0.0); var s51 = vec4<hf>(0.0);
    var s60 = vec4<hf>(0.0); var s61 = vec4<hf>(0.0);
    var s70 = vec4<hf>(0.0); var s71 = vec4<hf>(0.0);
    var s80 = vec4<hf>(0.0); var s81 = vec4<hf>(0.0);
    var s90 = vec4<hf>(0.0); var s91 = vec4<hf>(0.0);
    var s100 = vec4<hf>(0.0); var s101 = vec4<hf>(0.0);
    var s110 = vec4<hf>(0.0); var s111 = vec4<hf>(0.0);
    var s120 = vec4<hf>(0.0); var s121 = vec4<hf>(0.0);
    var s130 = vec4<hf>(0.0); var s131 = vec4<hf>(0.0);
    var s140 = vec4<hf>(0.0); var s141 = vec4<hf>(0.0);
    var s150 = vec4<hf>(0.0); var s151 = vec4<hf>(0.0);
    let cin4 = p.cin / 4u;
    let cq = p.wcout / 4u;
    if (ROWS) {
        let mr = min(m0, m_count - DTM); // as in `slot`
        let r = mr / row_len();
        let oy = r % p.ho;
        let base = (r / p.ho) * p.h * p.w * p.cin;
        let ix0 = i32(mr % row_len()) - p.pad_l;
        let tap_step = p.cin * cq; // vec4s from one tap's weights to the next
        for (var ky = 0u; ky < p.kh; ky++) {
            var iy = i32(oy) - p.pad_t + i32(ky);
            if (p.mode == MODE_REFLECT_PAD) { iy = reflect(iy, i32(p.h)); }
            // Rows outside the input read zeros (rather than `continue`: every invocation
            // runs the same iterations).
            let row_ok = iy >= 0 && iy < i32(p.h);
            let row = base + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w * p.cin;
            for (var c4 = 0u; c4 < cin4; c4++) {
                var x0 = column(row, row_ok, ix0 + 0, c4);
                var x1 = column(row, row_ok, ix0 + 1, c4);
                var x2 = column(row, row_ok, ix0 + 2, c4);
                var x3 = column(row, row_ok, ix0 + 3, c4);
                var x4 = column(row, row_ok, ix0 + 4, c4);
                var x5 = column(row, row_ok, ix0 + 5, c4);
                var x6 = column(row, row_ok, ix0 + 6, c4);
                var x7 = column(row, row_ok, ix0 + 7, c4);
                var x8 = column(row, row_ok, ix0 + 8, c4);
                var x9 = column(row, row_ok, ix0 + 9, c4);
                var x10 = column(row, row_ok, ix0 + 10, c4);
                var x11 = column(row, row_ok, ix0 + 11, c4);
                var x12 = column(row, row_ok, ix0 + 12, c4);
                var x13 = column(row, row_ok, ix0 + 13, c4);
                var x14 = column(row, row_ok, ix0 + 14, c4);
                var x15 = column(row, row_ok, ix0 + 15, c4);
                var wi = ((ky * p.kw * p.cin + 4u * c4) * p.wcout + n0) / 4u;
                for (var kx = 0u; kx < p.kw; kx++) {
                    let wp = wpair(wi, cq, lane);
                    let wa = wp.a;
                    let wb = wp.b;
                    s00 += wa * x0;
                    s10 += wa * x1;
                    s20 += wa * x2;
                    s30 += wa * x3;
                    s40 += wa * x4;
                    s50 += wa * x5;
                    s60 += wa * x6;
                    s70 += wa * x7;
                    s80 += wa * x8;
                    s90 += wa * x9;
                    s100 += wa * x10;
                    s110 += wa * x11;
                    s120 += wa * x12;
                    s130 += wa * x13;
                    s140 += wa * x14;
                    s150 += wa * x15;
                    // NARROW is a pipeline constant: with it this block (and the loads of wb) fold away.
                    if (!NARROW) {
                        s01 += wb * x0;
                        s11 += wb * x1;
                        s21 += wb * x2;
                        s31 += wb * x3;
                        s41 += wb * x4;
                        s51 += wb * x5;
                        s61 += wb * x6;
                        s71 += wb * x7;
                        s81 += wb * x8;
                        s91 += wb * x9;
                        s101 += wb * x10;
                        s111 += wb * x11;
                        s121 += wb * x12;
                        s131 += wb * x13;
                        s141 += wb * x14;
                        s151 += wb * x15;
                    }
                    // Slide the window one column.
                    x0 = x1; x1 = x2; x2 = x3; x3 = x4; x4 = x5; x5 = x6; x6 = x7; x7 = x8; x8 = x9; x9 = x10; x10 = x11; x11 = x12; x12 = x13; x13 = x14; x14 = x15;
                    x15 = column(row, row_ok, ix0 + 16 + i32(kx), c4);
                    wi += tap_step;
                }
                if (FLUSH) {
                    flush(&a00, &a01, &s00, &s01);
                    flush(&a10, &a11, &s10, &s11);
                    flush(&a20, &a21, &s20, &s21);
                    flush(&a30, &a31, &s30, &s31);
                    flush(&a40, &a41, &s40, &s41);
                    flush(&a50, &a51, &s50, &s51);
                    flush(&a60, &a61, &s60, &s61);
                    flush(&a70, &a71, &s70, &s71);
                    flush(&a80, &a81, &s80, &s81);
                    flush(&a90, &a91, &s90, &s91);
                    flush(&a100, &a101, &s100, &s101);
                    flush(&a110, &a111, &s110, &s111);
                    flush(&a120, &a121, &s120, &s121);
                    flush(&a130, &a131, &s130, &s131);
                    flush(&a140, &a141, &s140, &s141);
                    flush(&a150, &a151, &s150, &s151);
                }
            }
        }
    } else {
        // Taps: all of them; for a transposed convolution those of the pixels' class only.
        var k_step = 1u;
        var ky0 = 0u;
        var kx0 = 0u;
        if (p.mode == MODE_TRANSPOSED) {
            let s = i32(p.stride);
            k_step = p.stride;
            ky0 = u32(((q0.oy0 % s) + s) % s);
            kx0 = u32(((q0.ox0 % s) + s) % s);
        }
        for (var ky = ky0; ky < p.kh; ky += k_step) {
            for (var kx = kx0; kx < p.kw; kx += k_step) {
                let t0 = tap(q0.base, q0.oy0, q0.ox0, ky, kx, q0.inside);
                let t1 = tap(q1.base, q1.oy0, q1.ox0, ky, kx, q1.inside);
                let t2 = tap(q2.base, q2.oy0, q2.ox0, ky, kx, q2.inside);
                let t3 = tap(q3.base, q3.oy0, q3.ox0, ky, kx, q3.inside);
                let t4 = tap(q4.base, q4.oy0, q4.ox0, ky, kx, q4.inside);
                let t5 = tap(q5.base, q5.oy0, q5.ox0, ky, kx, q5.inside);
                let t6 = tap(q6.base, q6.oy0, q6.ox0, ky, kx, q6.inside);
                let t7 = tap(q7.base, q7.oy0, q7.ox0, ky, kx, q7.inside);
                let t8 = tap(q8.base, q8.oy0, q8.ox0, ky, kx, q8.inside);
                let t9 = tap(q9.base, q9.oy0, q9.ox0, ky, kx, q9.inside);
                let t10 = tap(q10.base, q10.oy0, q10.ox0, ky, kx, q10.inside);
                let t11 = tap(q11.base, q11.oy0, q11.ox0, ky, kx, q11.inside);
                let t12 = tap(q12.base, q12.oy0, q12.ox0, ky, kx, q12.inside);
                let t13 = tap(q13.base, q13.oy0, q13.ox0, ky, kx, q13.inside);
                let t14 = tap(q14.base, q14.oy0, q14.ox0, ky, kx, q14.inside);
                let t15 = tap(q15.base, q15.oy0, q15.ox0, ky, kx, q15.inside);
                let i0 = t0.addr / 4u;
                let i1 = t1.addr / 4u;
                let i2 = t2.addr / 4u;
                let i3 = t3.addr / 4u;
                let i4 = t4.addr / 4u;
                let i5 = t5.addr / 4u;
                let i6 = t6.addr / 4u;
                let i7 = t7.addr / 4u;
                let i8 = t8.addr / 4u;
                let i9 = t9.addr / 4u;
                let i10 = t10.addr / 4u;
                let i11 = t11.addr / 4u;
                let i12 = t12.addr / 4u;
                let i13 = t13.addr / 4u;
                let i14 = t14.addr / 4u;
                let i15 = t15.addr / 4u;
                var wi = ((ky * p.kw + kx) * p.cin * p.wcout + n0) / 4u;
                for (var c4 = 0u; c4 < cin4; c4++) {
                    let wp = wpair(wi, cq, lane);
                    let wa = wp.a;
                    let wb = wp.b;
                    let x0 = vec4<hf>(xq[i0 + c4] * t0.ok);
                    let x1 = vec4<hf>(xq[i1 + c4] * t1.ok);
                    let x2 = vec4<hf>(xq[i2 + c4] * t2.ok);
                    let x3 = vec4<hf>(xq[i3 + c4] * t3.ok);
                    let x4 = vec4<hf>(xq[i4 + c4] * t4.ok);
                    let x5 = vec4<hf>(xq[i5 + c4] * t5.ok);
                    let x6 = vec4<hf>(xq[i6 + c4] * t6.ok);
                    let x7 = vec4<hf>(xq[i7 + c4] * t7.ok);
                    let x8 = vec4<hf>(xq[i8 + c4] * t8.ok);
                    let x9 = vec4<hf>(xq[i9 + c4] * t9.ok);
                    let x10 = vec4<hf>(xq[i10 + c4] * t10.ok);
                    let x11 = vec4<hf>(xq[i11 + c4] * t11.ok);
                    let x12 = vec4<hf>(xq[i12 + c4] * t12.ok);
                    let x13 = vec4<hf>(xq[i13 + c4] * t13.ok);
                    let x14 = vec4<hf>(xq[i14 + c4] * t14.ok);
                    let x15 = vec4<hf>(xq[i15 + c4] * t15.ok);
                    s00 += wa * x0;
                    s10 += wa * x1;
                    s20 += wa * x2;
                    s30 += wa * x3;
                    s40 += wa * x4;
                    s50 += wa * x5;
                    s60 += wa * x6;
                    s70 += wa * x7;
                    s80 += wa * x8;
                    s90 += wa * x9;
                    s100 += wa * x10;
                    s110 += wa * x11;
                    s120 += wa * x12;
                    s130 += wa * x13;
                    s140 += wa * x14;
                    s150 += wa * x15;
                    // NARROW is a pipeline constant: with it this block (and the loads of wb) fold away.
                    if (!NARROW) {
                        s01 += wb * x0;
                        s11 += wb * x1;
                        s21 += wb * x2;
                        s31 += wb * x3;
                        s41 += wb * x4;
                        s51 += wb * x5;
                        s61 += wb * x6;
                        s71 += wb * x7;
                        s81 += wb * x8;
                        s91 += wb * x9;
                        s101 += wb * x10;
                        s111 += wb * x11;
                        s121 += wb * x12;
                        s131 += wb * x13;
                        s141 += wb * x14;
                        s151 += wb * x15;
                    }
                    wi += p.wcout;
                    // FLUSH is a pipeline constant: without it this folds away.
                    if (FLUSH && (c4 % 4u == 3u || c4 + 1u == cin4)) {
                        flush(&a00, &a01, &s00, &s01);
                        flush(&a10, &a11, &s10, &s11);
                        flush(&a20, &a21, &s20, &s21);
                        flush(&a30, &a31, &s30, &s31);
                        flush(&a40, &a41, &s40, &s41);
                        flush(&a50, &a51, &s50, &s51);
                        flush(&a60, &a61, &s60, &s61);
                        flush(&a70, &a71, &s70, &s71);
                        flush(&a80, &a81, &s80, &s81);
                        flush(&a90, &a91, &s90, &s91);
                        flush(&a100, &a101, &s100, &s101);
                        flush(&a110, &a111, &s110, &s111);
                        flush(&a120, &a121, &s120, &s121);
                        flush(&a130, &a131, &s130, &s131);
                        flush(&a140, &a141, &s140, &s141);
                        flush(&a150, &a151, &s150, &s151);
                    }
                }
            }
        }
    }
    flush(&a00, &a01, &s00, &s01);
    flush(&a10, &a11, &s10, &s11);
    flush(&a20, &a21, &s20, &s21);
    flush(&a30, &a31, &s30, &s31);
    flush(&a40, &a41, &s40, &s41);
    flush(&a50, &a51, &s50, &s51);
    flush(&a60, &a61, &s60, &s61);
    flush(&a70, &a71, &s70, &s71);
    flush(&a80, &a81, &s80, &s81);
    flush(&a90, &a91, &s90, &s91);
    flush(&a100, &a101, &s100, &s101);
    flush(&a110, &a111, &s110, &s111);
    flush(&a120, &a121, &s120, &s121);
    flush(&a130, &a131, &s130, &s131);
    flush(&a140, &a141, &s140, &s141);
    flush(&a150, &a151, &s150, &s151);
    store(q0, n0, a00, a01);
    store(q1, n0, a10, a11);
    store(q2, n0, a20, a21);
    store(q3, n0, a30, a31);
    store(q4, n0, a40, a41);
    store(q5, n0, a50, a51);
    store(q6, n0, a60, a61);
    store(q7, n0, a70, a71);
    store(q8, n0, a80, a81);
    store(q9, n0, a90, a91);
    store(q10, n0, a100, a101);
    store(q11, n0, a110, a111);
    store(q12, n0, a120, a121);
    store(q13, n0, a130, a131);
    store(q14, n0, a140, a141);
    store(q15, n0, a150, a151);
}


// ---------------------------------------------------------------------------------------
// `wide`: the direct kernel with the other register block, WIDE_PIXELS = 8 output pixels x 32
// output channels per invocation (WG_X invocations along pixels; one block of 32 channels per
// workgroup row, WG_Y = 1). Per tap and 4 input channels it loads 8 input vec4s and a 4 x 32
// weight block (`wblock32`; 4 loads per invocation in the subgroup build), where `direct`
// loads 16 and a 4 x 8 block: 12 load instructions per 1024 multiply-adds instead of 34,
// which is what lavapipe pays for (4 pixels: 1.3x slower; 16: 3 % faster, twice the
// registers). No sliding window (strided and transposed convolutions are what it is for);
// the kernel's rows are padded to a multiple of 32 (`wcout`). Transposed parity classes are
// padded as for `direct` (16 or 16 * WG_X slots), multiples of a subgroup's pixels.

// Output channels n0..n0+31 of one tap and 4 input channels, as 8 matrices of 4 output
// channels (see `wblock`).
struct WBlock {
    m0: mat4x4<hf>, m1: mat4x4<hf>, m2: mat4x4<hf>, m3: mat4x4<hf>,
    m4: mat4x4<hf>, m5: mat4x4<hf>, m6: mat4x4<hf>, m7: mat4x4<hf>,
}

const WIDE_PIXELS: u32 = 8u; // pixels per invocation of `wide`

fn store8(q: Pixel, n0: u32, v0: vec4<hf>, v1: vec4<hf>, v2: vec4<hf>, v3: vec4<hf>, v4: vec4<hf>, v5: vec4<hf>, v6: vec4<hf>, v7: vec4<hf>) {
    store(q, n0, vec4<f32>(v0), vec4<f32>(v1));
    store(q, n0 + 8u, vec4<f32>(v2), vec4<f32>(v3));
    store(q, n0 + 16u, vec4<f32>(v4), vec4<f32>(v5));
    store(q, n0 + 24u, vec4<f32>(v6), vec4<f32>(v7));
}

@compute @workgroup_size(WG_X, 1, 1)
fn wide(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32, // unused; the subgroup build: subgroup_invocation_id
) {
    let m_count = direct_slots();
    let m0 = ((wid.x + wid.z * nwg.x) * WG_X + lid.x) * WIDE_PIXELS;
    let n0 = wid.y * 32u;
    if (retired(m0 >= m_count) || n0 >= p.cout) { return; }
    let q0 = pixel(m0 + 0u, m_count);
    let q1 = pixel(m0 + 1u, m_count);
    let q2 = pixel(m0 + 2u, m_count);
    let q3 = pixel(m0 + 3u, m_count);
    let q4 = pixel(m0 + 4u, m_count);
    let q5 = pixel(m0 + 5u, m_count);
    let q6 = pixel(m0 + 6u, m_count);
    let q7 = pixel(m0 + 7u, m_count);
    var c00 = vec4<hf>(0.0); var c01 = vec4<hf>(0.0); var c02 = vec4<hf>(0.0); var c03 = vec4<hf>(0.0); var c04 = vec4<hf>(0.0); var c05 = vec4<hf>(0.0); var c06 = vec4<hf>(0.0); var c07 = vec4<hf>(0.0);
    var c10 = vec4<hf>(0.0); var c11 = vec4<hf>(0.0); var c12 = vec4<hf>(0.0); var c13 = vec4<hf>(0.0); var c14 = vec4<hf>(0.0); var c15 = vec4<hf>(0.0); var c16 = vec4<hf>(0.0); var c17 = vec4<hf>(0.0);
    var c20 = vec4<hf>(0.0); var c21 = vec4<hf>(0.0); var c22 = vec4<hf>(0.0); var c23 = vec4<hf>(0.0); var c24 = vec4<hf>(0.0); var c25 = vec4<hf>(0.0); var c26 = vec4<hf>(0.0); var c27 = vec4<hf>(0.0);
    var c30 = vec4<hf>(0.0); var c31 = vec4<hf>(0.0); var c32 = vec4<hf>(0.0); var c33 = vec4<hf>(0.0); var c34 = vec4<hf>(0.0); var c35 = vec4<hf>(0.0); var c36 = vec4<hf>(0.0); var c37 = vec4<hf>(0.0);
    var c40 = vec4<hf>(0.0); var c41 = vec4<hf>(0.0); var c42 = vec4<hf>(0.0); var c43 = vec4<hf>(0.0); var c44 = vec4<hf>(0.0); var c45 = vec4<hf>(0.0); var c46 = vec4<hf>(0.0); var c47 = vec4<hf>(0.0);
    var c50 = vec4<hf>(0.0); var c51 = vec4<hf>(0.0); var c52 = vec4<hf>(0.0); var c53 = vec4<hf>(0.0); var c54 = vec4<hf>(0.0); var c55 = vec4<hf>(0.0); var c56 = vec4<hf>(0.0); var c57 = vec4<hf>(0.0);
    var c60 = vec4<hf>(0.0); var c61 = vec4<hf>(0.0); var c62 = vec4<hf>(0.0); var c63 = vec4<hf>(0.0); var c64 = vec4<hf>(0.0); var c65 = vec4<hf>(0.0); var c66 = vec4<hf>(0.0); var c67 = vec4<hf>(0.0);
    var c70 = vec4<hf>(0.0); var c71 = vec4<hf>(0.0); var c72 = vec4<hf>(0.0); var c73 = vec4<hf>(0.0); var c74 = vec4<hf>(0.0); var c75 = vec4<hf>(0.0); var c76 = vec4<hf>(0.0); var c77 = vec4<hf>(0.0);
    let cin4 = p.cin / 4u;
    let cq = p.wcout / 4u;
    // Taps: all of them; for a transposed convolution those of the pixels' class only.
    var k_step = 1u;
    var ky0 = 0u;
    var kx0 = 0u;
    if (p.mode == MODE_TRANSPOSED) {
        let s = i32(p.stride);
        k_step = p.stride;
        ky0 = u32(((q0.oy0 % s) + s) % s);
        kx0 = u32(((q0.ox0 % s) + s) % s);
    }
    for (var ky = ky0; ky < p.kh; ky += k_step) {
        for (var kx = kx0; kx < p.kw; kx += k_step) {
            let t0 = tap(q0.base, q0.oy0, q0.ox0, ky, kx, q0.inside);
            let t1 = tap(q1.base, q1.oy0, q1.ox0, ky, kx, q1.inside);
            let t2 = tap(q2.base, q2.oy0, q2.ox0, ky, kx, q2.inside);
            let t3 = tap(q3.base, q3.oy0, q3.ox0, ky, kx, q3.inside);
            let t4 = tap(q4.base, q4.oy0, q4.ox0, ky, kx, q4.inside);
            let t5 = tap(q5.base, q5.oy0, q5.ox0, ky, kx, q5.inside);
            let t6 = tap(q6.base, q6.oy0, q6.ox0, ky, kx, q6.inside);
            let t7 = tap(q7.base, q7.oy0, q7.ox0, ky, kx, q7.inside);
            let i0 = t0.addr / 4u;
            let i1 = t1.addr / 4u;
            let i2 = t2.addr / 4u;
            let i3 = t3.addr / 4u;
            let i4 = t4.addr / 4u;
            let i5 = t5.addr / 4u;
            let i6 = t6.addr / 4u;
            let i7 = t7.addr / 4u;
            var wi = ((ky * p.kw + kx) * p.cin * p.wcout + n0) / 4u;
            for (var c4 = 0u; c4 < cin4; c4++) {
                let w = wblock32(wi, cq, lane);
                let x0 = vec4<hf>(xq[i0 + c4] * t0.ok);
                let x1 = vec4<hf>(xq[i1 + c4] * t1.ok);
                let x2 = vec4<hf>(xq[i2 + c4] * t2.ok);
                let x3 = vec4<hf>(xq[i3 + c4] * t3.ok);
                let x4 = vec4<hf>(xq[i4 + c4] * t4.ok);
                let x5 = vec4<hf>(xq[i5 + c4] * t5.ok);
                let x6 = vec4<hf>(xq[i6 + c4] * t6.ok);
                let x7 = vec4<hf>(xq[i7 + c4] * t7.ok);
                c00 += w.m0 * x0; c01 += w.m1 * x0; c02 += w.m2 * x0; c03 += w.m3 * x0; c04 += w.m4 * x0; c05 += w.m5 * x0; c06 += w.m6 * x0; c07 += w.m7 * x0;
                c10 += w.m0 * x1; c11 += w.m1 * x1; c12 += w.m2 * x1; c13 += w.m3 * x1; c14 += w.m4 * x1; c15 += w.m5 * x1; c16 += w.m6 * x1; c17 += w.m7 * x1;
                c20 += w.m0 * x2; c21 += w.m1 * x2; c22 += w.m2 * x2; c23 += w.m3 * x2; c24 += w.m4 * x2; c25 += w.m5 * x2; c26 += w.m6 * x2; c27 += w.m7 * x2;
                c30 += w.m0 * x3; c31 += w.m1 * x3; c32 += w.m2 * x3; c33 += w.m3 * x3; c34 += w.m4 * x3; c35 += w.m5 * x3; c36 += w.m6 * x3; c37 += w.m7 * x3;
                c40 += w.m0 * x4; c41 += w.m1 * x4; c42 += w.m2 * x4; c43 += w.m3 * x4; c44 += w.m4 * x4; c45 += w.m5 * x4; c46 += w.m6 * x4; c47 += w.m7 * x4;
                c50 += w.m0 * x5; c51 += w.m1 * x5; c52 += w.m2 * x5; c53 += w.m3 * x5; c54 += w.m4 * x5; c55 += w.m5 * x5; c56 += w.m6 * x5; c57 += w.m7 * x5;
                c60 += w.m0 * x6; c61 += w.m1 * x6; c62 += w.m2 * x6; c63 += w.m3 * x6; c64 += w.m4 * x6; c65 += w.m5 * x6; c66 += w.m6 * x6; c67 += w.m7 * x6;
                c70 += w.m0 * x7; c71 += w.m1 * x7; c72 += w.m2 * x7; c73 += w.m3 * x7; c74 += w.m4 * x7; c75 += w.m5 * x7; c76 += w.m6 * x7; c77 += w.m7 * x7;
                wi += p.wcout;
            }
        }
    }
    store8(q0, n0, c00, c01, c02, c03, c04, c05, c06, c07);
    store8(q1, n0, c10, c11, c12, c13, c14, c15, c16, c17);
    store8(q2, n0, c20, c21, c22, c23, c24, c25, c26, c27);
    store8(q3, n0, c30, c31, c32, c33, c34, c35, c36, c37);
    store8(q4, n0, c40, c41, c42, c43, c44, c45, c46, c47);
    store8(q5, n0, c50, c51, c52, c53, c54, c55, c56, c57);
    store8(q6, n0, c60, c61, c62, c63, c64, c65, c66, c67);
    store8(q7, n0, c70, c71, c72, c73, c74, c75, c76, c77);
}
