//! Every `#[repr(C)]` uniform struct against the WGSL struct its shader binds as
//! `var<uniform>`: the struct is written twice by hand (Rust fills it, WGSL reads it) and a
//! field added, dropped, swapped or retyped on one side only would silently feed the kernel
//! wrong numbers. naga lays the WGSL struct out (its `span` and member offsets);
//! `size_of`/`offset_of!` give the Rust side.
//!
//! The check knows no op: [`CASES`] lists each struct with its shaders, and
//! `every_repr_c_struct_is_checked` fails when a `#[repr(C)]` struct in `src/` is missing there.

use std::ops::Range;

/// One member of a struct: name, byte offset and byte size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) offset: usize,
    pub(crate) size: usize,
}

/// A struct's layout: its full path (Rust) or name and shader (WGSL), size and members in
/// declaration order.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) name: String,
    pub(crate) size: usize,
    pub(crate) members: Vec<Member>,
}

/// The [`Layout`] of a Rust struct. The destructuring pattern must name every field (it has
/// no `..`), so a field added to the struct but not listed here is a compile error.
macro_rules! rust_layout {
    ($ty:path { $($field:ident),* $(,)? }) => {{
        let value: $ty = bytemuck::Zeroable::zeroed();
        let $ty { $($field),* } = &value;
        Layout {
            name: std::any::type_name::<$ty>().to_string(),
            size: std::mem::size_of::<$ty>(),
            members: vec![$(Member {
                name: stringify!($field).to_string(),
                offset: std::mem::offset_of!($ty, $field),
                size: std::mem::size_of_val($field),
            }),*],
        }
    }};
}

/// The layout of the struct that `source` binds as `var<uniform>` (there must be exactly
/// one), as naga lays it out.
pub(crate) fn wgsl_uniform_layout(shader: &str, source: &str) -> Result<Layout, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("{shader}: {}", e.emit_to_string(source)))?;
    let uniforms: Vec<_> = module
        .global_variables
        .iter()
        .filter(|(_, g)| g.space == naga::AddressSpace::Uniform)
        .collect();
    let [(_, var)] = uniforms[..] else {
        return Err(format!(
            "{shader}: {} `var<uniform>` bindings, expected one",
            uniforms.len()
        ));
    };
    let ty = &module.types[var.ty];
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        return Err(format!("{shader}: the uniform is not a struct"));
    };
    let name = ty.name.clone().unwrap_or_default();
    let members = members
        .iter()
        .map(|m| Member {
            name: m.name.clone().unwrap_or_default(),
            offset: m.offset as usize,
            size: module.types[m.ty].inner.size(module.to_ctx()) as usize,
        })
        .collect();
    Ok(Layout {
        name: format!("{name} in {shader}"),
        size: *span as usize,
        members,
    })
}

/// Padding members (a name starting with `_`) may be split differently on the two sides
/// (`_p: [u32; 2]` against `_p1: u32, _p2: u32`): only the bytes they cover must agree.
fn is_padding(m: &Member) -> bool {
    m.name.starts_with('_')
}

/// The byte ranges covered by padding members, adjacent ones merged.
fn padding_bytes(l: &Layout) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for m in l.members.iter().filter(|m| is_padding(m)) {
        match out.last_mut() {
            Some(r) if r.end == m.offset => r.end += m.size,
            _ => out.push(m.offset..m.offset + m.size),
        }
    }
    out
}

/// `Ok` when `rust` and `wgsl` agree: the same size; the same members in the same order
/// with the same names, offsets and sizes (padding aside); padding over the same bytes.
/// Otherwise a message naming the struct and the first member that differs.
pub(crate) fn compare(rust: &Layout, wgsl: &Layout) -> Result<(), String> {
    let what = format!("{} against {}", rust.name, wgsl.name);
    let real = |l: &Layout| -> Vec<Member> {
        l.members
            .iter()
            .filter(|m| !is_padding(m))
            .cloned()
            .collect()
    };
    let (r, w) = (real(rust), real(wgsl));
    for (i, (a, b)) in r.iter().zip(&w).enumerate() {
        if a != b {
            return Err(format!(
                "{what}: member {i} is `{}` at offset {} ({} bytes) in Rust, `{}` at offset {} \
                 ({} bytes) in WGSL",
                a.name, a.offset, a.size, b.name, b.offset, b.size
            ));
        }
    }
    if r.len() != w.len() {
        let extra = if r.len() > w.len() {
            &r[w.len()]
        } else {
            &w[r.len()]
        };
        return Err(format!(
            "{what}: {} members in Rust, {} in WGSL (first unmatched: `{}`)",
            r.len(),
            w.len(),
            extra.name
        ));
    }
    if rust.size != wgsl.size {
        return Err(format!(
            "{what}: {} bytes in Rust, {} in WGSL",
            rust.size, wgsl.size
        ));
    }
    let (pr, pw) = (padding_bytes(rust), padding_bytes(wgsl));
    if pr != pw {
        return Err(format!(
            "{what}: padding covers bytes {pr:?} in Rust, {pw:?} in WGSL"
        ));
    }
    Ok(())
}

/// A Rust uniform struct and the shaders (name, source) that read it.
struct Case {
    rust: Layout,
    shaders: Vec<(&'static str, &'static str)>,
}

/// Every uniform struct with the shaders that read it.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use crate::gpu::kernels::Shader;
    use crate::ops::conv::shaders::{conv2d_build, gemm_build};
    use crate::ops::*;
    let one = |s: Shader| vec![(s.name, s.source)];
    let mut conv_builds = Vec::new();
    for (half, subgroup) in [(false, false), (true, false), (false, true), (true, true)] {
        let b = conv2d_build(half, subgroup, 0);
        conv_builds.push((b.name, b.source));
    }
    for coop in [8, 16] {
        let b = conv2d_build(true, false, coop);
        conv_builds.push((b.name, b.source));
    }
    let gemm_builds = [false, true].map(|sg| (gemm_build(sg).name, gemm_build(sg).source));
    let case = |rust, shaders| Case { rust, shaders };
    vec![
        case(rust_layout!(conv::params::Params {
            n, h, w, cin, ho, wo, cout, kh, kw, stride, pad_t, pad_l, mode, flags, wcout, _p
        }), conv_builds),
        case(rust_layout!(conv_grad::Params {
            n, h, w, cin, ho, wo, cout, kh, kw, stride, pad_t, pad_l, chunk, splits, flags, _p
        }), one(conv_grad::CONV2D_GRAD)),
        case(rust_layout!(conv::winograd::WinogradParams {
            n, h, w, cin, ho, wo, cout, cinp, coutp, th, tw, tiles, pad_t, pad_l, mode, flags,
            kd, tile0, _p
        }), one(conv::winograd::WINOGRAD)),
        case(rust_layout!(gemm::Params { m, k4, n4, _p0, a_batch, b_batch, c_batch, _p1 }),
            gemm_builds.to_vec()),
        case(rust_layout!(crop::Params { n, src_h, src_w, c, y0, x0, h, w, total, src_c, _p }),
            one(crop::CROP)),
        case(rust_layout!(elementwise::Params { len, scale, offset, _p }), one(elementwise::ELEMENTWISE)),
        case(rust_layout!(gram::Params { k, c, scale, _p }), one(gram::GRAM)),
        case(rust_layout!(loss::Params { len, h, w, c, scale, first, n_content, n_style }),
            one(loss::LOSS)),
        case(rust_layout!(norm::Params { n, hw, c, chunks, chunk_len, flags, eps, total }),
            one(norm::INSTANCE_NORM)),
        case(rust_layout!(norm_grad::Params { n, hw, c, chunks, chunk_len, flags, total, _p }),
            one(norm_grad::INSTANCE_NORM_GRAD)),
        case(rust_layout!(optim::Params { len, _p, lr, b1, b2, eps, bc1, bc2, _q }),
            one(optim::OPTIM)),
        case(rust_layout!(pool::Params { n, h, w, c, ho, wo, total, _p }), one(pool::POOL)),
        case(rust_layout!(reduce::Params { len, mode, count, slot, scale, _p }), one(reduce::REDUCE)),
        case(rust_layout!(upsample::Params { n, h, w, c, factor, total, _p }), one(upsample::UPSAMPLE)),
        case(rust_layout!(vecops::Params { len, flags, alpha, _p }), one(vecops::VECOPS)),
    ]
}

#[test]
fn uniform_layouts_match_their_wgsl_structs() {
    let mut failures = Vec::new();
    for case in cases() {
        for (shader, source) in &case.shaders {
            let checked = wgsl_uniform_layout(shader, source).and_then(|w| compare(&case.rust, &w));
            if let Err(e) = checked {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `crate::a::b` for `src/a/b.rs` or `src/a/b/mod.rs`.
fn module_of(path: &std::path::Path, src: &std::path::Path) -> String {
    let rel = path.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    std::iter::once("wgstyle".to_string())
        .chain(parts)
        .collect::<Vec<_>>()
        .join("::")
}

/// Every `#[repr(C)]` struct under `src/` (these are the uniform structs) is in [`cases`].
#[test]
fn every_repr_c_struct_is_checked() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Top-level items only (the test structs below are inside a function).
        let mut lines = text.lines();
        while let Some(l) = lines.next() {
            if l != "#[repr(C)]" {
                continue;
            }
            // The struct line follows its attributes.
            let decl = lines.find(|l| !l.starts_with("#[")).unwrap_or_default();
            if let Some(rest) = decl.split("struct ").nth(1) {
                let name = rest
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next();
                found.push(format!("{}::{}", module_of(&f, &src), name.unwrap()));
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = cases().into_iter().map(|c| c.rust.name).collect();
    listed.sort();
    assert_eq!(found, listed, "every #[repr(C)] struct has a layout case");
}

/// The check fails, naming the struct and the member, on a struct that disagrees with its
/// shader: two fields swapped (same offsets and sizes), a field too few, a wider field,
/// padding over other bytes.
#[test]
fn layout_check_catches_a_wrong_struct() {
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Zeroable)]
    struct Swapped {
        len: u32,
        offset: f32,
        scale: f32,
        _p: u32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Zeroable)]
    struct Short {
        len: u32,
        scale: f32,
        _p: [u32; 2],
    }
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Zeroable)]
    struct Wide {
        len: u64,
        scale: f32,
        offset: f32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Zeroable)]
    struct Shifted {
        len: u32,
        _p: u32,
        scale: f32,
        offset: f32,
    }
    let shader = crate::ops::elementwise::ELEMENTWISE;
    let wgsl = wgsl_uniform_layout(shader.name, shader.source).unwrap();
    let right = rust_layout!(crate::ops::elementwise::Params {
        len,
        scale,
        offset,
        _p
    });
    compare(&right, &wgsl).unwrap();
    let wrong = [
        (
            rust_layout!(Swapped {
                len,
                offset,
                scale,
                _p
            }),
            "`offset` at offset 4",
        ),
        (
            rust_layout!(Short { len, scale, _p }),
            "first unmatched: `offset`",
        ),
        (
            rust_layout!(Wide { len, scale, offset }),
            "`len` at offset 0 (8 bytes)",
        ),
        (
            rust_layout!(Shifted {
                len,
                _p,
                scale,
                offset
            }),
            "`scale` at offset 8",
        ),
    ];
    for (rust, expected) in wrong {
        let e = compare(&rust, &wgsl).unwrap_err();
        eprintln!("{e}");
        assert!(
            e.contains(&rust.name) && e.contains("Params in elementwise") && e.contains(expected),
            "{e}"
        );
    }
}

/// A shader with no uniform, or the uniform not a struct, is an error rather than a pass.
#[test]
fn layout_check_needs_one_uniform_struct() {
    let none = "@compute @workgroup_size(1) fn main() {}";
    assert!(wgsl_uniform_layout("none", none)
        .unwrap_err()
        .contains("0 `var<uniform>`"));
    let scalar = "@group(0) @binding(0) var<uniform> p: vec4<u32>;";
    assert!(wgsl_uniform_layout("scalar", scalar)
        .unwrap_err()
        .contains("not a struct"));
}
