//! `wgstyle bench --quick` runs on this machine's adapter and writes a well-formed report
//! (no timing is asserted: only structure and the arithmetic of the derived columns).

mod common;

use std::process::Command;

#[test]
fn quick_bench_writes_a_comparable_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_wgstyle"))
        .env("WGSTYLE_CACHE_DIR", common::autotune_cache_dir())
        .args(["bench", "--quick", "--reps", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("network/fast style transfer"), "{table}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "suite_version",
        "wgstyle_version",
        "git_commit",
        "timing",
        "limits",
    ] {
        assert!(!report[key].is_null(), "missing {key}");
    }
    for key in ["name", "backend", "device_type", "driver", "driver_info"] {
        assert!(report["adapter"][key].is_string(), "missing adapter.{key}");
    }
    // The device features the kernels used, as the library sees them.
    let ctx = common::ctx();
    let features: Vec<&str> = report["adapter"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        features.contains(&"f16"),
        ctx.supports_f16(),
        "{features:?}"
    );
    for s in [8, 16] {
        assert_eq!(
            features.contains(&format!("coop{s}x{s}").as_str()),
            ctx.coop_fragment_sizes().contains(&s),
            "{features:?}"
        );
    }
    let timing = report["timing"].as_str().unwrap();
    assert!(timing == "gpu-timestamps" || timing == "wall-clock");
    let cases = report["cases"].as_array().unwrap();
    assert!(cases.len() >= 15, "{} cases", cases.len());
    for c in cases {
        let (ms, flops, gflops) = (
            c["ms"].as_f64().unwrap(),
            c["flops"].as_f64().unwrap(),
            c["gflops"].as_f64().unwrap(),
        );
        assert!(ms.is_finite() && ms > 0.0, "{c}");
        assert!(flops > 0.0);
        assert!(
            (gflops - flops / ms / 1e6).abs() <= 1e-9 * gflops.max(1.0),
            "{c}"
        );
        assert!(c["passes"].as_u64().unwrap() >= 1);
    }
    // On adapters with cooperative matrices the forward transform convolutions are timed on
    // that kernel too (`... coop`), and ran on it; elsewhere there are no such cases.
    let coop: Vec<&serde_json::Value> = cases
        .iter()
        .filter(|c| c["name"].as_str().unwrap().ends_with(" coop"))
        .collect();
    assert_eq!(
        coop.is_empty(),
        ctx.coop_fragment_sizes().is_empty(),
        "{coop:?}"
    );
    for c in &coop {
        let name = c["name"].as_str().unwrap();
        assert!(
            name.starts_with("conv/transform.") || name.starts_with("conv_transpose/transform.")
        );
        let variants = c["conv_variants"].as_object().unwrap();
        assert!(
            !variants.is_empty() && variants.keys().all(|k| k.starts_with("coop ")),
            "{c}"
        );
    }
    // The transform network's FLOP count at 64x64 (2 per multiply-add).
    let net = cases
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("network/"))
        .unwrap();
    assert_eq!(
        net["flops"].as_f64().unwrap(),
        wgstyle::nets::transformer::Arch::LENGSTROM.flops(64, 64)
    );
    // Every kind of case is in the quick suite.
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for prefix in [
        "conv_weight_grad/",
        "conv_input_grad/",
        "conv_transpose_weight_grad/",
        "instance_norm_backward/",
        "gram/",
        "gram_backward/",
        "fusion/norm+residual fused",
        "fusion/norm+residual unfused",
        "network/gatys iteration @64x64",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(prefix)),
            "no {prefix} case in {names:?}"
        );
    }
    // One Gatys iteration at 64x64: VGG19's convolutions up to conv5_1, forward and input
    // gradient (2 FLOPs per multiply-add), counted here from the architecture.
    let mut expected = 0.0;
    let (mut hw, mut cin) = (64usize, 3usize);
    for (block, convs, cout) in [
        (1, 2, 64),
        (2, 2, 128),
        (3, 4, 256),
        (4, 4, 512),
        (5, 1, 512),
    ] {
        if block > 1 {
            hw /= 2;
        }
        for _ in 0..convs {
            expected += 2.0 * 2.0 * (hw * hw * 9 * cin * cout) as f64;
            cin = cout;
        }
    }
    let gatys = cases
        .iter()
        .find(|c| c["name"] == "network/gatys iteration @64x64")
        .unwrap();
    assert_eq!(gatys["flops"].as_f64().unwrap(), expected);

    let cmp = Command::new(env!("CARGO_BIN_EXE_wgstyle"))
        .env("WGSTYLE_CACHE_DIR", common::autotune_cache_dir())
        .arg("bench")
        .arg("--compare")
        .arg(&json)
        .arg(&json)
        .output()
        .unwrap();
    assert!(cmp.status.success());
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_end().ends_with("1.000"))
            .count(),
        cases.len(),
        "{text}"
    );
}

/// `wgstyle adapters` lists the adapter the tests run on with what the kernels can use of it
/// (half precision, subgroups, cooperative-matrix fragment sizes), as the library sees it.
#[test]
fn adapters_lists_the_test_adapter_and_its_kernel_features() {
    let out = Command::new(env!("CARGO_BIN_EXE_wgstyle"))
        .arg("adapters")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let ctx = common::ctx();
    let info = ctx.adapter_info();
    let backend = format!("{:?}", info.backend);
    let line = text
        .lines()
        .find(|l| l.starts_with(&info.name) && l.split_whitespace().any(|w| w == backend.as_str()))
        .unwrap_or_else(|| panic!("{} ({backend}) not listed:\n{text}", info.name));
    let caps: Vec<&str> = line[info.name.len()..]
        .split_whitespace()
        .nth(2)
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(caps.contains(&"f16"), ctx.supports_f16(), "{line}");
    for s in [8, 16] {
        let name = format!("coop{s}x{s}");
        assert_eq!(
            caps.contains(&name.as_str()),
            ctx.coop_fragment_sizes().contains(&s),
            "{line}"
        );
    }
}
