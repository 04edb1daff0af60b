// The subgroup build of conv2d.wgsl's direct kernel: src/gpu/kernels.rs puts these
// functions in place of the file's own (between its "subgroup: begin" and "subgroup: end" lines);
// the build validates as a whole in the naga test. Needs the SUBGROUP feature, subgroups of
// at least 8 invocations, and one output channel block per subgroup (the direct tiles of one
// invocation row, WG_Y = 1).
//
// Every invocation of a subgroup needs the same 8 vec4s of weights per tap (its pixels
// differ, its output channels do not). lavapipe runs a load whose address is not known to be
// uniform as a loop over the SIMD lanes (Mesa 22.3 `emit_load_mem`), so 8 loads cost 8 such
// loops; here each of the first 8 invocations loads one vec4 (one loop) and `subgroupShuffle`
// with a constant index (one vector shuffle on lavapipe) hands them round. Invocation k
// loads the vec4 that `wblock` reads as column k / 2 of block k % 2.
fn wpair(i: u32, cq: u32, lane: u32) -> WPair {
    let k = lane % 8u;
    let v = wq[i + k % 2u + (k / 2u) * cq];
    return WPair(
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v, 0u)), vec4<hf>(subgroupShuffle(v, 2u)), vec4<hf>(subgroupShuffle(v, 4u)), vec4<hf>(subgroupShuffle(v, 6u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v, 1u)), vec4<hf>(subgroupShuffle(v, 3u)), vec4<hf>(subgroupShuffle(v, 5u)), vec4<hf>(subgroupShuffle(v, 7u))),
    );
}

// The `wide` kernel's 4 x 32 block: invocation k of each 8 loads vec4 k of the 4 rows (4 loads
// where the plain build makes 32), and the shuffles hand them round.
fn wblock32(i: u32, cq: u32, lane: u32) -> WBlock {
    let k = lane % 8u;
    let v0 = wq[i + k];
    let v1 = wq[i + cq + k];
    let v2 = wq[i + 2u * cq + k];
    let v3 = wq[i + 3u * cq + k];
    return WBlock(
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 0u)), vec4<hf>(subgroupShuffle(v1, 0u)), vec4<hf>(subgroupShuffle(v2, 0u)), vec4<hf>(subgroupShuffle(v3, 0u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 1u)), vec4<hf>(subgroupShuffle(v1, 1u)), vec4<hf>(subgroupShuffle(v2, 1u)), vec4<hf>(subgroupShuffle(v3, 1u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 2u)), vec4<hf>(subgroupShuffle(v1, 2u)), vec4<hf>(subgroupShuffle(v2, 2u)), vec4<hf>(subgroupShuffle(v3, 2u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 3u)), vec4<hf>(subgroupShuffle(v1, 3u)), vec4<hf>(subgroupShuffle(v2, 3u)), vec4<hf>(subgroupShuffle(v3, 3u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 4u)), vec4<hf>(subgroupShuffle(v1, 4u)), vec4<hf>(subgroupShuffle(v2, 4u)), vec4<hf>(subgroupShuffle(v3, 4u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 5u)), vec4<hf>(subgroupShuffle(v1, 5u)), vec4<hf>(subgroupShuffle(v2, 5u)), vec4<hf>(subgroupShuffle(v3, 5u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 6u)), vec4<hf>(subgroupShuffle(v1, 6u)), vec4<hf>(subgroupShuffle(v2, 6u)), vec4<hf>(subgroupShuffle(v3, 6u))),
        mat4x4<hf>(vec4<hf>(subgroupShuffle(v0, 7u)), vec4<hf>(subgroupShuffle(v1, 7u)), vec4<hf>(subgroupShuffle(v2, 7u)), vec4<hf>(subgroupShuffle(v3, 7u))),
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
