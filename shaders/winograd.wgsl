// Winograd convolution F(4x4, 3x3) (Lavin & Gray 2016) for 3x3 stride-1 convolutions: per
// 4x4 output tile, input channel and output channel
//   y = A^T [ (G g G^T) . (B^T d B) ] A      d: the 6x6 input tile, g: the 3x3 kernel,
// so the 144 multiplies of a direct 4x4 tile become 36 element-wise products, and summed over
// the input channels these are 36 independent matrix products (shaders/gemm.wgsl):
//   M[t] = V[t] U[t],   t = 0..35 (the 6x6 positions of the transformed tile).
// A kernel of kd x kd blocks of 3x3 (9x9: kd = 3) is the sum of kd^2 3x3 convolutions of the
// input shifted by 3 * (a, b): each block is one more slice of the products' inner dimension
// (K = kd^2 * cinp), 36 * 9 multiplies per 4x4 tile where a direct 9x9 does 1296.
// This file holds the three transforms (G, g, B, A of the F(4x4, 3x3) interpolation points
// 0, 1, -1, 2, -2 and infinity):
//   `weights`: U[t][ab, ci][co] = (G g_ab[.,.,ci,co] G^T)[t]                 [36][kd^2 cinp][coutp]
//   `input`:   V[t][tile][ab, ci] = (B^T d B)[t] of the tile's 6x6 input, shifted by block ab
//                                                                           [36][tiles][kd^2 cinp]
//   `output`:  y = A^T M A per tile, + bias, ReLU                        [n][ho][wo][cout]
// Tensors are NHWC float32. Channel counts are multiples of 4 here (vec4 loads; the Rust side
// pads `cin`, and `cinp`/`coutp` are the padded widths of U, V and M); a tile is
// (image, tile row, tile column) in row-major order, `th x tw` tiles per image.

struct Params {
    n: u32, h: u32, w: u32, cin: u32,     // input (cin a multiple of 4)
    ho: u32, wo: u32, cout: u32, cinp: u32, // output (cout a multiple of 4); cinp = cin
    coutp: u32, th: u32, tw: u32, tiles: u32,
    pad_t: i32, pad_l: i32, mode: u32, flags: u32,
    kd: u32,    // kernel of kd x kd blocks of 3x3 (1 or 3)
    tile0: u32, // `input`, `output`: the first tile of this pass (`tiles` of them; V and M hold those)
    _p1: u32, _p2: u32,
}

const MODE_REFLECT_PAD: u32 = 1u; // as conv2d/common.wgsl; anything else pads with zeros
const FLAG_BIAS: u32 = 1u;
const FLAG_RELU: u32 = 2u;
const FLAG_FLIP: u32 = 4u; // `weights`: the kernel rotated by 180 degrees (tap 8 - t for t)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst: array<vec4<f32>>;

// Rows of B^T applied to six values (one row or column of a tile).
struct Six {
    v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>,
}

fn bt(d: Six) -> Six {
    return Six(
        4.0 * d.v0 - 5.0 * d.v2 + d.v4,
        -4.0 * (d.v1 + d.v2) + d.v3 + d.v4,
        4.0 * (d.v1 - d.v2) - d.v3 + d.v4,
        2.0 * (d.v3 - d.v1) - d.v2 + d.v4,
        2.0 * (d.v1 - d.v3) - d.v2 + d.v4,
        4.0 * d.v1 - 5.0 * d.v3 + d.v5,
    );
}

// G applied to three values (one row or column of a kernel).
fn g3(a: vec4<f32>, b: vec4<f32>, c: vec4<f32>) -> Six {
    return Six(
        0.25 * a,
        -(a + b + c) / 6.0,
        -(a - b + c) / 6.0,
        a / 24.0 + b / 12.0 + c / 6.0,
        a / 24.0 - b / 12.0 + c / 6.0,
        c,
    );
}

struct Four {
    v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
}

// A^T applied to six values.
fn at(m: Six) -> Four {
    return Four(
        m.v0 + m.v1 + m.v2 + m.v3 + m.v4,
        m.v1 - m.v2 + 2.0 * (m.v3 - m.v4),
        m.v1 + m.v2 + 4.0 * (m.v3 + m.v4),
        m.v1 - m.v2 + 8.0 * (m.v3 - m.v4) + m.v5,
    );
}

fn six(s: Six, i: u32) -> vec4<f32> {
    switch i {
        case 0u: { return s.v0; }
        case 1u: { return s.v1; }
        case 2u: { return s.v2; }
        case 3u: { return s.v3; }
        case 4u: { return s.v4; }
        default: { return s.v5; }
    }
}

// Column j of six transformed rows, through G (`kernel`: only r0..r2 are read) or B^T.
fn column(r0: Six, r1: Six, r2: Six, r3: Six, r4: Six, r5: Six, j: u32, kernel: bool) -> Six {
    if (kernel) {
        return g3(six(r0, j), six(r1, j), six(r2, j));
    }
    return bt(Six(six(r0, j), six(r1, j), six(r2, j), six(r3, j), six(r4, j), six(r5, j)));
}

// Stores the 36 values of a transformed 6x6 tile (its rows r0..r5, transformed along the rows
// already) at dst[t * plane + i], t = 6 * row + column.
fn store6x6(i: u32, plane: u32, r0: Six, r1: Six, r2: Six, r3: Six, r4: Six, r5: Six, kernel: bool) {
    for (var j = 0u; j < 6u; j++) {
        let c = column(r0, r1, r2, r3, r4, r5, j, kernel);
        let o = j * plane + i;
        dst[o] = c.v0;
        dst[o + 6u * plane] = c.v1;
        dst[o + 12u * plane] = c.v2;
        dst[o + 18u * plane] = c.v3;
        dst[o + 24u * plane] = c.v4;
        dst[o + 30u * plane] = c.v5;
    }
}

// Invocation (x, y) of a 2-D grid of 64-wide workgroups as one linear index.
fn linear(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

// Tap (u, v) of 3x3 block `ab` (row a = ab / kd, column b = ab % kd) of the kernel
// [3kd][3kd][cinp][coutp], at vec4 i of a tap (input channel i / (coutp / 4), output
// channels 4 * (i % (coutp / 4)) and up); with FLAG_FLIP (kd = 1) tap (2 - u, 2 - v).
fn kernel_tap(ab: u32, i: u32, u: u32, v: u32) -> vec4<f32> {
    let flip = (p.flags & FLAG_FLIP) != 0u;
    let ky = 3u * (ab / p.kd) + select(u, 2u - u, flip);
    let kx = 3u * (ab % p.kd) + select(v, 2u - v, flip);
    return src[(ky * 3u * p.kd + kx) * p.cinp * (p.coutp / 4u) + i];
}

// U[t][ab * cinp + ci][co4] for one 3x3 block of the kernel, one input channel and 4 output
// channels: src is the kernel [3kd][3kd][cinp][coutp]. (A kernel of kd x kd blocks of 3x3 is
// the sum of kd^2 3x3 convolutions of shifted inputs: their products are summed by the matrix
// products along with the input channels, K = kd^2 * cinp.)
@compute @workgroup_size(64, 1, 1)
fn weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = p.coutp / 4u;
    let per_block = p.cinp * cq;
    let i = linear(gid, nwg);
    if (i >= p.kd * p.kd * per_block) { return; }
    let ab = i / per_block;
    let j = i % per_block;
    // Rows of the block through G (P[a] = G g[a]^T), then the columns of P.
    let r0 = g3(kernel_tap(ab, j, 0u, 0u), kernel_tap(ab, j, 0u, 1u), kernel_tap(ab, j, 0u, 2u));
    let r1 = g3(kernel_tap(ab, j, 1u, 0u), kernel_tap(ab, j, 1u, 1u), kernel_tap(ab, j, 1u, 2u));
    let r2 = g3(kernel_tap(ab, j, 2u, 0u), kernel_tap(ab, j, 2u, 1u), kernel_tap(ab, j, 2u, 2u));
    store6x6(i, p.kd * p.kd * per_block, r0, r1, r2, r0, r1, r2, true);
}

fn reflect(i: i32, n: i32) -> i32 {
    var r = i;
    if (r < 0) { r = -r; }
    if (r >= n) { r = 2 * n - 2 - r; }
    return clamp(r, 0, n - 1);
}

// Input channels 4*c4..4*c4+3 at column ix of the input row starting at pixel `row` (zero
// outside the input, or when the row is not `row_ok`; reflected with reflection padding).
fn texel(row: u32, row_ok: bool, ix: i32, c4: u32) -> vec4<f32> {
    let w = i32(p.w);
    var x = ix;
    var ok = row_ok && x >= 0 && x < w;
    if (p.mode == MODE_REFLECT_PAD) {
        x = reflect(x, w);
        ok = true;
    }
    let v = src[(row + u32(clamp(x, 0, w - 1))) * (p.cin / 4u) + c4];
    return select(vec4<f32>(0.0), v, ok);
}

// One row of a tile's 6x6 input through B^T: 6 columns from input row `iy`, channels c4.
fn input_row(img: u32, iy: i32, ix0: i32, c4: u32) -> Six {
    let h = i32(p.h);
    var y = iy;
    var ok = y >= 0 && y < h;
    if (p.mode == MODE_REFLECT_PAD) {
        y = reflect(y, h);
        ok = true;
    }
    let row = (img * p.h + u32(clamp(y, 0, h - 1))) * p.w;
    return bt(Six(
        texel(row, ok, ix0, c4),
        texel(row, ok, ix0 + 1, c4),
        texel(row, ok, ix0 + 2, c4),
        texel(row, ok, ix0 + 3, c4),
        texel(row, ok, ix0 + 4, c4),
        texel(row, ok, ix0 + 5, c4),
    ));
}

// V[t][tile][ab * cinp + 4 * c4 ..] for one tile, one 3x3 block `ab` of the kernel (its
// input window shifted by 3 * (a, b)) and 4 input channels: src is the input [n][h][w][cin].
@compute @workgroup_size(64, 1, 1)
fn input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = p.cin / 4u;
    let per_tile = p.kd * p.kd * cq;
    let i = linear(gid, nwg);
    if (i >= p.tiles * per_tile) { return; }
    let tile = p.tile0 + i / per_tile;
    let ab = (i % per_tile) / cq;
    let c4 = i % cq;
    let per_img = p.th * p.tw;
    let img = tile / per_img;
    let ty = (tile % per_img) / p.tw;
    let tx = tile % p.tw;
    let iy0 = i32(ty * 4u + 3u * (ab / p.kd)) - p.pad_t;
    let ix0 = i32(tx * 4u + 3u * (ab % p.kd)) - p.pad_l;
    // Rows through B^T (E[r] = B^T d[r]), then the columns of E.
    let e0 = input_row(img, iy0, ix0, c4);
    let e1 = input_row(img, iy0 + 1, ix0, c4);
    let e2 = input_row(img, iy0 + 2, ix0, c4);
    let e3 = input_row(img, iy0 + 3, ix0, c4);
    let e4 = input_row(img, iy0 + 4, ix0, c4);
    let e5 = input_row(img, iy0 + 5, ix0, c4);
    store6x6(i, p.tiles * per_tile, e0, e1, e2, e3, e4, e5, false);
}

// The output of one tile and 4 output channels: src is M [36][tiles][coutp], dst the output
// [n][ho][wo][cout].
@compute @workgroup_size(64, 1, 1)
fn output(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let oq = p.cout / 4u;
    let i = linear(gid, nwg);
    if (i >= p.tiles * oq) { return; }
    let local = i / oq; // the tile in this pass's M
    let tile = p.tile0 + local;
    let co4 = i % oq;
    let mq = p.coutp / 4u;
    let plane = p.tiles * mq;
    let m0 = local * mq + co4;
    // Rows of M through A^T (F[r] = A^T M[r], r = 0..5), then the columns of F.
    let f0 = at(six_at(m0, plane));
    let f1 = at(six_at(m0 + 6u * plane, plane));
    let f2 = at(six_at(m0 + 12u * plane, plane));
    let f3 = at(six_at(m0 + 18u * plane, plane));
    let f4 = at(six_at(m0 + 24u * plane, plane));
    let f5 = at(six_at(m0 + 30u * plane, plane));
    var b = vec4<f32>(0.0);
    if ((p.flags & FLAG_BIAS) != 0u) { b = bias[co4]; }
    let per_img = p.th * p.tw;
    let img = tile / per_img;
    let oy0 = ((tile % per_img) / p.tw) * 4u;
    let ox0 = (tile % p.tw) * 4u;
    let base = img * p.ho;
    store_column(base, oy0, ox0, oq, co4, b, at(Six(f0.v0, f1.v0, f2.v0, f3.v0, f4.v0, f5.v0)));
    store_column(base, oy0, ox0 + 1u, oq, co4, b, at(Six(f0.v1, f1.v1, f2.v1, f3.v1, f4.v1, f5.v1)));
    store_column(base, oy0, ox0 + 2u, oq, co4, b, at(Six(f0.v2, f1.v2, f2.v2, f3.v2, f4.v2, f5.v2)));
    store_column(base, oy0, ox0 + 3u, oq, co4, b, at(Six(f0.v3, f1.v3, f2.v3, f3.v3, f4.v3, f5.v3)));
}

// Six vec4s of M, `plane` apart (one row of a tile's 6x6 positions).
fn six_at(o: u32, plane: u32) -> Six {
    return Six(src[o], src[o + plane], src[o + 2u * plane], src[o + 3u * plane], src[o + 4u * plane], src[o + 5u * plane]);
}

// Writes column ox of an output tile (rows oy0..oy0+3 of image rows from `base`), with the
// bias and ReLU, where it lies inside the output.
fn store_column(base: u32, oy0: u32, ox: u32, oq: u32, co4: u32, b: vec4<f32>, c: Four) {
    if (ox >= p.wo) { return; }
    let ys = array<vec4<f32>, 4>(c.v0, c.v1, c.v2, c.v3);
    for (var r = 0u; r < 4u; r++) {
        let oy = oy0 + r;
        if (oy < p.ho) {
            var v = ys[r] + b;
            if ((p.flags & FLAG_RELU) != 0u) { v = max(v, vec4<f32>(0.0)); }
            dst[((base + oy) * p.wo + ox) * oq + co4] = v;
        }
    }
}
