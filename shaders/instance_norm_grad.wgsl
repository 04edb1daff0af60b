// Backward pass of instance normalisation (shaders/instance_norm.wgsl) over NHWC tensors.
// Forward: xhat = (x - mean) * inv_std; y = relu?(scale * xhat + shift (+ residual)).
// With g = dy masked by y > 0 (when the forward had a ReLU), per image and channel
//   S1 = sum_hw g,  S2 = sum_hw g * xhat,
//   dshift = sum_n S1,  dscale = sum_n S2,
//   dx = scale * inv_std * (g - S1 / HW - xhat * S2 / HW).
// Three kernels:
//   grad_partial  - S1, S2 over a chunk of pixels (8 lanes per channel, then a tree);
//   grad_finalize - per channel: adds the chunks of each image, then the images (fixed order);
//   grad_input    - dx, element-wise.

const LANES_C: u32 = 32u; // channels per workgroup
const LANES_P: u32 = 8u;  // pixel lanes per channel

const FLAG_RELU: u32 = 1u;

struct Params {
    n: u32,          // images
    hw: u32,         // pixels per image
    c: u32,          // channels
    chunks: u32,     // pixel chunks per image
    chunk_len: u32,  // pixels per chunk
    flags: u32,
    total: u32,      // n * hw * c
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // pre-norm input
@group(0) @binding(2) var<storage, read> stats: array<vec2<f32>>; // (mean, inv_std) per (n, c)
@group(0) @binding(3) var<storage, read> y: array<f32>;          // forward output (ReLU mask)
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
// (S1, S2) per (image, chunk, channel)
@group(0) @binding(6) var<storage, read_write> partials: array<vec2<f32>>;
// (S1, S2) per (image, channel)
@group(0) @binding(7) var<storage, read_write> sums: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;
@group(0) @binding(9) var<storage, read_write> dshift: array<f32>;
@group(0) @binding(10) var<storage, read_write> dscale: array<f32>;

var<workgroup> red: array<vec2<f32>, 256>;

fn masked(i: u32) -> f32 {
    if ((p.flags & FLAG_RELU) != 0u && !(y[i] > 0.0)) { return 0.0; }
    return dy[i];
}

@compute @workgroup_size(32, 8, 1)
fn grad_partial(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let ch = wid.x * LANES_C + lid.x;
    let chunk = wid.y;
    let img = wid.z;
    let start = chunk * p.chunk_len;
    let end = min(start + p.chunk_len, p.hw);
    var s = vec2<f32>(0.0);
    if (ch < p.c) {
        let st = stats[img * p.c + ch];
        let base = img * p.hw * p.c + ch;
        for (var px = start + lid.y; px < end; px += LANES_P) {
            let i = base + px * p.c;
            let g = masked(i);
            s += vec2<f32>(g, g * (x[i] - st.x) * st.y);
        }
    }
    let slot = lid.y * LANES_C + lid.x;
    red[slot] = s;
    workgroupBarrier();
    for (var stride = LANES_P / 2u; stride > 0u; stride /= 2u) {
        if (lid.y < stride) {
            red[slot] = red[slot] + red[slot + stride * LANES_C];
        }
        workgroupBarrier();
    }
    if (lid.y == 0u && ch < p.c) {
        partials[(img * p.chunks + chunk) * p.c + ch] = red[lid.x];
    }
}

@compute @workgroup_size(64, 1, 1)
fn grad_finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = gid.x;
    if (ch >= p.c) { return; }
    var total = vec2<f32>(0.0);
    for (var img = 0u; img < p.n; img++) {
        var s = vec2<f32>(0.0);
        for (var k = 0u; k < p.chunks; k++) {
            s += partials[(img * p.chunks + k) * p.c + ch];
        }
        sums[img * p.c + ch] = s;
        total += s;
    }
    dshift[ch] = total.x;
    dscale[ch] = total.y;
}

@group(0) @binding(11) var<storage, read> sums_in: array<vec2<f32>>;

@compute @workgroup_size(256, 1, 1)
fn grad_input(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let ch = i % p.c;
    let k = (i / (p.hw * p.c)) * p.c + ch;
    let st = stats[k];
    let s = sums_in[k] / f32(p.hw);
    let xhat = (x[i] - st.x) * st.y;
    dx[i] = scale[ch] * st.y * (masked(i) - s.x - xhat * s.y);
}
