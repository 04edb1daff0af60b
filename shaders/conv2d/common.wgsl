#if ENABLE_F16
enable f16;
#endif
#if COOP
enable wgpu_cooperative_matrix;
#endif
// 2-D convolution and transposed convolution: what every kernel of the conv2d builds shares.
// src/ops/conv_shaders.rs assembles each build from this file, tiled.wgsl, direct.wgsl and
// wide.wgsl (and coop.wgsl for the cooperative-matrix builds) with the preprocessor of
// src/gpu/wgsl.rs. Its names: flags ENABLE_F16, COOP, SUBGROUP; values HF, DTM, S.
//
// Tensors are NHWC float32; the kernel is HWIO [kh, kw, cin, cout], i.e. a row-major
// K x Cout matrix with k = (ky, kx, ci).
//
// Precision: tiles and products are of type `hf`: f32, or f16 in the half-precision builds
// (adapters with SHADER_F16). Then FLUSH is true: products are summed in f16 over one K step
// (BK terms; 16 input channels in the direct kernel) and those partial sums in f32, so the
// error does not grow with the depth of the reduction. Global memory stays f32.

override WG_X: u32 = 16u;  // invocations along output channels
override WG_Y: u32 = 16u;  // invocations along output pixels
override BK: u32 = 16u;    // depth of one K step; WG_X * WG_Y must be a multiple of BK
override FLUSH: bool = false; // add the hf partial sums into f32 accumulators every 16 terms
override ROWS: bool = false;  // direct kernel: stride 1, pixels of one row, sliding window
override NARROW: bool = false; // direct kernel: at most 4 output channels (only the first 4 of 8)

alias hf = {{HF}};

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
