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
