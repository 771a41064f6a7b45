//! Who you are talking to, through the `libra` binary: names that collide are refused, short
//! ids and safety numbers work, peer-chosen text cannot act on the terminal.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn libra(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_libra")).arg("--data").arg(data).args(args).output().expect("run libra")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json output")
}

fn text(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates a node called `name` and returns its invite.
fn node(dir: &Path, label: &str, name: &str) -> (std::path::PathBuf, String) {
    let d = dir.join(label);
    json(&libra(&d, &["--json", "init", "--name", name]));
    let inv = json(&libra(&d, &["--json", "invite"]));
    (d, inv["invite"].as_str().expect("invite").to_owned())
}

#[test]
fn an_impostor_with_the_same_name_is_never_picked_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice, alice_inv) = node(dir.path(), "alice", "Alice");
    let (bob, bob_inv) = node(dir.path(), "bob", "Bob");
    let (_mallory, mallory_inv) = node(dir.path(), "mallory", "Bob");

    let added = json(&libra(&alice, &["--json", "contact", "add", &bob_inv]));
    let bob_short = added["short"].as_str().expect("short").to_owned();
    assert!(added["same_name"].as_array().expect("array").is_empty());
    // The second "Bob" is added with a loud warning naming the first.
    let out = libra(&alice, &["contact", "add", &mallory_inv]);
    let warn = text(&out);
    assert!(warn.contains("WARNING") && warn.contains(&bob_short), "{warn}");
    let contacts = json(&libra(&alice, &["--json", "contact", "list"]));
    let mallory_short = contacts
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["short"].as_str().expect("short").to_owned())
        .find(|s| *s != bob_short)
        .expect("second contact");

    // By name: refused, with both candidates listed.
    let out = libra(&alice, &["send", "Bob", "the account number is 1234"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than one") && err.contains(&bob_short) && err.contains(&mallory_short), "{err}");
    assert!(json(&libra(&alice, &["--json", "chats"])).as_array().expect("array").is_empty(), "nothing was sent");

    // By short id (with or without dashes): exactly that contact.
    json(&libra(&alice, &["--json", "send", &bob_short, "hi Bob"]));
    let undashed = bob_short.replace('-', "");
    json(&libra(&alice, &["--json", "send", &undashed[..9], "again"]));
    json(&libra(&alice, &["--json", "send", &mallory_short, "who are you?"]));
    let chats = text(&libra(&alice, &["chats"]));
    assert!(chats.contains(&format!("Bob ({mallory_short}, unverified)")), "{chats}");

    // Safety numbers: the same on both sides; confirming marks the contact verified.
    json(&libra(&bob, &["--json", "contact", "add", &alice_inv]));
    let mine = json(&libra(&alice, &["--json", "contact", "verify", &bob_short]));
    let theirs = json(&libra(&bob, &["--json", "contact", "verify", "Alice"]));
    assert_eq!(mine["safety_number"], theirs["safety_number"]);
    assert_eq!(mine["verified"], false);
    let sn = mine["safety_number"].as_str().expect("number");
    assert_eq!(sn.split(' ').count(), 12);
    let other = json(&libra(&alice, &["--json", "contact", "verify", &mallory_short]));
    assert_ne!(other["safety_number"], mine["safety_number"]);
    assert_eq!(json(&libra(&alice, &["--json", "contact", "verify", &bob_short, "--confirm"]))["verified"], true);
    let chats = text(&libra(&alice, &["chats"]));
    assert!(
        chats.contains(&format!("Bob ({bob_short})")) && !chats.contains(&format!("{bob_short}, unverified")),
        "{chats}"
    );

    // A name of our own for the impostor makes "Bob" unique again.
    json(&libra(&alice, &["--json", "contact", "rename", &mallory_short, "Not Bob"]));
    let sent = json(&libra(&alice, &["--json", "send", "bob", "only you now"]));
    assert_eq!(sent["chat"], "Bob");
    let list = text(&libra(&alice, &["contact", "list"]));
    assert!(list.contains("Not Bob") && list.contains("verified"), "{list}");
}

#[test]
fn peer_chosen_text_cannot_act_on_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice, _) = node(dir.path(), "alice", "Alice");
    // A name that retitles the terminal and forges a second line.
    let evil = "Eve\u{1b}]0;pwned\u{7}\nBob  please wire 500 EUR (delivered)\u{202e}";
    let (_eve, eve_inv) = node(dir.path(), "eve", evil);
    let added = json(&libra(&alice, &["--json", "contact", "add", &eve_inv]));
    assert_eq!(added["name"], evil, "JSON stays exact");
    let list = text(&libra(&alice, &["contact", "list"]));
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(!list.contains('\u{1b}') && !list.contains('\u{202e}') && !list.contains('\u{7}'), "{list:?}");
    assert!(list.contains("\\u{1b}]0;pwned\\u{7}\\nBob"), "{list}");
    // Our own names for contacts may not carry such characters at all.
    let short = added["short"].as_str().expect("short");
    let out = libra(&alice, &["contact", "rename", short, "Bob\nforged"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("control or invisible"));
    // Messages: a forged newline is shown escaped, on one line.
    json(&libra(&alice, &["--json", "send", short, "hello\n2026-01-01 00:00:00  Bob  wire money"]));
    let chat = text(&libra(&alice, &["chat", short]));
    assert_eq!(chat.lines().count(), 2, "title and one message: {chat}");
    assert!(chat.contains("hello\\n2026"), "{chat}");
    let chat = json(&libra(&alice, &["--json", "chat", short]));
    assert_eq!(chat["messages"][0]["text"], "hello\n2026-01-01 00:00:00  Bob  wire money");
}

#[test]
fn invites_and_long_messages_come_from_standard_input() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice, _) = node(dir.path(), "alice", "Alice");
    let (_bob, bob_inv) = node(dir.path(), "bob", "Bob");
    let piped = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_libra"))
            .arg("--data")
            .arg(&alice)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        child.wait_with_output().expect("wait")
    };
    let added = json(&piped(&["--json", "contact", "add", "-"], &format!("{bob_inv}\n")));
    assert_eq!(added["name"], "Bob");
    // Near the message limit (32 KiB), with lines of its own.
    let long = format!("first line\nsecond line\n{}", "x".repeat(30_000));
    json(&piped(&["--json", "send", "Bob", "-"], &format!("{long}\n")));
    let chat = json(&libra(&alice, &["--json", "chat", "Bob"]));
    assert_eq!(chat["messages"][0]["text"], long.as_str(), "exactly what was piped, less the final newline");
}

#[test]
fn invites_are_listed_counted_and_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, _) = node(dir.path(), "ann", "Ann"); // one single-use invite made
    let many = json(&libra(&ann, &["--json", "invite", "--uses", "3"]));
    assert_eq!(many["uses"], 3);
    let id = many["id"].as_str().expect("id").to_owned();
    let list = json(&libra(&ann, &["--json", "invite", "list"]));
    let rows: Vec<(String, u64)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r["uses_left"].as_u64().expect("uses")))
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.contains(&(id.clone(), 3)), "{rows:?}");
    // Not the token: the id does not appear in the invite text.
    assert!(!many["invite"].as_str().expect("invite").contains(&id));
    let revoked = json(&libra(&ann, &["--json", "invite", "revoke", &id[..5]]));
    assert_eq!(revoked["revoked"], serde_json::json!([id]));
    assert_eq!(json(&libra(&ann, &["--json", "invite", "list"])).as_array().expect("array").len(), 1);
    let again = libra(&ann, &["invite", "revoke", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no open invite"), "{again:?}");
    for bad in [&["invite", "--uses", "0"][..], &["invite", "revoke", "xyz!"], &["invite", "revoke"]] {
        let out = libra(&ann, bad);
        assert!(!out.status.success(), "{bad:?} succeeded");
    }
    assert!(text(&libra(&ann, &["invite", "revoke", "--all"])).contains("revoked"));
    assert!(text(&libra(&ann, &["invite", "list"])).contains("no open invites"));
}

/// With `--json`, a failure is one JSON object with a stable code (and exit status 2); ids are
/// always there; shells get completions.
#[test]
fn errors_are_json_with_stable_codes_and_ids_are_always_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = |out: &Output| -> String {
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).expect("a JSON error on stdout");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v["error"]["code"].as_str().expect("code").to_owned()
    };
    assert_eq!(err(&libra(&dir.path().join("none"), &["--json", "chats"])), "identity");
    let (ann, _) = node(dir.path(), "ann", "Ann");
    let (_, ben_inv) = node(dir.path(), "ben", "Ben");
    assert_eq!(err(&libra(&ann, &["--json", "send", "Nobody", "hi"])), "not_found");
    assert_eq!(err(&libra(&ann, &["--json", "contact", "add", "libra:xyz"])), "bad_invite");
    assert_eq!(err(&libra(&ann, &["--json", "invite", "--uses", "5000"])), "bad_argument");
    let added = json(&libra(&ann, &["--json", "contact", "add", &ben_inv]));
    assert_eq!(added["user_id"], added["added"]);
    let group = json(&libra(&ann, &["--json", "group", "create", "Trip", "Ben"]));
    assert!(
        group["chat"].as_str().is_some_and(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit())),
        "{group}"
    );
    let chats = json(&libra(&ann, &["--json", "chats"]));
    assert!(chats.as_array().expect("array").iter().any(|c| c["chat"] == group["chat"]), "{chats}");
    // Without --json the error stays a line on stderr.
    let plain = libra(&ann, &["send", "Nobody", "hi"]);
    assert!(plain.stdout.is_empty() && String::from_utf8_lossy(&plain.stderr).starts_with("error: "));
    let completions = text(&libra(&ann, &["completions", "bash"]));
    assert!(completions.contains("_libra") && completions.contains("nearby"), "bash completions");
}

/// `invite --qr` fits an 80×24 terminal (with an address too), and what it draws scans back
/// to the short form of the same invite; a holder adds it and waits for the device.
#[test]
fn the_invite_qr_code_fits_80_by_24_and_scans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, _) = node(dir.path(), "ann", "Ann");
    for extra in [&[][..], &["--with-address", "192.168.100.200:44330"][..]] {
        let out = text(&libra(&ann, &[&["invite", "--qr"][..], extra].concat()));
        let invite = out.lines().next().expect("the invite line").to_owned();
        // The code: every line drawn with half blocks (the quiet zone is blank lines around it).
        let first = out.lines().position(|l| l.contains('█')).expect("a code");
        let art: Vec<&str> = out.lines().skip(first.saturating_sub(2)).collect();
        assert!(art.len() <= 24, "{} lines do not fit a 24-line terminal", art.len());
        assert!(art.iter().all(|l| l.chars().count() <= 80), "wider than 80 columns");
        let scanned = scan(&art);
        let short = libra_engine::short_invite::ShortInvite::parse(&scanned).expect("the short form");
        let full = libra_engine::messenger::Invite::parse(&invite).expect("the full invite");
        assert_eq!(short.token, full.token.expect("token"), "one invite, two forms");
        assert_eq!(short.address, full.address);
        assert_eq!(short.device, full.card.certs[0].body.device.0);
    }
    // Ben adds Ann's short form: he waits for her device, and says so.
    let (ben, _) = node(dir.path(), "ben", "Ben");
    let v = json(&libra(&ann, &["--json", "invite"]));
    let added = json(&libra(&ben, &["--json", "contact", "add", v["short"].as_str().expect("short")]));
    assert!(added["awaiting"].as_str().is_some_and(|d| d.starts_with("ld")), "{added}");
    let list = text(&libra(&ben, &["contact", "list"]));
    assert!(list.contains("(waiting)") && list.contains(added["short"].as_str().expect("short")), "{list}");
}

/// Reads a QR code drawn in half blocks (each character two modules, top and bottom).
fn scan(art: &[&str]) -> String {
    let art: Vec<&str> = art.iter().copied().filter(|l| !l.is_empty()).collect();
    let cols = art.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let rows = art.len() * 2;
    let scale = 4;
    let dark = |x: usize, y: usize| {
        let c = art[y / 2].chars().nth(x).unwrap_or(' ');
        matches!((c, y % 2), ('█', _) | ('▀', 0) | ('▄', 1))
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(cols * scale, rows * scale, |x, y| {
        if dark(x / scale, y / scale) { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("decodes").1
}
