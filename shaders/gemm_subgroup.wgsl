// The subgroup build of gemm.wgsl's `rows` kernel: src/gpu/kernels.rs puts these functions in
// place of the file's own (between its "subgroup: begin" and "subgroup: end" lines); the
// build validates as a whole in the naga test. Needs the SUBGROUP feature and subgroups of at
// least 8 invocations.
//
// Every invocation needs the same 4 x 8 vec4s of B per step (they differ by row of A, not by
// column): invocation l of each 8 loads column n0 + l of the 4 rows (4 loads, where the plain
// build's invocations make 32 each) and `subgroupShuffle` with a constant index (one vector
// shuffle on lavapipe) hands them round.
fn block(i: u32, lane: u32) -> Block {
    let l = lane % 8u;
    let v0 = b[i + l];
    let v1 = b[i + p.n4 + l];
    let v2 = b[i + 2u * p.n4 + l];
    let v3 = b[i + 3u * p.n4 + l];
    return Block(
        mat4x4<f32>(subgroupShuffle(v0, 0u), subgroupShuffle(v1, 0u), subgroupShuffle(v2, 0u), subgroupShuffle(v3, 0u)),
        mat4x4<f32>(subgroupShuffle(v0, 1u), subgroupShuffle(v1, 1u), subgroupShuffle(v2, 1u), subgroupShuffle(v3, 1u)),
        mat4x4<f32>(subgroupShuffle(v0, 2u), subgroupShuffle(v1, 2u), subgroupShuffle(v2, 2u), subgroupShuffle(v3, 2u)),
        mat4x4<f32>(subgroupShuffle(v0, 3u), subgroupShuffle(v1, 3u), subgroupShuffle(v2, 3u), subgroupShuffle(v3, 3u)),
        mat4x4<f32>(subgroupShuffle(v0, 4u), subgroupShuffle(v1, 4u), subgroupShuffle(v2, 4u), subgroupShuffle(v3, 4u)),
        mat4x4<f32>(subgroupShuffle(v0, 5u), subgroupShuffle(v1, 5u), subgroupShuffle(v2, 5u), subgroupShuffle(v3, 5u)),
        mat4x4<f32>(subgroupShuffle(v0, 6u), subgroupShuffle(v1, 6u), subgroupShuffle(v2, 6u), subgroupShuffle(v3, 6u)),
        mat4x4<f32>(subgroupShuffle(v0, 7u), subgroupShuffle(v1, 7u), subgroupShuffle(v2, 7u), subgroupShuffle(v3, 7u)),
    );
}

// Every invocation of a subgroup must run the loop for the others' loads of B: return only
// when the whole subgroup is past the last row.
fn retired(past: bool) -> bool {
    return subgroupAll(past);
}
