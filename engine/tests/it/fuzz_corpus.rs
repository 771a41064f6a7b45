//! Every seed of every fuzz target's corpus (engine/fuzz/corpus), run through its decoder as
//! the target does: crashes the fuzzers found stay fixed, and each target's properties hold on
//! the seeds without cargo-fuzz.

use std::path::Path;

use libra_engine::log::{Entry, ForkProof, SignedHeader, validate_next};
use libra_engine::messaging::Body;
use libra_engine::relay_wire::{Request, decode_addr, encode_addr};

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|f| std::fs::read(f.expect("file").path()).expect("read"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

#[test]
fn every_corpus_seed_decodes_as_its_target_expects() {
    for b in seeds("beacon") {
        if let Ok(x) = libra_engine::discovery::Beacon::decode(&b) {
            assert_eq!(x.encode(), b);
        }
    }
    for b in seeds("knock") {
        if let Ok(k) =
            std::str::from_utf8(&b).map_err(|_| ()).and_then(|n| libra_engine::knock::Knock::parse(n).map_err(|_| ()))
        {
            assert_eq!(k.server_name().as_bytes(), &b[..]);
        }
    }
    for b in seeds("nearby") {
        if let Ok(a) = libra_engine::nearby::Announcement::decode(&b) {
            assert_eq!(a.encode(), b);
            let _ = a.invite_from(std::net::SocketAddr::from(([10, 0, 0, 1], 7444)));
        }
    }
    for b in seeds("keyfile") {
        let path = Path::new("keys.json");
        if let Ok(s) = std::str::from_utf8(&b)
            .map_err(|_| ())
            .and_then(|t| libra_engine::keyfile::from_text(t, path).map_err(|_| ()))
        {
            let written = libra_engine::keyfile::to_json(&s).expect("written");
            let again = libra_engine::keyfile::from_text(&written, path).expect("reads back");
            assert_eq!(libra_engine::keyfile::to_json(&again).expect("written"), written);
        }
    }
    for b in seeds("stun") {
        if let Ok((tx, addr)) = libra_engine::stun::parse_response(&b) {
            assert!(libra_engine::stun::is_stun(&b));
            assert_eq!(
                libra_engine::stun::parse_response(&libra_engine::stun::binding_success(&tx, addr)),
                Ok((tx, addr))
            );
        }
        if let Ok(tx) = libra_engine::stun::parse_request(&b) {
            assert_eq!(libra_engine::stun::parse_request(&libra_engine::stun::binding_request(&tx)), Ok(tx));
        }
    }
    for b in seeds("relay_request") {
        if let Some(head) = b.get(..Request::LEN).and_then(|h| <&[u8; Request::LEN]>::try_from(h).ok())
            && let Ok(r) = Request::decode(head)
        {
            assert_eq!(&r.encode(), head);
        }
        if let Ok(a) = decode_addr(&b) {
            assert_eq!(encode_addr(a), b);
        }
    }
    for b in seeds("blob_request") {
        if let Ok(r) = libra_engine::blob::Request::decode(&b) {
            assert_eq!(r.encode(), b);
        }
    }
    for b in seeds("blob_response") {
        // The seeds answer chunks 128..137 of the 140,000-byte file of testvectors/blobs.json.
        let plain: Vec<u8> = (0..140_000).map(|i| (i % 251) as u8).collect();
        let mut blob = Vec::new();
        libra_engine::blob::encrypt_stream(&[0x42; 32], plain.len() as u64, &plain[..], &mut blob).expect("encrypt");
        let root = *blake3::hash(&blob).as_bytes();
        let ok = libra_engine::blob::decode_response(&root, blob.len() as u64, &[(128, 137)], &b[2..]).is_ok();
        assert_eq!(ok, b[b.len() - 1] == blob[blob.len() - 1], "only the true last byte verifies");
    }
    let mut grants = 0;
    for b in seeds("bundle") {
        if let Ok((entries, g)) = libra_engine::bundle::parse_all(&b) {
            for e in entries {
                let _ = validate_next(None, &e);
            }
            grants += g.len();
        }
    }
    assert!(grants >= 1, "a seed carries a signed grant section");
    for b in seeds("body") {
        if let Ok(x) = Body::decode(&b) {
            assert_eq!(x.encode(), b);
        }
    }
    for b in seeds("entry") {
        if let Ok(e) = Entry::decode(&b) {
            assert_eq!(e.encode(), b);
            let _ = validate_next(None, &e);
        }
    }
    for b in seeds("signed_header") {
        if let Ok(h) = SignedHeader::decode(&b) {
            assert_eq!(h.encode(), b);
        }
    }
    for b in seeds("fork_proof") {
        if let Ok(p) = ForkProof::decode(&b) {
            let _ = p.verify();
        }
    }
    for b in seeds("payload") {
        if b.len() >= 2 {
            let kind = u16::from_le_bytes([b[0], b[1]]);
            if let Ok(p) = libra_engine::payload::Payload::decode(kind, &b[2..]) {
                let _ = p.to_json();
            }
        }
    }
    for b in seeds("text_id") {
        if let Ok(s) = std::str::from_utf8(&b)
            && let Ok((kind, key)) = libra_engine::text::decode_id(s)
        {
            assert_eq!(libra_engine::text::encode_id(kind, &key), s.trim().to_ascii_lowercase());
        }
    }
}

/// The device seeds (from testvectors/devices.json and hand-made records) decode as what they
/// are: the code, the request, the refused grant, both revocations (one forged), the phrase,
/// the backup header and contents.
#[test]
fn device_seeds_decode_as_their_kinds() {
    use libra_engine::codec;
    let mut decoded = 0;
    for b in seeds("devices") {
        let (which, rest) = b.split_first().expect("a selector byte");
        let ok = match which % 6 {
            0 => libra_engine::link::LinkCode::parse(std::str::from_utf8(rest).expect("utf8"), 0).is_ok(),
            1 => codec::decode::<libra_engine::link::LinkRequest>(rest).is_ok(),
            2 => codec::decode::<libra_engine::link::LinkGrant>(rest).is_ok_and(|g| !g.refusal.is_empty()),
            3 => codec::decode::<libra_engine::identity::Revocation>(rest).is_ok(),
            4 => libra_engine::phrase::decode(std::str::from_utf8(rest).expect("utf8")).is_ok(),
            _ => {
                libra_engine::backup::Header::decode(rest).is_ok()
                    || libra_engine::backup::Contents::parse(rest).is_ok()
            }
        };
        assert!(ok, "seed with selector {which} does not decode");
        decoded += 1;
    }
    assert_eq!(decoded, 8);
}

/// The seeds of the sync-message, sealed and invite targets are what their names say: the
/// messages of the sync transcripts, the sealed vector, the invite in both forms and two
/// control requests.
#[test]
fn message_sealed_and_invite_seeds_decode() {
    for b in seeds("sync_message") {
        let m = libra_engine::sync::Message::decode(&b).expect("a transcript message");
        assert_eq!(m.encode(), b);
    }
    let (mut invites, mut shorts, mut requests) = (0, 0, 0);
    for b in seeds("invite") {
        let text = String::from_utf8(b).expect("utf8");
        invites += usize::from(libra_engine::messenger::Invite::parse(&text).is_ok());
        shorts += usize::from(libra_engine::short_invite::ShortInvite::parse(&text).is_ok());
        requests += usize::from(libra_engine::control::decode_request(&text).is_ok());
    }
    assert_eq!((invites, shorts, requests), (1, 1, 2));
}

/// The sealed seeds decode, re-encode as they were, and are opened with the target's key: the
/// one sealed to that key (`seal-to-target`, made here with fixed randomness; written again with
/// `LIBRA_WRITE_SEEDS=1`) opens to its text, and the others are for someone else.
#[test]
fn sealed_seeds_decode_and_open_as_the_target_does() {
    use libra_engine::messaging::{SealError, SealRandom, Sealed, seal};
    let secret = x25519_dalek::StaticSecret::from([7u8; 32]);
    let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
    let rnd = SealRandom { ephemeral: [1; 32], content_key: [2; 32], nonce: [3; 24], padding: [4; 32] };
    let text = b"a seed the fuzz target opens";
    let made = seal(text, b"libra-msg-v1", &[public], &rnd).expect("seal").encode();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sealed/seal-to-target");
    if std::env::var_os("LIBRA_WRITE_SEEDS").is_some() {
        std::fs::write(&path, &made).expect("write the seed");
    }
    assert_eq!(std::fs::read(&path).expect("the seed"), made, "the seed is the one made here");
    let mut opened = 0;
    for b in seeds("sealed") {
        let s = Sealed::decode(&b).expect("a sealed seed decodes");
        assert_eq!(s.encode(), b);
        match s.open(&secret, b"libra-msg-v1") {
            Ok(p) => {
                assert_eq!(p, text);
                opened += 1;
            }
            Err(e) => assert!(matches!(e, SealError::NotForUs), "{e}"),
        }
    }
    assert_eq!(opened, 1);
}

/// Every conn seed runs through the target's own harness without a panic. The committed
/// transcript seeds (`sync-*`: each message a framed chunk, selector 1) reach the connection
/// whole, and take some session to synced.
#[test]
fn conn_seeds_drive_a_real_connection() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/conn");
    let mut synced = 0;
    let mut transcripts = 0;
    for f in std::fs::read_dir(&dir).expect("corpus") {
        let path = f.expect("file").path();
        let b = std::fs::read(&path).expect("read");
        let fed = libra_engine::sync::hostile::feed(&b);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !name.starts_with("sync-") {
            continue;
        }
        transcripts += 1;
        let mut framed = 0;
        let mut rest = &b[1..];
        while let Some((&head, tail)) = rest.split_first() {
            let (chunk, next) = tail.split_at(usize::from(head >> 2).min(tail.len()));
            framed += usize::from(head & 3 == 1 && libra_engine::sync::Message::decode(chunk).is_ok());
            rest = next;
        }
        // All of a transcript reaches a connection that stays open; one that ends (the seed
        // replays the other side's messages in a role they do not fit) ends on a protocol
        // error, never on a local one.
        match &fed.end {
            None => assert!(framed > 0 && fed.messages_in == framed, "{name}: {framed} framed, {fed:?}"),
            Some(end) => {
                assert!(fed.messages_in >= 1 && matches!(end, libra_engine::sync::End::Sync(_)), "{name}: {fed:?}")
            }
        }
        synced += usize::from(fed.synced);
    }
    assert_eq!(transcripts, 6, "the committed transcript seeds");
    assert!(synced > 0, "no transcript took a session to synced");
}

/// The sketch target's seeds (spec/sync.md 8.10) peel as the target does; the one made from a
/// real set (`seed-peels`: the target's 20 own logs, two of them gone, one at another head and two
/// others added) peels to exactly those five logs, and the others never complete.
#[test]
fn sketch_seeds_peel_as_the_target_does() {
    use libra_engine::sync::sketch::{CELL_LEN, Cell, Decoder, LogKey};
    let mut complete = 0;
    for b in seeds("sketch") {
        let (&n, rest) = b.split_first().expect("a size byte");
        let own: Vec<LogKey> =
            (0..n).map(|i| LogKey { a: u64::from(i) << 40 | 5, tag: u32::from(i) * 31 + 1 }).collect();
        let Some(cells) = rest.chunks_exact(CELL_LEN).map(Cell::from_bytes).collect::<Option<Vec<_>>>() else {
            continue;
        };
        let (first, second) = cells.split_at(cells.len() / 2);
        let mut d = Decoder::new();
        for part in [first, second] {
            if part.is_empty() || d.add(part, &own).is_err() {
                break;
            }
            assert!(d.peeled().len() <= d.len());
        }
        if d.is_complete() {
            complete += 1;
            let mut kinds: Vec<(bool, bool)> = d.peeled().iter().map(|p| (p.ours != 0, p.theirs != 0)).collect();
            kinds.sort();
            assert_eq!(kinds, [(false, true), (false, true), (true, false), (true, false), (true, true)]);
        }
    }
    assert_eq!(complete, 1, "only the seed made from a real set peels");
}
