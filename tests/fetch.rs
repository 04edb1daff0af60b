//! `wgstyle fetch` against a real HTTP server on 127.0.0.1 (started here) that serves
//! `../shared/weights/styles/` under the catalog's relative paths; variants corrupt a file or
//! drop the connection. No other network address is used.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use common::cli::{run, run_ok, stderr, wgstyle};

#[derive(Clone, Copy)]
enum Mode {
    Good,
    /// Flip one byte of this file's body.
    Corrupt(&'static str),
    /// Send the headers and half of this file's body, then close the connection.
    Drop(&'static str),
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
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let rel = path.trim_start_matches('/');
    let file = root.join(rel);
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

/// Fetches scream through a server in `mode`; returns (output, data dir, temp dir, guard).
fn fetch(shared: &Path, mode: Mode) -> (std::process::Output, PathBuf, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tmpdir = tmp.path().join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let url = serve(shared.join("weights/styles"), mode);
    let mut cmd = wgstyle(&data);
    cmd.env("WGSTYLE_MIRROR", &url).env("TMPDIR", &tmpdir);
    let out = run(cmd.args(["fetch", "scream"]));
    (out, data, tmpdir, tmp)
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
    assert!(
        files_under(&tmpdir).is_empty(),
        "{:?}",
        files_under(&tmpdir)
    );

    // `wgstyle styles` now finds it in the data directory; fetching again needs --force.
    let listed = run_ok(wgstyle(&data).current_dir(&tmpdir).arg("styles"));
    let text = String::from_utf8_lossy(&listed.stdout);
    let line = text.lines().find(|l| l.starts_with("scream ")).unwrap();
    assert!(line.contains(&*st.to_string_lossy()), "{line}");
    let again = run(wgstyle(&data).args(["fetch", "scream"]));
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
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
    assert!(files_under(&data).is_empty(), "{:?}", files_under(&data));
    assert!(
        files_under(&tmpdir).is_empty(),
        "{:?}",
        files_under(&tmpdir)
    );
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
    assert!(files_under(&data).is_empty(), "{:?}", files_under(&data));
    assert!(
        files_under(&tmpdir).is_empty(),
        "{:?}",
        files_under(&tmpdir)
    );
}

#[test]
fn fetch_rejects_unknown_names_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(wgstyle(tmp.path()).args(["fetch", "no_such_style"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("scream"), "known styles are listed");
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
