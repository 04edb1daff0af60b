//! naga validation of every op module's shader builds, and the check that every file under
//! `shaders/` is read by some build.

use super::{shader_files, shaders};
use crate::gpu::kernels::naga_check::{validate, with_constants};
use crate::gpu::kernels::Kernel;

#[test]
fn every_build_parses_and_validates() {
    let all = shaders();
    for s in &all {
        // Nothing of the preprocessor is left in a build.
        assert!(!s.source.contains("{{"), "{}: leftover {{{{", s.name);
        for (i, line) in s.source.lines().enumerate() {
            assert!(
                !line.trim_start().starts_with('#'),
                "{}:{}: a directive is left: {line}",
                s.name,
                i + 1
            );
        }
        validate(s);
    }
    let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        all.len(),
        "a build's name keys the module cache"
    );
}

#[test]
fn every_shader_file_is_read_by_a_build() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wgsl") {
                let rel = path.strip_prefix(&root).unwrap();
                on_disk.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    on_disk.sort();
    let mut used: Vec<String> = shader_files().iter().map(|s| s.to_string()).collect();
    used.sort();
    used.dedup();
    assert_eq!(
        on_disk, used,
        "files under shaders/ and the files the builds read"
    );
}

#[test]
fn weight_grad_variants_validate() {
    let shader = crate::ops::conv_grad::CONV2D_GRAD;
    let (module, info) = validate(&shader);
    for kernel in crate::ops::conv_grad::WeightGradKernel::VARIANTS {
        with_constants(&module, &info, &Kernel::new(shader, kernel.entry()))
            .unwrap_or_else(|e| panic!("{kernel:?}: {e}"));
    }
}

#[test]
fn winograd_entry_points_exist() {
    let (module, _) = validate(&crate::ops::conv::winograd::WINOGRAD);
    for entry in ["weights", "input", "output"] {
        assert!(
            module.entry_points.iter().any(|e| e.name == entry),
            "{entry}"
        );
    }
}
