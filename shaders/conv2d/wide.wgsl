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

#if SUBGROUP
// The 4 x 32 block in the subgroup build: invocation k of each 8 loads vec4 k of the 4 rows
// (4 loads where the plain build makes 32), and the shuffles hand them round.
fn wblock32(i: u32, cq: u32, lane: u32) -> WBlock {
    let k = lane % 8u;
    let v0 = wq[i + k];
    let v1 = wq[i + cq + k];
    let v2 = wq[i + 2u * cq + k];
    let v3 = wq[i + 3u * cq + k];
    return WBlock(
#for J in 0..8
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, {{J}}u)), vec4<hf>(subgroupShuffle(v1, {{J}}u)), vec4<hf>(subgroupShuffle(v2, {{J}}u)), vec4<hf>(subgroupShuffle(v3, {{J}}u))),
#endfor
    );
}
#else
// The weights of one tap and 4 input channels for output channels n0..n0+31: 32 vec4 loads.
fn wblock32(i: u32, cq: u32, lane: u32) -> WBlock {
    return WBlock(
        wblock(i, cq),
#for J in 1..8
        wblock(i + {{J}}u, cq),
#endfor
    );
}
#endif

@compute @workgroup_size(WG_X, 1, 1)
fn wide(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
#if SUBGROUP
    @builtin(subgroup_invocation_id) lane: u32,
#else
    @builtin(local_invocation_index) lane: u32, // unused
#endif
) {
    let m_count = direct_slots();
    let m0 = ((wid.x + wid.z * nwg.x) * WG_X + lid.x) * WIDE_PIXELS;
    let n0 = wid.y * 32u;
    if (retired(m0 >= m_count) || n0 >= p.cout) { return; }
#for I in 0..8
    let q{{I}} = pixel(m0 + {{I}}u, m_count);
#endfor
#for I in 0..8
#for J in 0..8
    var c{{I}}{{J}} = vec4<hf>(0.0);
#endfor
#endfor
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
#for I in 0..8
            let t{{I}} = tap(q{{I}}.base, q{{I}}.oy0, q{{I}}.ox0, ky, kx, q{{I}}.inside);
#endfor
#for I in 0..8
            let i{{I}} = t{{I}}.addr / 4u;
#endfor
            var wi = ((ky * p.kw + kx) * p.cin * p.wcout + n0) / 4u;
            for (var c4 = 0u; c4 < cin4; c4++) {
                let w = wblock32(wi, cq, lane);
#for I in 0..8
                let x{{I}} = vec4<hf>(xq[i{{I}} + c4] * t{{I}}.ok);
#endfor
#for I in 0..8
#for J in 0..8
                c{{I}}{{J}} += w.m{{J}} * x{{I}};
#endfor
#endfor
                wi += p.wcout;
            }
        }
    }
#for I in 0..8
    store8(q{{I}}, n0, c{{I}}0, c{{I}}1, c{{I}}2, c{{I}}3, c{{I}}4, c{{I}}5, c{{I}}6, c{{I}}7);
#endfor
}
