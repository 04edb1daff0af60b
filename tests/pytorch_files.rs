//! `.pth` and `.onnx` files on the command line (`wgstyle convert`, `--style FILE`), and
//! hostile files: clear errors, never a panic, including under seeded random mutation.

mod common;

use std::path::{Path, PathBuf};

use prost::Message;
use wgstyle::weights::{onnx, pth};

fn golden(shared: &Path) -> PathBuf {
    shared.join("golden/pytorch")
}

/// A zip archive of stored entries, as `torch.save` writes them (no zip64 needed here).
fn zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let (mut out, mut cd) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let off = out.len() as u32;
        let crc = crc32fast::hash(data);
        let head = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend([0u8; 6]); // flags, method (stored), time
            h.extend([0u8; 2]); // date
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend([0u8; 6]); // comment, disk, internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(off.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(b"PK\x03\x04", false));
        out.extend(data);
        cd.extend(head(b"PK\x01\x02", true));
    }
    let cd_off = out.len() as u32;
    out.extend(&cd);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((cd.len() as u32).to_le_bytes());
    out.extend(cd_off.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

/// The golden zip checkpoint's entries.
fn entries(shared: &Path) -> Vec<(String, Vec<u8>)> {
    let b = std::fs::read(golden(shared).join("transformer_net.pth")).unwrap();
    pth::zip_entries(&b)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect()
}

/// The zip checkpoint with entry `name` changed by `f`.
fn patched(shared: &Path, name: &str, f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = entries(shared);
    let (_, data) = e.iter_mut().find(|(k, _)| k.ends_with(name)).unwrap();
    f(data);
    zip(&e)
}

fn replace(v: &mut Vec<u8>, from: &[u8], to: &[u8]) {
    let i = v
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    v.splice(i..i + from.len(), to.iter().copied());
}

fn pth_err(b: &[u8]) -> String {
    match pth::from_bytes(b) {
        Ok(_) => panic!("accepted a hostile file"),
        Err(e) => e,
    }
}

#[test]
fn rebuilt_zip_reads_and_hostile_pth_files_are_refused() {
    let shared = shared_or_skip!();
    // The test's own zip writer round-trips (so the failures below are the patches').
    let (w, f) = pth::from_bytes(&zip(&entries(&shared))).unwrap();
    assert_eq!(f, pth::PthFormat::Zip);
    assert_eq!(w.layers.len(), 16);

    let real = std::fs::read(golden(&shared).join("transformer_net.pth")).unwrap();
    for n in [0, 10, 100, real.len() / 2, real.len() - 30, real.len() - 1] {
        let e = pth_err(&real[..n]);
        eprintln!("truncated at {n}: {e}");
    }
    let e = pth_err(&real[..real.len() / 2]);
    assert!(e.contains("truncated") || e.contains("zip"), "{e}");

    // A foreign global: never called, named in the error.
    let b = patched(&shared, "data.pkl", |d| {
        replace(d, b"ccollections\nOrderedDict\n", b"cos\nsystem\n")
    });
    let e = pth_err(&b);
    assert!(e.contains("os.system"), "{e}");

    // conv1's weight declared 32x3x3x3 (fits its storage, wrong for the network).
    let b = patched(&shared, "data.pkl", |d| {
        replace(d, b"(K\x20K\x03K\x09K\x09t", b"(K\x20K\x03K\x03K\x03t")
    });
    let e = pth_err(&b);
    assert!(e.contains("conv1") && e.contains("shape"), "{e}");

    // An absurd size: 2^31-1 x 3 x 9 x 9.
    let b = patched(&shared, "data.pkl", |d| {
        replace(
            d,
            b"(K\x20K\x03K\x09K\x09t",
            b"(J\xff\xff\xff\x7fK\x03K\x09K\x09t",
        )
    });
    let e = pth_err(&b);
    assert!(
        e.contains("too large") || e.contains("past its storage"),
        "{e}"
    );

    // A NaN weight.
    let b = patched(&shared, "data/0", |d| {
        d[..4].copy_from_slice(&f32::NAN.to_le_bytes())
    });
    let e = pth_err(&b);
    assert!(e.contains("NaN"), "{e}");

    // A damaged storage fails its CRC.
    let mut b = real.clone();
    b[5000] ^= 0x40;
    assert!(pth_err(&b).contains("CRC"));
}

fn model(shared: &Path, file: &str) -> onnx::ModelProto {
    let b = std::fs::read(golden(shared).join(file)).unwrap();
    onnx::ModelProto::decode(b.as_slice()).unwrap()
}

fn onnx_err(m: &onnx::ModelProto) -> String {
    match onnx::from_bytes(&m.encode_to_vec()) {
        Ok(_) => panic!("accepted a hostile graph"),
        Err(e) => e,
    }
}

#[test]
fn hostile_onnx_files_are_refused() {
    let shared = shared_or_skip!();
    for file in [
        "transformer_net_opset9.onnx",
        "transformer_net_opset17_dynamic.onnx",
    ] {
        let m = model(&shared, file);
        assert!(onnx::from_bytes(&m.encode_to_vec()).is_ok(), "{file}");
        let g = m.graph.as_ref().unwrap();

        // An extra node after the output.
        let mut x = m.clone();
        let xg = x.graph.as_mut().unwrap();
        let out = xg.output[0].name.clone();
        xg.node.push(onnx::NodeProto {
            input: vec![out.clone()],
            output: vec!["extra".into()],
            name: "sneaky".into(),
            op_type: "Relu".into(),
            ..Default::default()
        });
        let e = onnx_err(&x);
        assert!(e.contains("sneaky") && e.contains("extra"), "{file}: {e}");

        // A node that is not TransformerNet's: the first Relu becomes a Sigmoid.
        let mut x = m.clone();
        let n = x.graph.as_mut().unwrap().node.iter_mut();
        let relu = n.into_iter().find(|n| n.op_type == "Relu").unwrap();
        relu.op_type = "Sigmoid".into();
        let name = relu.name.clone();
        let e = onnx_err(&x);
        assert!(e.contains(&name) && e.contains("Sigmoid"), "{file}: {e}");

        // An absurd initializer size, and a wrong one.
        let big = g
            .initializer
            .iter()
            .position(|t| t.dims.len() == 4)
            .unwrap();
        let mut x = m.clone();
        x.graph.as_mut().unwrap().initializer[big].dims = vec![1 << 40, 1 << 40, 1, 1];
        let e = onnx_err(&x);
        assert!(e.contains("too large"), "{file}: {e}");
        let mut x = m.clone();
        x.graph.as_mut().unwrap().initializer[big].dims[2] = 1;
        let e = onnx_err(&x);
        assert!(e.contains("bytes") || e.contains("shape"), "{file}: {e}");

        // NaN weights.
        let mut x = m.clone();
        let t = &mut x.graph.as_mut().unwrap().initializer[big];
        if t.raw_data.is_empty() {
            t.float_data[0] = f32::NAN;
        } else {
            t.raw_data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        }
        let e = onnx_err(&x);
        assert!(e.contains("NaN"), "{file}: {e}");

        // Truncated.
        let b = m.encode_to_vec();
        assert!(onnx::from_bytes(&b[..b.len() / 3]).is_err());
    }
}

/// A seeded byte mutator: flips, overwrites with boundary values, truncates, inserts.
fn mutate(rng: &mut common::Rng, b: &mut Vec<u8>, region: std::ops::Range<usize>) {
    let n = rng.range(1, 4);
    for _ in 0..n {
        let i = rng.range(region.start, region.end.min(b.len()) - 1);
        match rng.range(0, 4) {
            0 => b[i] ^= 1 << rng.range(0, 7),
            1 => {
                let v = [0u32, 1, 0x7f, 0xff, 0x7fff_ffff, 0xffff_ffff][rng.range(0, 5)];
                let end = (i + 4).min(b.len());
                b[i..end].copy_from_slice(&v.to_le_bytes()[..end - i]);
            }
            2 => b.truncate(i.max(1)),
            3 => b.insert(i, rng.range(0, 255) as u8),
            _ => b[i] = rng.range(0, 255) as u8,
        }
        if b.len() <= region.start + 1 {
            return;
        }
    }
}

/// Seeded random mutations of every reader's input never panic (a fixed number of cases,
/// each reader's parser region targeted: the pickle inside a valid zip, the zip structure,
/// the legacy stream's pickles, the ONNX protobuf).
#[test]
fn fuzzed_files_give_errors_not_panics() {
    let shared = shared_or_skip!();
    let g = golden(&shared);
    let mut rng = common::Rng::new(21);
    let mut accepted = 0;
    let e = entries(&shared);
    let pkl = e.iter().position(|(k, _)| k.ends_with("data.pkl")).unwrap();
    for _ in 0..150 {
        let mut e2 = e.clone();
        let len = e2[pkl].1.len();
        mutate(&mut rng, &mut e2[pkl].1, 0..len);
        accepted += pth::from_bytes(&zip(&e2)).is_ok() as u32;
    }
    let real = std::fs::read(g.join("transformer_net.pth")).unwrap();
    let cd = real.len() - 4000; // the central directory and end records
    for _ in 0..100 {
        let mut b = real.clone();
        mutate(&mut rng, &mut b, cd..real.len());
        accepted += pth::from_bytes(&b).is_ok() as u32;
    }
    let legacy = std::fs::read(g.join("transformer_net_legacy.pth")).unwrap();
    for _ in 0..150 {
        let mut b = legacy.clone();
        mutate(&mut rng, &mut b, 0..10_000);
        accepted += pth::from_bytes(&b).is_ok() as u32;
    }
    for file in [
        "transformer_net_opset9.onnx",
        "transformer_net_opset17_dynamic.onnx",
    ] {
        let real = std::fs::read(g.join(file)).unwrap();
        // Nodes and attributes come first in the file; the weights follow.
        for _ in 0..60 {
            let mut b = real.clone();
            mutate(&mut rng, &mut b, 0..20_000);
            accepted += onnx::from_bytes(&b).is_ok() as u32;
        }
        for _ in 0..20 {
            let mut b = real.clone();
            let len = b.len();
            mutate(&mut rng, &mut b, 0..len);
            accepted += onnx::from_bytes(&b).is_ok() as u32;
        }
    }
    // Some mutations are harmless (a weight's low bits); most are refused.
    eprintln!("{accepted} of 560 mutated files still read");
}

#[test]
fn convert_and_style_take_pth_and_onnx() {
    let shared = shared_or_skip!();
    let g = golden(&shared);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("net.safetensors");
    let src = g.join("transformer_net_legacy.pth");
    common::cli::run_ok(
        common::cli::wgstyle(&data)
            .arg("convert")
            .arg(&src)
            .arg(&out),
    );
    let bytes = std::fs::read(&out).unwrap();
    let (_, meta) = wgstyle::weights::safetensors::parse(&out, &bytes).unwrap();
    assert_eq!(meta["wgstyle.arch"], "pytorch-examples");
    assert_eq!(meta["wgstyle.source_format"], "pth-legacy");
    let back = wgstyle::weights::load_transform(&out).unwrap();
    let orig = wgstyle::weights::load_transform(&src).unwrap();
    assert_eq!(back.arch, orig.arch);
    for (name, l) in &orig.layers {
        let b = &back.layers[name];
        assert_eq!(
            (&l.kernel, &l.bias, &l.scale),
            (&b.kernel, &b.bias, &b.scale)
        );
    }
    // Not replaced without --force.
    let o = common::cli::run(
        common::cli::wgstyle(&data)
            .arg("convert")
            .arg(&src)
            .arg(&out),
    );
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), bytes);

    // --style FILE.onnx on a 64x48 photo (the file's fixed 224x224 input does not matter).
    let photo = dir.path().join("p.png");
    std::fs::copy(g.join("input_amber_64x48.png"), &photo).unwrap();
    let style = g.join("transformer_net_opset9.onnx");
    common::cli::run_ok(
        common::cli::wgstyle(&data)
            .arg("--style")
            .arg(&style)
            .arg("-o")
            .arg(dir.path().join("out.png"))
            .arg(&photo),
    );
    let got = image::open(dir.path().join("out.png")).unwrap().to_rgb8();
    let w = wgstyle::weights::load_transform(&style).unwrap();
    let want = wgstyle::Stylizer::new(common::ctx(), &w)
        .unwrap()
        .stylize(&image::open(&photo).unwrap().to_rgb8())
        .unwrap();
    let d = got
        .as_raw()
        .iter()
        .zip(want.as_raw())
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(d <= 1, "CLI vs library: {d}");
}
