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

const DTM: u32 = {{DTM}}u; // pixels per invocation (more pixels: fewer weight loads per FMA)
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

#if SUBGROUP
// The subgroup build (SUBGROUP feature, subgroups of at least 8 invocations, one output
// channel block per subgroup: the direct tiles of one invocation row, WG_Y = 1). Every
// invocation of a subgroup needs the same 8 vec4s of weights per tap (its pixels differ, its
// output channels do not). lavapipe runs a load whose address is not known to be uniform as a
// loop over the SIMD lanes (Mesa 22.3 `emit_load_mem`), so 8 loads cost 8 such loops; here
// each of the first 8 invocations loads one vec4 (one loop) and `subgroupShuffle` with a
// constant index (one vector shuffle on lavapipe) hands them round. Invocation k loads the
// vec4 that `wblock` reads as column k / 2 of block k % 2.
fn wpair(i: u32, cq: u32, lane: u32) -> WPair {
    let k = lane % 8u;
    let v = wq[i + k % 2u + (k / 2u) * cq];
    return WPair(
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v, 0u)), vec4<hf>(subgroupShuffle(v, 2u)), vec4<hf>(subgroupShuffle(v, 4u)), vec4<hf>(subgroupShuffle(v, 6u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v, 1u)), vec4<hf>(subgroupShuffle(v, 3u)), vec4<hf>(subgroupShuffle(v, 5u)), vec4<hf>(subgroupShuffle(v, 7u))),
    );
}

// Every invocation of a subgroup must run the loops for the others' weight loads: return
// only when the whole subgroup is past the last pixel.
fn retired(past: bool) -> bool {
    return subgroupAll(past);
}

// A workgroup's slots: all of a workgroup's invocations in one parity class run the same
// taps.
fn class_unit() -> u32 {
    return DTM * WG_X;
}
#else
fn wpair(i: u32, cq: u32, lane: u32) -> WPair {
    return WPair(wblock(i, cq), wblock(i + 1u, cq));
}

// Whether an invocation whose slots are all `past` the last pixel may return at once.
fn retired(past: bool) -> bool {
    return past;
}

// Transposed convolutions: parity classes are padded to multiples of this many slots.
fn class_unit() -> u32 {
    return DTM;
}
#endif

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
#if SUBGROUP
    @builtin(subgroup_invocation_id) lane: u32,
#else
    @builtin(local_invocation_index) lane: u32, // unused
#endif
) {
    var m_count = direct_slots();
    if (ROWS) { m_count = p.n * p.ho * row_len(); }
    let m0 = ((wid.x + wid.z * nwg.x) * WG_X + lid.x) * DTM;
    let n0 = (wid.y * WG_Y + lid.y) * DTN;
    // (The subgroup build returns only when the whole subgroup is past the last pixel: the
    // others run on, storing nothing, for their weight loads.)
    if (retired(m0 >= m_count) || n0 >= p.cout) { return; }

    // Plain variables rather than arrays, so that CPU compilers keep them in registers.
#for I in 0..DTM
    let q{{I}} = slot(m0, {{I}}u, m_count);
#endfor
    // f32 accumulators, and hf partial sums (with FLUSH added in every 16 input channels, or
    // with ROWS every 4 input channels of a kernel row; without, the partial sums are the
    // accumulators and `a` is only written at the end).
#for I in 0..DTM
    var a{{I}}0 = vec4<f32>(0.0); var a{{I}}1 = vec4<f32>(0.0);
#endfor
#for I in 0..DTM
    var s{{I}}0 = vec4<hf>(0.0); var s{{I}}1 = vec4<hf>(0.0);
#endfor
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
#for I in 0..DTM
                var x{{I}} = column(row, row_ok, ix0 + {{I}}, c4);
#endfor
                var wi = ((ky * p.kw * p.cin + 4u * c4) * p.wcout + n0) / 4u;
                for (var kx = 0u; kx < p.kw; kx++) {
                    let wp = wpair(wi, cq, lane);
                    let wa = wp.a;
                    let wb = wp.b;
#for I in 0..DTM
                    s{{I}}0 += wa * x{{I}};
#endfor
                    // NARROW is a pipeline constant: with it this block (and the loads of wb) fold away.
                    if (!NARROW) {
#for I in 0..DTM
                        s{{I}}1 += wb * x{{I}};
#endfor
                    }
                    // Slide the window one column.
#for I in 1..DTM
                    x{{I-1}} = x{{I}};
#endfor
                    x{{DTM-1}} = column(row, row_ok, ix0 + {{DTM}} + i32(kx), c4);
                    wi += tap_step;
                }
                if (FLUSH) {
#for I in 0..DTM
                    flush(&a{{I}}0, &a{{I}}1, &s{{I}}0, &s{{I}}1);
#endfor
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
#for I in 0..DTM
                let t{{I}} = tap(q{{I}}.base, q{{I}}.oy0, q{{I}}.ox0, ky, kx, q{{I}}.inside);
#endfor
#for I in 0..DTM
                let i{{I}} = t{{I}}.addr / 4u;
#endfor
                var wi = ((ky * p.kw + kx) * p.cin * p.wcout + n0) / 4u;
                for (var c4 = 0u; c4 < cin4; c4++) {
                    let wp = wpair(wi, cq, lane);
                    let wa = wp.a;
                    let wb = wp.b;
#for I in 0..DTM
                    let x{{I}} = vec4<hf>(xq[i{{I}} + c4] * t{{I}}.ok);
#endfor
#for I in 0..DTM
                    s{{I}}0 += wa * x{{I}};
#endfor
                    // NARROW is a pipeline constant: with it this block (and the loads of wb) fold away.
                    if (!NARROW) {
#for I in 0..DTM
                        s{{I}}1 += wb * x{{I}};
#endfor
                    }
                    wi += p.wcout;
                    // FLUSH is a pipeline constant: without it this folds away.
                    if (FLUSH && (c4 % 4u == 3u || c4 + 1u == cin4)) {
#for I in 0..DTM
                        flush(&a{{I}}0, &a{{I}}1, &s{{I}}0, &s{{I}}1);
#endfor
                    }
                }
            }
        }
    }
#for I in 0..DTM
    flush(&a{{I}}0, &a{{I}}1, &s{{I}}0, &s{{I}}1);
#endfor
#for I in 0..DTM
    store(q{{I}}, n0, a{{I}}0, a{{I}}1);
#endfor
}
