// Instance normalisation over NHWC tensors, in three kernels:
//   stats_partial  - Welford (count, mean, M2) of each channel over a chunk of pixels,
//                    merged across the workgroup with Chan's parallel formula;
//   stats_finalize - merges the chunks of each (image, channel) into (mean, 1/sqrt(var+eps));
//   apply          - y = scale * (x - mean) * inv_std + shift, optional residual add, optional ReLU.
// No E[x^2] - E[x]^2 anywhere: the result stays accurate for activations of any size.

const LANES_C: u32 = 32u; // channels per workgroup
const LANES_P: u32 = 8u;  // pixel lanes per channel

const FLAG_RELU: u32 = 1u;
const FLAG_RESIDUAL: u32 = 2u;

struct Params {
    n: u32,          // images
    hw: u32,         // pixels per image
    c: u32,          // channels
    chunks: u32,     // pixel chunks per image (partials per channel)
    chunk_len: u32,  // pixels per chunk
    flags: u32,
    eps: f32,
    total: u32,      // n * hw * c
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// (count, mean, M2, unused) per (image, chunk, channel)
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

var<workgroup> red: array<vec4<f32>, 256>;

fn merge(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let n = a.x + b.x;
    if (n == 0.0) { return vec4<f32>(0.0); }
    let d = b.y - a.y;
    let fb = b.x / n;
    return vec4<f32>(n, a.y + d * fb, a.z + b.z + d * d * a.x * fb, 0.0);
}

@compute @workgroup_size(32, 8, 1)
fn stats_partial(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let ch = wid.x * LANES_C + lid.x;
    let chunk = wid.y;
    let img = wid.z;
    let start = chunk * p.chunk_len;
    let end = min(start + p.chunk_len, p.hw);
    var s = vec4<f32>(0.0);
    if (ch < p.c) {
        let base = img * p.hw * p.c + ch;
        for (var px = start + lid.y; px < end; px += LANES_P) {
            let v = x[base + px * p.c];
            s.x += 1.0;
            let d = v - s.y;
            s.y += d / s.x;
            s.z += d * (v - s.y);
        }
    }
    let slot = lid.y * LANES_C + lid.x;
    red[slot] = s;
    workgroupBarrier();
    for (var stride = LANES_P / 2u; stride > 0u; stride /= 2u) {
        if (lid.y < stride) {
            red[slot] = merge(red[slot], red[slot + stride * LANES_C]);
        }
        workgroupBarrier();
    }
    if (lid.y == 0u && ch < p.c) {
        partials[(img * p.chunks + chunk) * p.c + ch] = red[lid.x];
    }
}

// (mean, inv_std) per (image, channel)
@group(0) @binding(3) var<storage, read_write> stats: array<vec2<f32>>;

@compute @workgroup_size(64, 1, 1)
fn stats_finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.n * p.c) { return; }
    let img = i / p.c;
    let ch = i % p.c;
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < p.chunks; k++) {
        s = merge(s, partials[(img * p.chunks + k) * p.c + ch]);
    }
    let var_ = s.z / max(s.x, 1.0);
    stats[i] = vec2<f32>(s.y, inverseSqrt(var_ + p.eps));
}

@group(0) @binding(4) var<storage, read> stats_in: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> shift: array<f32>;
@group(0) @binding(6) var<storage, read> scale: array<f32>;
@group(0) @binding(7) var<storage, read> residual: array<f32>;
@group(0) @binding(8) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn apply(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let ch = i % p.c;
    let img = i / (p.hw * p.c);
    let st = stats_in[img * p.c + ch];
    var v = scale[ch] * (x[i] - st.x) * st.y + shift[ch];
    if ((p.flags & FLAG_RESIDUAL) != 0u) { v += residual[i]; }
    if ((p.flags & FLAG_RELU) != 0u) { v = max(v, 0.0); }
    y[i] = v;
}

// 4 channels at once, for channel counts that are multiples of 4: the same buffers read as
// vec4s (read-only bindings may alias). lavapipe runs each load instruction as a loop over the
// SIMD lanes, so one vec4 load costs about what one scalar load does.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> stats4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> shift4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> scale4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> residual4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> y4: array<vec4<f32>>;

// `stats_partial` for 4 channels per invocation, one invocation per (image, chunk, 4
// channels), Welford over the chunk's pixels in order (no workgroup reduction). The partials
// are written per channel, as `stats_partial` writes them.
@compute @workgroup_size(64, 1, 1)
fn stats_partial4(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let cq = p.c / 4u;
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n * p.chunks * cq) { return; }
    let ch4 = i % cq;
    let chunk = (i / cq) % p.chunks;
    let img = i / (cq * p.chunks);
    let start = chunk * p.chunk_len;
    let end = min(start + p.chunk_len, p.hw);
    var mean = vec4<f32>(0.0);
    var m2 = vec4<f32>(0.0);
    var k = 0.0;
    var at = (img * p.hw + start) * cq + ch4;
    for (var px = start; px < end; px++) {
        let v = x4[at];
        k += 1.0;
        let d = v - mean;
        mean += d / k;
        m2 += d * (v - mean);
        at += cq;
    }
    let o = (img * p.chunks + chunk) * p.c + 4u * ch4;
    partials[o] = vec4<f32>(k, mean.x, m2.x, 0.0);
    partials[o + 1u] = vec4<f32>(k, mean.y, m2.y, 0.0);
    partials[o + 2u] = vec4<f32>(k, mean.z, m2.z, 0.0);
    partials[o + 3u] = vec4<f32>(k, mean.w, m2.w, 0.0);
}

// Pixels per invocation of `apply4`.
const APPLY_PIXELS: u32 = 4u;

// `apply` for 4 channels and APPLY_PIXELS consecutive pixels per invocation (the statistics,
// scale and shift are loaded once for them).
@compute @workgroup_size(64, 1, 1)
fn apply4(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let cq = p.c / 4u;
    let groups = (p.hw + APPLY_PIXELS - 1u) / APPLY_PIXELS; // pixel groups per image
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n * groups * cq) { return; }
    let ch4 = i % cq;
    let g = (i / cq) % groups;
    let img = i / (cq * groups);
    // (mean, inv_std) of channels 4*ch4 .. 4*ch4+3 as two vec4s.
    let s = img * (p.c / 2u) + 2u * ch4;
    let a = stats4[s];
    let b = stats4[s + 1u];
    let mean = vec4<f32>(a.x, a.z, b.x, b.z);
    let inv_std = vec4<f32>(a.y, a.w, b.y, b.w);
    let sc = scale4[ch4];
    let sh = shift4[ch4];
    let px0 = g * APPLY_PIXELS;
    for (var j = 0u; j < APPLY_PIXELS; j++) {
        if (px0 + j >= p.hw) { break; }
        let e = (img * p.hw + px0 + j) * cq + ch4;
        var v = sc * (x4[e] - mean) * inv_std + sh;
        if ((p.flags & FLAG_RESIDUAL) != 0u) { v += residual4[e]; }
        if ((p.flags & FLAG_RELU) != 0u) { v = max(v, vec4<f32>(0.0)); }
        y4[e] = v;
    }
}
