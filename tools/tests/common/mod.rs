//! What several CLI test files share: running the real binary, reading its JSON, two people
//! who are each other's contacts, copying a data directory.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn libra(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_libra")).arg("--data").arg(data).args(args).output().expect("run libra")
}

pub fn json(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Ann and Ben in `dir`, each the other's contact, never online together.
pub fn pair(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("ann"), dir.join("ben"));
    json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    let inv = |d: &Path| json(&libra(d, &["--json", "invite"]))["invite"].as_str().expect("invite").to_owned();
    let (ia, ib) = (inv(&a), inv(&b));
    json(&libra(&a, &["--json", "contact", "add", &ib]));
    json(&libra(&b, &["--json", "contact", "add", &ia]));
    (a, b)
}

/// A copy of a (closed) data directory.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}
