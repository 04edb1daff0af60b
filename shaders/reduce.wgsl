// Reductions to scalars on the GPU, in two passes so that float32 sums stay accurate:
//   partial: workgroup w sums its grid-strided elements of f(a, b) (per-invocation running
//            sums, then a tree in workgroup memory) into parts[w];
//            f = a*b (mode 0), (a-b)^2 (mode 1), a*a (mode 2)
//   finish:  one workgroup sums parts[0..count] (again per invocation, then a tree) and
//            writes out[slot] = scale * sum.

struct Params {
    len: u32, mode: u32, count: u32, slot: u32,
    scale: f32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> sh: array<f32, 256>;

fn tree(lid: u32) {
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) { sh[lid] += sh[lid + s]; }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256, 1, 1)
fn partial(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    var acc = 0.0;
    let stride = nwg.x * 256u;
    for (var i = wid.x * 256u + lid; i < p.len; i += stride) {
        let va = a[i];
        if (p.mode == 0u) {
            acc = fma(va, b[i], acc);
        } else if (p.mode == 1u) {
            let d = va - b[i];
            acc = fma(d, d, acc);
        } else {
            acc = fma(va, va, acc);
        }
    }
    sh[lid] = acc;
    tree(lid);
    if (lid == 0u) { out[wid.x] = sh[0]; }
}

@compute @workgroup_size(256, 1, 1)
fn finish(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < p.count; i += 256u) { acc += a[i]; }
    sh[lid] = acc;
    tree(lid);
    if (lid == 0u) { out[p.slot] = sh[0] * p.scale; }
}
