//! The app's command line: `--help` and `--version` print and exit; a bad argument is an error
//! with usage (no window is opened in any of these).

use std::process::Command;

fn app(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_libra-app")).args(args).output().expect("run libra-app")
}

#[test]
fn help_version_and_bad_arguments() {
    let v = app(&["--version"]);
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("libra-app "));
    let h = app(&["--help"]);
    assert!(h.status.success());
    assert!(String::from_utf8_lossy(&h.stdout).contains("--listen"));
    let bad = app(&["--listen", "not-an-address"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--listen"));
}
