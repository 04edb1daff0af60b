// Gradients of the convolution weights, as an implicit GEMM with split-K.
//
// For a zero-padded convolution y = conv(x, w) (x [n, h, w, cin], dy [n, ho, wo, cout],
// output pixel (oy, ox) reads input pixel (oy * stride - pad_t + ky, ox * stride - pad_l + kx)):
//   dW[m, co] = sum_r A[m, r] * B[r, co]      m = (ky, kx, ci),  r = (n, oy, ox)
// with A gathered from x on the fly (zero outside the input) and B = dy, a row-major
// R x Cout matrix. The reduction (R = n * ho * wo, up to ~2^18) is cut into `splits` chunks of
// `chunk` pixels; workgroup z = split writes its partial sums to `partials`, and
// `weight_reduce` adds the splits in a fixed order (deterministic, no atomics).
//
// The transposed convolution's weight gradient is the same GEMM with the roles of x and dy
// exchanged (see src/ops/conv_grad.rs); `weight_reduce` then writes [kh, kw, cout, cin]
// (flag SWAP) so that the result has the layout of the transposed convolution's kernel.
//
// Each workgroup computes a BM x BN tile of dW (BM = 4 * WG_Y rows, BN = 4 * WG_X output
// channels); each invocation a 4 x 4 register block. A and B tiles of depth BK are staged
// in workgroup memory.

const WG_X: u32 = 16u;  // invocations along output channels
const WG_Y: u32 = 16u;  // invocations along rows (ky, kx, ci)
const BK: u32 = 16u;    // pixels per reduction step
const TM: u32 = 4u;
const TN: u32 = 4u;
const BM: u32 = 64u;    // TM * WG_Y
const BN: u32 = 64u;    // TN * WG_X
const THREADS: u32 = 256u;

const FLAG_SWAP: u32 = 1u;

struct Params {
    n: u32, h: u32, w: u32, cin: u32,        // gathered tensor x
    ho: u32, wo: u32, cout: u32, kh: u32,    // dy
    kw: u32, stride: u32, pad_t: i32, pad_l: i32,
    chunk: u32, splits: u32, flags: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
// [splits, kh * kw * cin, cout]
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;

var<workgroup> a_tile: array<f32, 1024>;   // [BK][BM]
var<workgroup> b_tile: array<f32, 1024>;   // [BK][BN]
var<workgroup> m_ky: array<i32, BM>;
var<workgroup> m_kx: array<i32, BM>;
var<workgroup> m_ci: array<u32, BM>;
var<workgroup> m_ok: array<u32, BM>;
var<workgroup> r_base: array<u32, BK>;     // n * h * w * cin
var<workgroup> r_y0: array<i32, BK>;
var<workgroup> r_x0: array<i32, BK>;
var<workgroup> r_ok: array<u32, BK>;

// x at reduction slot `kl` (a dy pixel) and row slot `ml` (a kernel tap and input channel).
fn gather(kl: u32, ml: u32) -> f32 {
    if (r_ok[kl] == 0u || m_ok[ml] == 0u) { return 0.0; }
    let iy = r_y0[kl] + m_ky[ml];
    let ix = r_x0[kl] + m_kx[ml];
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return 0.0; }
    return x[r_base[kl] + (u32(iy) * p.w + u32(ix)) * p.cin + m_ci[ml]];
}

@compute @workgroup_size(16, 16, 1)
fn weight_partial(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tid = lid.y * WG_X + lid.x;
    let m_count = p.kh * p.kw * p.cin;
    let r_count = p.n * p.ho * p.wo;
    let n0 = wid.x * BN;
    let m0 = wid.y * BM;
    let split = wid.z;
    let r_begin = split * p.chunk;
    let r_end = min(r_begin + p.chunk, r_count);

    // Decode the tile's rows once.
    for (var i = tid; i < BM; i += THREADS) {
        let m = m0 + i;
        m_ok[i] = select(0u, 1u, m < m_count);
        m_ci[i] = m % p.cin;
        let tap = m / p.cin;
        m_kx[i] = i32(tap % p.kw);
        m_ky[i] = i32(tap / p.kw);
    }

    var acc: array<array<f32, TN>, TM>;
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; }
    }

    for (var r0 = r_begin; r0 < r_end; r0 += BK) {
        if (tid < BK) {
            let r = r0 + tid;
            r_ok[tid] = select(0u, 1u, r < r_end);
            let rr = min(r, r_count - 1u);
            let ox = rr % p.wo;
            let t = rr / p.wo;
            let oy = t % p.ho;
            r_base[tid] = (t / p.ho) * p.h * p.w * p.cin;
            r_y0[tid] = i32(oy * p.stride) - p.pad_t;
            r_x0[tid] = i32(ox * p.stride) - p.pad_l;
        }
        workgroupBarrier();
        for (var e = tid; e < BK * BM; e += THREADS) {
            a_tile[e] = gather(e / BM, e % BM);
        }
        for (var e = tid; e < BK * BN; e += THREADS) {
            let r = r0 + e / BN;
            let n = n0 + e % BN;
            var v = 0.0;
            if (r < r_end && n < p.cout) { v = dy[r * p.cout + n]; }
            b_tile[e] = v;
        }
        workgroupBarrier();
        for (var kl = 0u; kl < BK; kl++) {
            var a: array<f32, TM>;
            var b: array<f32, TN>;
            for (var i = 0u; i < TM; i++) { a[i] = a_tile[kl * BM + lid.y + i * WG_Y]; }
            for (var j = 0u; j < TN; j++) { b[j] = b_tile[kl * BN + lid.x + j * WG_X]; }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < TM; i++) {
        let m = m0 + lid.y + i * WG_Y;
        if (m >= m_count) { continue; }
        for (var j = 0u; j < TN; j++) {
            let n = n0 + lid.x + j * WG_X;
            if (n >= p.cout) { continue; }
            partials[(split * m_count + m) * p.cout + n] = acc[i][j];
        }
    }
}

// ---------------------------------------------------------------------------------------
// Direct variant of `weight_partial`: no workgroup memory and no barriers (for CPU drivers
// such as lavapipe, which run barriers as coroutine switches; see `direct` in conv2d/direct.wgsl).
// Invocations run along x over the rows m = (ky, kx, ci); each computes DRM consecutive
// rows x DRN consecutive output channels in eight vec4 variables, looping over the pixels
// of its split. All invocations of a workgroup read the same dy pixel and channels, so the
// dy loads are uniform (broadcast); the gathered x loads are the only per-lane loads.
// Same grid of splits and same partials layout as the tiled kernel: `weight_reduce` adds
// them up. Dispatch: [ceil(m / (DWG * DRM)), ceil(cout / DRN), splits].

const DWG: u32 = 64u; // invocations per workgroup (along rows)
const DRM: u32 = 4u;  // rows (ky, kx, ci) per invocation
const DRN: u32 = 8u;  // output channels per invocation (two vec4 per row)

// A row of the GEMM: its offset in x relative to the pixel (oy*s - pad_t, ox*s - pad_l)
// and its tap; `ok` is false past the last row.
struct Row {
    off: i32,
    ky: i32,
    kx: i32,
    ok: bool,
}

fn grad_row(m: u32, m_count: u32) -> Row {
    let mm = min(m, m_count - 1u);
    let ci = mm % p.cin;
    let tap = mm / p.cin;
    let kx = tap % p.kw;
    let ky = tap / p.kw;
    return Row(i32((ky * p.w + kx) * p.cin + ci), i32(ky), i32(kx), m < m_count);
}

// x for row `q` at the pixel whose window starts at (y0, x0), input offset `pix` (may be
// negative in the padding); zero outside the input.
fn grad_x(q: Row, pix: i32, y0: i32, x0: i32) -> f32 {
    let iy = y0 + q.ky;
    let ix = x0 + q.kx;
    let ok = q.ok && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    return select(0.0, x[select(0u, u32(pix + q.off), ok)], ok);
}

fn grad_dy(i: u32, n: u32) -> f32 {
    return select(0.0, dy[min(i, arrayLength(&dy) - 1u)], n < p.cout);
}

fn grad_store(split: u32, m: u32, n0: u32, v0: vec4<f32>, v1: vec4<f32>, m_count: u32) {
    if (m >= m_count) { return; }
    let v = array<f32, 8>(v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w);
    let base = (split * m_count + m) * p.cout;
    for (var j = 0u; j < DRN; j++) {
        let n = n0 + j;
        if (n >= p.cout) { return; }
        partials[base + n] = v[j];
    }
}

@compute @workgroup_size(DWG, 1, 1)
fn weight_partial_direct(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let m_count = p.kh * p.kw * p.cin;
    let r_count = p.n * p.ho * p.wo;
    let m0 = (wid.x * DWG + lid.x) * DRM;
    let n0 = wid.y * DRN;
    let split = wid.z;
    if (m0 >= m_count) { return; }
    let r_begin = split * p.chunk;
    let r_end = min(r_begin + p.chunk, r_count);

    let q0 = grad_row(m0, m_count);
    let q1 = grad_row(m0 + 1u, m_count);
    let q2 = grad_row(m0 + 2u, m_count);
    let q3 = grad_row(m0 + 3u, m_count);
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0); var a31 = vec4<f32>(0.0);

    // The pixel (img, oy, ox) of r, advanced without divisions.
    var ox = r_begin % p.wo;
    let t = r_begin / p.wo;
    var oy = t % p.ho;
    var img = t / p.ho;
    let s = i32(p.stride);
    let hw = i32(p.h * p.w);
    let cin = i32(p.cin);
    var bi = r_begin * p.cout + n0;
    for (var r = r_begin; r < r_end; r++) {
        let y0 = i32(oy) * s - p.pad_t;
        let x0 = i32(ox) * s - p.pad_l;
        let pix = ((i32(img) * hw) + y0 * i32(p.w) + x0) * cin;
        let b0 = vec4<f32>(grad_dy(bi, n0), grad_dy(bi + 1u, n0 + 1u), grad_dy(bi + 2u, n0 + 2u), grad_dy(bi + 3u, n0 + 3u));
        let b1 = vec4<f32>(grad_dy(bi + 4u, n0 + 4u), grad_dy(bi + 5u, n0 + 5u), grad_dy(bi + 6u, n0 + 6u), grad_dy(bi + 7u, n0 + 7u));
        let x0v = grad_x(q0, pix, y0, x0);
        let x1v = grad_x(q1, pix, y0, x0);
        let x2v = grad_x(q2, pix, y0, x0);
        let x3v = grad_x(q3, pix, y0, x0);
        a00 = fma(vec4<f32>(x0v), b0, a00); a01 = fma(vec4<f32>(x0v), b1, a01);
        a10 = fma(vec4<f32>(x1v), b0, a10); a11 = fma(vec4<f32>(x1v), b1, a11);
        a20 = fma(vec4<f32>(x2v), b0, a20); a21 = fma(vec4<f32>(x2v), b1, a21);
        a30 = fma(vec4<f32>(x3v), b0, a30); a31 = fma(vec4<f32>(x3v), b1, a31);
        bi += p.cout;
        ox += 1u;
        if (ox == p.wo) {
            ox = 0u;
            oy += 1u;
            if (oy == p.ho) {
                oy = 0u;
                img += 1u;
            }
        }
    }
    grad_store(split, m0, n0, a00, a01, m_count);
    grad_store(split, m0 + 1u, n0, a10, a11, m_count);
    grad_store(split, m0 + 2u, n0, a20, a21, m_count);
    grad_store(split, m0 + 3u, n0, a30, a31, m_count);
}

// dW = the sum of the splits' partials, in split order. With FLAG_SWAP the output is
// written as [kh, kw, cout, cin] instead of [kh, kw, cin, cout].
@compute @workgroup_size(256, 1, 1)
fn weight_reduce(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let e = gid.x + gid.y * nwg.x * 256u;
    let mn = p.kh * p.kw * p.cin * p.cout;
    if (e >= mn) { return; }
    var s = 0.0;
    for (var k = 0u; k < p.splits; k++) { s += partials[k * mn + e]; }
    var dst = e;
    if ((p.flags & FLAG_SWAP) != 0u) {
        let co = e % p.cout;
        let m = e / p.cout;
        let ci = m % p.cin;
        let tap = m / p.cin;
        dst = (tap * p.cout + co) * p.cin + ci;
    }
    dw[dst] = s;
}

// The kernel with its channel axes exchanged: dw[ky, kx, co, ci] = x[ky, kx, ci, co]
// (the kernel of the input gradient, which runs the convolution the other way).
@compute @workgroup_size(256, 1, 1)
fn swap_io(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= p.kh * p.kw * p.cin * p.cout) { return; }
    let co = e % p.cout;
    let m = e / p.cout;
    let ci = m % p.cin;
    let tap = m / p.cin;
    dw[(tap * p.cout + co) * p.cin + ci] = x[e];
}
