//! End-to-end tests of `wgstyle` (as a subprocess): finding a style by name in each location
//! of the search path, `wgstyle styles`, the "not fetched yet" message, and `--help`.

mod common;

use common::cli::{pattern, run, run_ok, scream_dir, stderr, wgstyle};

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn named_style_is_found_in_each_location() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let empty_data = root.join("data-empty");
    let input = root.join("in.png");
    pattern(16, 12, 1).save(&input).unwrap();

    // 1. --weights-dir (checkpoint directory named after the style)
    let wd = scream_dir(&shared, root, "wd");
    run_ok(
        wgstyle(&empty_data)
            .args(["--style", "scream", "--weights-dir"])
            .arg(&wd)
            .arg(&input),
    );
    let reference = image::open(root.join("in.scream.png")).unwrap().to_rgb8();
    assert_eq!(reference.dimensions(), (16, 12));
    let outputs = |name: &str| root.join(format!("out-{name}.png"));

    // 2. $WGSTYLE_WEIGHTS (colon-separated; a missing directory is skipped)
    let ew = scream_dir(&shared, root, "env");
    let list = format!("{}:{}", root.join("missing").display(), ew.display());
    let mut cmd = wgstyle(&empty_data);
    cmd.env("WGSTYLE_WEIGHTS", &list)
        .args(["--style", "scream", "-o"]);
    run_ok(cmd.arg(outputs("env")).arg(&input));

    // 3. ./weights, relative to the current directory
    let cwd = root.join("project");
    scream_dir(&shared, &cwd, "weights");
    let mut cmd = wgstyle(&empty_data);
    cmd.current_dir(&cwd).args(["--style", "scream", "-o"]);
    run_ok(cmd.arg(outputs("cwd")).arg(&input));

    // 4. the user data directory, holding a converted NAME.safetensors
    let data = root.join("data");
    let styles = data.join("styles");
    std::fs::create_dir_all(&styles).unwrap();
    run_ok(
        wgstyle(&empty_data)
            .arg("convert")
            .arg(shared.join("weights/styles/scream"))
            .arg(styles.join("scream.safetensors")),
    );
    run_ok(
        wgstyle(&data)
            .args(["--style", "scream", "-o"])
            .arg(outputs("data"))
            .arg(&input),
    );

    for name in ["env", "cwd", "data"] {
        let got = image::open(outputs(name)).unwrap().to_rgb8();
        assert_eq!(got, reference, "style found via {name} gives another image");
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn styles_lists_locations_in_order_and_fetchable_ones() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let wd = scream_dir(&shared, root, "wd");
    let ew = scream_dir(&shared, root, "env");
    let mut cmd = wgstyle(&root.join("data"));
    cmd.env("WGSTYLE_WEIGHTS", &ew).current_dir(root);
    let out = run_ok(cmd.args(["styles", "--weights-dir"]).arg(&wd));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"))
            .to_string()
    };
    // --weights-dir comes before $WGSTYLE_WEIGHTS
    assert!(line("scream").contains(&*wd.join("scream").to_string_lossy()));
    assert!(line("scream").contains("research use only"));
    for name in [
        "wave",
        "udnie",
        "la_muse",
        "rain_princess",
        "wreck",
        "mathura",
        "matta",
    ] {
        assert!(line(name).contains("fetchable"), "{}", line(name));
    }
    assert!(line("matilde_perez").contains("MIT (ml5)"));
}

#[test]
fn catalog_style_not_on_disk_names_the_fetch_command() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.png");
    pattern(8, 8, 2).save(&input).unwrap();
    let mut cmd = wgstyle(&tmp.path().join("data"));
    let out = run(cmd
        .current_dir(tmp.path())
        .args(["--style", "wave"])
        .arg(&input));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`wgstyle fetch wave`"),
        "{}",
        stderr(&out)
    );
    let mut cmd = wgstyle(&tmp.path().join("data"));
    let out = run(cmd.args(["--style", "no_such_style"]).arg(&input));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wgstyle styles"), "{}", stderr(&out));
    assert!(!tmp.path().join("in.wave.png").exists());
}

#[test]
fn help_shows_examples() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["stylize", "--help"],
        &["styles", "--help"],
        &["fetch", "--help"],
        &["convert", "--help"],
        &["adapters", "--help"],
    ] {
        let out = run_ok(wgstyle(tmp.path()).args(args));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{args:?}:\n{text}");
        assert!(text.contains("wgstyle "), "{args:?}:\n{text}");
    }
}
