// Records the git commit for `wgstyle bench` reports (absent outside a git checkout), and sets
// `cfg(shared_absent)` for the tests when the shared test data is missing outside CI.
fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    if let Ok(out) = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
    {
        if out.status.success() {
            let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
            println!("cargo:rustc-env=WGSTYLE_GIT_COMMIT={commit}");
        }
    }
    shared_data();
}

// Tests that need `../shared` (or `$WGSTYLE_SHARED`) carry
// `#[cfg_attr(shared_absent, ignore = "...")]`, so that where it is missing they are reported
// as ignored by cargo instead of passing. Under `CI=true` the cfg is never set: they run and
// fail (tests/common). Same test for presence as tests/common: a `golden` folder. Set
// WGSTYLE_SHARED or touch build.rs after creating ../shared to have them run again.
fn shared_data() {
    println!("cargo::rustc-check-cfg=cfg(shared_absent)");
    println!("cargo:rerun-if-env-changed=WGSTYLE_SHARED");
    println!("cargo:rerun-if-env-changed=CI");
    let dir = match std::env::var_os("WGSTYLE_SHARED") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
                .join("../shared")
        }
    };
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !ci && !dir.join("golden").is_dir() {
        println!("cargo:rustc-cfg=shared_absent");
    }
}
