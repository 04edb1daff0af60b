//! `wgstyle fetch` against a real HTTP server on 127.0.0.1 (started here) that serves
//! `../shared/weights` as a mirror (`WGSTYLE_MIRROR`): `URL/NAME/FILE` for the styles and
//! `URL/vgg19/FILE` for VGG19. Variants corrupt a file, drop the connection mid-body, never
//! answer, or send an endless body. No other network address is used.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::{run, run_ok, stderr, wgstyle};

#[derive(Clone, Copy)]
enum Mode {
    Good,
    /// Flip one byte of this file's body.
    Corrupt(&'static str),
    /// Send the headers and half of this file's body, then close the connection.
    Drop(&'static str),
    /// Accept the connection, read the request, never answer.
    Silent,
    /// Answer this file with headers without a length, then bytes forever.
    Endless(&'static str),
}

/// Serves `root` on a free port of 127.0.0.1 until the test process exits; returns the
/// base URL.
fn serve(root: PathBuf, mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let _ = handle(stream, &root, mode);
            });
        }
    });
    url
}

fn handle(mut stream: TcpStream, root: &Path, mode: Mode) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    if let Mode::Silent = mode {
        std::thread::sleep(Duration::from_secs(600));
        return Ok(());
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let rel = path.trim_start_matches('/');
    if let Mode::Endless(r) = mode {
        if r == rel {
            stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![0x5a; 64 * 1024];
            loop {
                stream.write_all(&chunk)?;
            }
        }
    }
    // The mirror layout: `vgg19/FILE` is ../shared's `vgg19-tfjs/FILE`, `NAME/FILE` a style's.
    let file = match rel.strip_prefix("vgg19/") {
        Some(f) => root.join("vgg19-tfjs").join(f),
        None => root.join("styles").join(rel),
    };
    let Ok(mut body) = (if rel.contains("..") {
        Err(std::io::ErrorKind::NotFound.into())
    } else {
        std::fs::read(&file)
    }) else {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let len = body.len();
    match mode {
        Mode::Corrupt(r) if r == rel => body[len / 2] ^= 0x40,
        Mode::Drop(r) if r == rel => body.truncate(len / 2),
        _ => {}
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// Runs `cmd`, killing it (and failing) if it has not exited after `secs` seconds: a guard
/// against hangs, not a timing.
fn run_bounded(cmd: &mut Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("{cmd:?} still running after {secs} s: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    eprintln!("$ {cmd:?}\n-> {}\n{}", out.status, stderr(&out));
    out
}

/// Fetches `name` through a server in `mode` with a 1 s network timeout; returns (output,
/// data dir, temp dir, guard).
fn fetch_name(
    shared: &Path,
    mode: Mode,
    name: &str,
) -> (Output, PathBuf, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tmpdir = tmp.path().join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let url = serve(shared.join("weights"), mode);
    let mut cmd = wgstyle(&data);
    cmd.env("WGSTYLE_MIRROR", &url)
        .env("TMPDIR", &tmpdir)
        .env("WGSTYLE_FETCH_TIMEOUT_SECS", "1");
    let out = run_bounded(cmd.args(["fetch", name]), 120);
    (out, data, tmpdir, tmp)
}

fn fetch(shared: &Path, mode: Mode) -> (Output, PathBuf, PathBuf, tempfile::TempDir) {
    fetch_name(shared, mode, "scream")
}

/// Fails, listing them, if any files are left under `dir`.
fn assert_empty(dir: &Path) {
    let left = files_under(dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                v.extend(files_under(&e.path()));
            } else {
                v.push(e.path());
            }
        }
    }
    v
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn fetch_verifies_and_converts() {
    let shared = shared_or_skip!();
    let (out, data, tmpdir, _guard) = fetch(&shared, Mode::Good);
    assert!(out.status.success(), "{}", stderr(&out));
    let st = data.join("styles/scream.safetensors");
    let fetched = wgstyle::weights::load_transform(&st).unwrap();
    let direct = wgstyle::weights::load_transform(&shared.join("weights/styles/scream")).unwrap();
    assert_eq!(fetched.layers.len(), direct.layers.len());
    for (name, l) in &direct.layers {
        let f = &fetched.layers[name];
        assert!(
            f.kernel == l.kernel && f.shift == l.shift && f.scale == l.scale,
            "{name}"
        );
    }
    assert_empty(&tmpdir);

    // `wgstyle styles` now finds it in the data directory; fetching again says it is there
    // (exit 0, no network: no mirror is set), --force downloads it again.
    let listed = run_ok(wgstyle(&data).current_dir(&tmpdir).arg("styles"));
    let text = String::from_utf8_lossy(&listed.stdout);
    let line = text.lines().find(|l| l.starts_with("scream ")).unwrap();
    assert!(line.contains(&*st.to_string_lossy()), "{line}");
    let again = run_ok(wgstyle(&data).args(["fetch", "scream"]));
    assert!(
        stderr(&again).contains("already fetched and verified"),
        "{}",
        stderr(&again)
    );
    let url = serve(shared.join("weights"), Mode::Good);
    run_ok(
        wgstyle(&data)
            .env("WGSTYLE_MIRROR", &url)
            .env("TMPDIR", &tmpdir)
            .args(["fetch", "--force", "scream"]),
    );
    wgstyle::weights::load_transform(&st).unwrap();

    // A damaged file is not "present": without --force it is reported and kept as it is.
    std::fs::write(&st, b"not a safetensors file").unwrap();
    let out = run(wgstyle(&data).args(["fetch", "scream"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--force replaces it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&st).unwrap(), b"not a safetensors file");
}

#[test]
fn fetch_vgg19_through_the_mirror_for_optimize_and_train() {
    let shared = shared_or_skip!();
    let (out, data, tmpdir, _guard) = fetch_name(&shared, Mode::Good, "vgg19");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("CC BY 4.0"), "{}", stderr(&out));
    let path = data.join("vgg19.safetensors");
    let fetched = wgstyle::weights::load_vgg19(&path).unwrap();
    let direct = wgstyle::weights::load_vgg19(&shared.join("weights/vgg19-tfjs")).unwrap();
    assert_eq!(fetched.convs.len(), 16);
    for (f, d) in fetched.convs.iter().zip(&direct.convs) {
        assert!(
            f.name == d.name && f.kernel == d.kernel && f.bias == d.bias,
            "{}",
            d.name
        );
    }
    assert_empty(&tmpdir);
    // `wgstyle styles` shows where it is, with its licence and attribution.
    let listed = run_ok(wgstyle(&data).current_dir(&tmpdir).arg("styles"));
    let text = String::from_utf8_lossy(&listed.stdout);
    let line = text.lines().find(|l| l.starts_with("vgg19 ")).unwrap();
    assert!(
        line.contains(&*path.to_string_lossy()) && line.contains("CC BY 4.0"),
        "{line}"
    );
    assert!(text.contains("Simonyan"), "{text}");
}

#[test]
fn optimize_without_vgg_names_the_fetch_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(wgstyle(&tmp.path().join("data"))
        .current_dir(tmp.path())
        .args(["optimize", "a.png", "--style-image", "b.png", "-o", "c.png"]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("VGG19 weights not found") && err.contains("wgstyle fetch vgg19"),
        "{err}"
    );
}

#[test]
fn fetch_gives_up_on_a_silent_server_and_keeps_nothing() {
    let shared = shared_or_skip!();
    let (out, data, tmpdir, _guard) = fetch(&shared, Mode::Silent);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no answer within") && err.contains("WGSTYLE_MIRROR"),
        "{err}"
    );
    assert_empty(&data);
    assert_empty(&tmpdir);
}

#[test]
fn fetch_stops_an_endless_body_at_the_catalog_size() {
    let shared = shared_or_skip!();
    let (out, data, tmpdir, _guard) = fetch(&shared, Mode::Endless("scream/Variable_3"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("scream/Variable_3") && err.contains("more than the 73728 bytes"),
        "{err}"
    );
    assert_empty(&data);
    assert_empty(&tmpdir);
}

#[test]
fn fetch_cleans_up_on_sigterm() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let (data, tmpdir) = (tmp.path().join("data"), tmp.path().join("tmp"));
    std::fs::create_dir_all(&tmpdir).unwrap();
    let url = serve(shared.join("weights"), Mode::Silent);
    let mut child = wgstyle(&data)
        .env("WGSTYLE_MIRROR", &url)
        .env("TMPDIR", &tmpdir)
        .env("WGSTYLE_FETCH_TIMEOUT_SECS", "300")
        .args(["fetch", "scream"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the download has started (its temporary directory exists).
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&tmpdir).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "no temporary directory appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("fetch still running after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    // 128 + SIGTERM, like every command interrupted by a signal.
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert_empty(&tmpdir);
    assert!(std::fs::read_dir(&tmpdir).unwrap().next().is_none());
    assert_empty(&data);
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn fetch_refuses_a_corrupted_file_and_keeps_nothing() {
    let shared = shared_or_skip!();
    let (out, data, tmpdir, _guard) = fetch(&shared, Mode::Corrupt("scream/Variable_5"));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("checksum mismatch") && err.contains("scream/Variable_5"),
        "{err}"
    );
    assert_empty(&data);
    assert_empty(&tmpdir);
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn fetch_fails_cleanly_when_the_connection_drops() {
    let shared = shared_or_skip!();
    let (out, data, tmpdir, _guard) = fetch(&shared, Mode::Drop("scream/Variable_10"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("scream/Variable_10"),
        "{}",
        stderr(&out)
    );
    assert_empty(&data);
    assert_empty(&tmpdir);
}

#[test]
fn fetch_rejects_unknown_names_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(wgstyle(tmp.path()).args(["fetch", "no_such_style"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("scream"), "known styles are listed");
    let out = run(wgstyle(tmp.path()).args(["fetch", "scraem"]));
    assert!(
        stderr(&out).contains("did you mean 'scream'"),
        "{}",
        stderr(&out)
    );
    // A mirror that is not running: the error names WGSTYLE_MIRROR.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let out = run(wgstyle(&tmp.path().join("d2"))
        .env("WGSTYLE_MIRROR", &url)
        .args(["fetch", "wave"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("WGSTYLE_MIRROR"), "{}", stderr(&out));
    // A mirror without the files: a clear HTTP error, nothing kept.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let url = serve(empty, Mode::Good);
    let data = tmp.path().join("data");
    let out = run(wgstyle(&data)
        .env("WGSTYLE_MIRROR", &url)
        .args(["fetch", "wave"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert!(files_under(&data).is_empty());
}

/// A zoo-style catalog entry (format `onnx`, architecture `pytorch-examples`) fetched through
/// the 127.0.0.1 mirror. The real zoo files cannot be downloaded here, so the entry's file is
/// a stand-in, ../shared's random TransformerNet at opset 9 (the zoo's form), with its sha256
/// and size computed here; the converted file must hold exactly the weights the ONNX reader
/// takes from the `.onnx` directly.
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn fetch_converts_a_zoo_onnx_style() {
    use sha2::Digest;
    use wgstyle::weights::catalog::Catalog;
    use wgstyle::weights::fetch::{fetch_entry, FetchOptions};
    let shared = shared_or_skip!();
    let onnx = shared.join("golden/pytorch/transformer_net_opset9.onnx");
    let bytes = std::fs::read(&onnx).unwrap();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let toml = format!(
        r#"[styles.zoo-test]
license = "BSD-3-Clause (ONNX model zoo)"
architecture = "pytorch-examples"
format = "onnx"
commit = "b1eeaa1ac722dcc1cd1a8284bde34393dab61c3d"
base_url = "https://media.githubusercontent.com/media/onnx/models/{{commit}}/model/"
upstream = "stand-in"
[styles.zoo-test.files]
"test-9.onnx" = {{ sha256 = "{sha}", size = {} }}
"#,
        bytes.len()
    );
    let catalog = Catalog::parse(&toml).unwrap();
    // The mirror serves ROOT/styles/NAME/FILE.
    let root = tempfile::tempdir().unwrap();
    let served = root.path().join("styles/zoo-test");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("test-9.onnx"), &bytes).unwrap();
    let url = serve(root.path().to_path_buf(), Mode::Good);
    let entry = catalog.require("zoo-test").unwrap();
    let base = catalog.base_url_for("zoo-test", entry, Some(&url));
    let out = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dest = out.path().join("zoo-test.safetensors");
    let opts = FetchOptions {
        mirror: true,
        ..Default::default()
    };
    fetch_entry(
        &catalog,
        "zoo-test",
        &base,
        &dest,
        work.path(),
        &opts,
        &mut |_| {},
    )
    .unwrap();

    let fetched = wgstyle::weights::load_transform(&dest).unwrap();
    let direct = wgstyle::weights::load_transform(&onnx).unwrap();
    assert_eq!(fetched.arch.family.name(), "pytorch-examples");
    assert_eq!(fetched.arch.family, direct.arch.family);
    assert_eq!(fetched.layers.len(), direct.layers.len());
    for (name, l) in &direct.layers {
        let f = &fetched.layers[name];
        assert!(
            f.kernel == l.kernel && f.shift == l.shift && f.scale == l.scale && f.bias == l.bias,
            "{name}"
        );
    }
    let st_bytes = wgstyle::weights::safetensors::read_file(&dest).unwrap();
    let (_, meta) = wgstyle::weights::safetensors::parse(&dest, &st_bytes).unwrap();
    assert_eq!(meta["wgstyle.source_format"], "onnx");
    assert!(meta["wgstyle.license"].contains("BSD-3-Clause"));
    assert!(meta["wgstyle.source"].ends_with("/zoo-test/test-9.onnx"));

    // A stand-in with one flipped byte is refused and nothing is written.
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 1;
    std::fs::write(served.join("test-9.onnx"), &bad).unwrap();
    let dest2 = out.path().join("zoo-bad.safetensors");
    let work2 = tempfile::tempdir().unwrap();
    let err = fetch_entry(
        &catalog,
        "zoo-test",
        &base,
        &dest2,
        work2.path(),
        &opts,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("sha256"), "{err}");
    assert!(!dest2.exists());
}

/// `wgstyle styles` shows licence and architecture for every entry; `--license bsd` keeps only
/// the BSD-licensed zoo styles (what a product may use), `--license research` only lengstrom's.
#[test]
fn styles_lists_licence_and_architecture_and_filters_by_licence() {
    let data = tempfile::tempdir().unwrap();
    let all = run_ok(wgstyle(data.path()).arg("styles"));
    let all = String::from_utf8_lossy(&all.stdout).into_owned();
    let line = |text: &str, name: &str| -> Option<String> {
        let prefix = format!("{name} ");
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .map(str::to_owned)
    };
    let mosaic = line(&all, "zoo-mosaic").unwrap();
    assert!(mosaic.contains("pytorch-examples") && mosaic.contains("BSD-3-Clause"));
    let udnie = line(&all, "udnie").unwrap();
    assert!(udnie.contains("johnson-lengstrom") && udnie.contains("research use only"));
    assert!(line(&all, "vgg19").unwrap().contains("CC BY 4.0"));

    let bsd = run_ok(wgstyle(data.path()).args(["styles", "--license", "BSD"]));
    let bsd = String::from_utf8_lossy(&bsd.stdout).into_owned();
    let rows: Vec<&str> = bsd.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{bsd}");
    assert!(rows
        .iter()
        .all(|l| l.starts_with("zoo-") && l.contains("BSD-3-Clause")));
    let research = run_ok(wgstyle(data.path()).args(["styles", "--license", "research"]));
    let research = String::from_utf8_lossy(&research.stdout).into_owned();
    assert_eq!(research.lines().skip(1).count(), 6, "{research}");
    assert!(line(&research, "zoo-udnie").is_none());
    let cc = run_ok(wgstyle(data.path()).args(["styles", "--license", "cc-by"]));
    let cc = String::from_utf8_lossy(&cc.stdout).into_owned();
    assert!(cc
        .lines()
        .skip(1)
        .all(|l| l.starts_with("vgg19") || l.starts_with(' ')));
}
