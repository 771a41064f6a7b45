//! Files through the CLI: `send --file`, `file list`, `file get` (which brings the network up
//! for itself when the file is not here yet), `file auto`, and clear errors for bad input.

use std::path::Path;
use std::process::Child;

mod netns;

use netns::{libra, ok, ok_json as json, serve_local as serve};

/// Ann (serving, her address in her invite) and Ben, contacts of each other.
fn ann_serving_and_ben(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Child) {
    let (ann, ben) = (dir.join("ann"), dir.join("ben"));
    ok(&ann, &["init", "--name", "Ann"]);
    ok(&ben, &["init", "--name", "Ben"]);
    let (server, addr) = serve(&ann);
    let ia = json(&ann, &["invite", "--with-address", &addr]);
    let ib = json(&ben, &["invite"]);
    ok(&ann, &["contact", "add", ib["invite"].as_str().expect("invite")]);
    ok(&ben, &["contact", "add", ia["invite"].as_str().expect("invite")]);
    (ann, ben, server)
}

#[test]
fn a_file_goes_from_one_cli_to_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, ben, mut server) = ann_serving_and_ben(dir.path());

    let content: Vec<u8> = (0..1_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let src = dir.path().join("report.pdf");
    std::fs::write(&src, &content).expect("write");
    // Forwarded to Ann's running node.
    let sent = json(&ann, &["send", "Ben", "--file", src.to_str().expect("path"), "the report"]);
    assert_eq!(sent["file"]["name"], "report.pdf");
    assert_eq!(sent["file"]["media_type"], "application/pdf");
    let id = sent["file"]["id"].as_str().expect("id").to_owned();
    let listed = json(&ann, &["file", "list"]);
    assert_eq!(listed[0]["state"], "complete");

    // Ben learns of the message by a sync with Ann (by name: her invite carried her address),
    // then `file get` fetches and writes it.
    ok(&ben, &["sync", "Ann"]);
    let nobody = libra(&ben, &["sync", "Zed"]);
    assert!(!nobody.status.success() && String::from_utf8_lossy(&nobody.stderr).contains("Zed"));
    let listed = json(&ben, &["file", "list"]);
    assert_eq!(listed[0]["state"], "not downloaded");
    assert!(ok(&ben, &["chat", "Ann"]).contains(&format!("[file {id} report.pdf, 1.4 MiB] the report")));
    let out = dir.path().join("got.pdf");
    ok(&ben, &["file", "get", &id[..8], out.to_str().expect("path"), "--wait", "60"]);
    assert_eq!(std::fs::read(&out).expect("read"), content);
    assert_eq!(json(&ben, &["file", "list"])[0]["state"], "complete");

    // Bad input gets a clear error.
    let again = libra(&ben, &["file", "get", &id, out.to_str().expect("path")]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"));
    let unknown = libra(&ben, &["file", "get", "abcdef12", "x"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no file"));
    let missing = libra(&ben, &["send", "Ann", "--file", "/no/such/file"]);
    assert!(!missing.status.success() && String::from_utf8_lossy(&missing.stderr).contains("/no/such/file"));
    let size = libra(&ben, &["file", "auto", "lots"]);
    assert!(!size.status.success() && String::from_utf8_lossy(&size.stderr).contains("not a size"));
    assert_eq!(json(&ben, &["file", "auto", "1M"])["auto_download"], 1 << 20);
    assert_eq!(json(&ben, &["file", "auto"])["auto_download"], 1 << 20);
    let _ = server.kill();
    let _ = server.wait();
}

/// The new write path under SIGKILL: a node downloading a file is killed again and again in the
/// middle; each time it comes back, what it recorded as verified must really be on disk (else
/// the final file would not decrypt the first time), and the download finishes from there.
#[test]
fn a_download_killed_again_and_again_finishes_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, ben, mut a_server) = ann_serving_and_ben(dir.path());
    ok(&ben, &["file", "auto", "1G"]);
    let content: Vec<u8> = (0..60_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8).collect();
    let src = dir.path().join("film.mkv");
    std::fs::write(&src, &content).expect("write");
    let id = json(&ann, &["send", "Ben", "--file", src.to_str().expect("path")])["file"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let blob_have = ben.join("blobs");
    let mut kills = 0u64;
    let mut seen_partial = false;
    for _ in 0..40 {
        let (mut b_server, _) = serve(&ben);
        // Let it fetch for a while (longer each round, so it also finishes), then SIGKILL.
        let until = std::time::Instant::now() + std::time::Duration::from_millis(250 + 150 * kills.saturating_sub(3));
        let mut state = String::new();
        while std::time::Instant::now() < until {
            let list = libra(&ben, &["--json", "file", "list"]);
            if list.status.success() {
                let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap_or_default();
                state = v[0]["state"].as_str().unwrap_or("").to_owned();
                seen_partial |= state == "downloading" || state == "partial";
                if state == "complete" {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = b_server.kill();
        let _ = b_server.wait();
        if state == "complete" {
            break;
        }
        kills += 1;
    }
    assert!(blob_have.exists());
    assert!(kills >= 3 && seen_partial, "the download was cut {kills} times (partial seen: {seen_partial})");
    eprintln!("cut {kills} times by SIGKILL");
    // Finished (by a last run if needed), and the first export decrypts: nothing recorded was
    // missing from disk.
    let out = dir.path().join("got.mkv");
    ok(&ben, &["file", "get", &id, out.to_str().expect("path"), "--wait", "120"]);
    assert_eq!(std::fs::read(&out).expect("read"), content, "after {kills} kills");
    let _ = a_server.kill();
    let _ = a_server.wait();
}
