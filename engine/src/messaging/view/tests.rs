//! The rows each entry yields, byte for byte: the keys are the projection's on-disk format
//! (spec/messaging.md §9.3), so a change here is a format change.

use ed25519_dalek::SigningKey;
use x25519_dalek::{PublicKey, StaticSecret};

use super::*;
use crate::blob::FileRef;
use crate::log::sign_entry;
use crate::messaging::seal::{SealRandom, seal};

const TS: u64 = 0x0102_0304_0506_0708;

/// Ann's device writes; Ben reads (user 0xbb, device key of secret 0x22).
struct World {
    ann_key: SigningKey,
    ann_user: UserId,
    ben: Reader,
    ben_secret: StaticSecret,
    trust: TrustView,
}

fn world() -> World {
    let ann_key = SigningKey::from_bytes(&[0x11; 32]);
    let ann_user = UserId(Bytes([0xaa; 32]));
    let ben_secret = StaticSecret::from([0x22; 32]);
    let ben_user = UserId(Bytes([0xbb; 32]));
    let ben_device = DeviceId(Bytes([0xbd; 32]));
    let ben = Reader::new(vec![ben_secret.clone()], ben_user, ben_device);
    let mut trust = TrustView::default();
    trust.vouch_unsigned(ann_user, DeviceId(Bytes(ann_key.verifying_key().to_bytes())));
    World { ann_key, ann_user, ben, ben_secret, trust }
}

impl World {
    fn ann_device(&self) -> DeviceId {
        DeviceId(Bytes(self.ann_key.verifying_key().to_bytes()))
    }

    /// An entry by Ann carrying `plain`, sealed to `to` under the additional data `aad_of`.
    fn sealed_with(&self, plain: &[u8], to: &[[u8; 32]], aad_author: &[u8; 32]) -> Entry {
        let sealed = seal(plain, &aad(aad_author), to, &SealRandom::fresh()).expect("seal");
        sign_entry(&self.ann_key, None, TS, KIND_SEALED, sealed.encode())
    }

    fn to_ben(&self, body: &Body) -> Entry {
        let ben_pub = PublicKey::from(&self.ben_secret).to_bytes();
        self.sealed_with(&body.encode(), &[ben_pub], &self.ann_device().0.0)
    }

    fn rows(&self, e: &Entry) -> Rows {
        rows(e, &self.ben, &self.trust)
    }
}

fn chat() -> ChatId {
    ChatId(Bytes([0xc0; 16]))
}

fn msg_rows(chat: ChatId, e: &Entry, row: &MsgRow) -> Rows {
    let ts = TS.to_be_bytes();
    vec![
        ([&b"m"[..], &chat.0.0, &ts, e.id.as_bytes()].concat(), codec::encode(row)),
        ([&b"s"[..], &chat.0.0].concat(), Vec::new()),
    ]
}

#[test]
fn aad_binds_the_author() {
    assert_eq!(aad(&[7; 32]), [&b"libra-msg-v1"[..], &[7; 32]].concat());
}

#[test]
fn a_reader_keeps_each_secrets_public_key() {
    let w = world();
    assert_eq!(w.ben.agreements.len(), 1);
    assert_eq!(w.ben.agreements[0].1, PublicKey::from(&w.ben_secret).to_bytes());
}

#[test]
fn a_text_yields_its_message_its_place_and_its_chat() {
    let w = world();
    let reply = EntryId(Bytes([5; 32]));
    let e = w.to_ben(&Body::Text { chat: chat(), text: "hi".into(), reply_to: Some(reply) });
    let row = MsgRow { device: w.ann_device(), user: Some(w.ann_user), text: Some("hi".into()), reply_to: Some(reply) };
    assert_eq!(w.rows(&e), msg_rows(chat(), &e, &row));
}

#[test]
fn entries_that_are_not_sealed_messages_or_not_for_us_yield_nothing() {
    let w = world();
    let text = Body::Text { chat: chat(), text: "hi".into(), reply_to: None }.encode();
    let other = PublicKey::from(&StaticSecret::from([0x33; 32])).to_bytes();
    let not_ours = w.sealed_with(&text, &[other], &w.ann_device().0.0);
    assert_eq!(w.rows(&not_ours), Vec::new());
    let (rows, key) = rows_known(&not_ours, &w.ben, &w.trust, Known::Nothing);
    assert!(rows.is_empty() && key.is_none());
    // Another kind, even with a payload that would open.
    let sealed = w.to_ben(&Body::Text { chat: chat(), text: "hi".into(), reply_to: None });
    let other_kind = sign_entry(&w.ann_key, None, TS, KIND_SEALED + 1, sealed.payload.clone().expect("payload"));
    assert_eq!(w.rows(&other_kind), Vec::new());
    // Not a sealed envelope at all.
    let junk = sign_entry(&w.ann_key, None, TS, KIND_SEALED, vec![0xc1, 0x00]);
    assert_eq!(w.rows(&junk), Vec::new());
    // A header without its payload (held back by a peer).
    let mut bare = sealed;
    bare.payload = None;
    assert_eq!(w.rows(&bare), Vec::new());
}

#[test]
fn addressed_to_us_but_unreadable_is_shown_never_dropped() {
    let w = world();
    let ben_pub = PublicKey::from(&w.ben_secret).to_bytes();
    let direct = ChatId::direct(&w.ben.user, &w.ann_user);
    let unreadable = MsgRow { device: w.ann_device(), user: Some(w.ann_user), text: None, reply_to: None };
    // Sealed under another author's additional data: the slot opens, the content does not.
    let text = Body::Text { chat: chat(), text: "hi".into(), reply_to: None }.encode();
    let corrupt = w.sealed_with(&text, &[ben_pub], &[9; 32]);
    assert_eq!(w.rows(&corrupt), msg_rows(direct, &corrupt, &unreadable));
    // Opens, but is no body.
    let junk_body = w.sealed_with(&[0x92, 0x63, 0xc0], &[ben_pub], &w.ann_device().0.0);
    assert_eq!(w.rows(&junk_body), msg_rows(direct, &junk_body, &unreadable));
    // From a device no user vouches for: the chat cannot be named.
    let mut stranger = w.trust.clone();
    stranger.users.clear();
    let row = MsgRow { user: None, ..unreadable };
    assert_eq!(rows(&corrupt, &w.ben, &stranger), msg_rows(ChatId(Bytes([0; 16])), &corrupt, &row));
}

#[test]
fn edits_deletes_and_acks_are_keyed_by_their_target() {
    let w = world();
    let target = EntryId(Bytes([6; 32]));
    let ts = TS.to_be_bytes();
    let e = w.to_ben(&Body::Edit { chat: chat(), target, text: "fixed".into() });
    let edit = EditRow { user: Some(w.ann_user), text: "fixed".into() };
    assert_eq!(w.rows(&e), vec![([&b"e"[..], &[6; 32], &ts, e.id.as_bytes()].concat(), codec::encode(&edit))]);

    let d = w.to_ben(&Body::Delete { chat: chat(), target });
    assert_eq!(w.rows(&d), vec![([&b"d"[..], &[6; 32], d.id.as_bytes()].concat(), vec![0xaa; 32])]);
    let mut stranger = w.trust.clone();
    stranger.users.clear();
    assert_eq!(rows(&d, &w.ben, &stranger), vec![([&b"d"[..], &[6; 32], d.id.as_bytes()].concat(), vec![0; 32])]);

    let other = EntryId(Bytes([8; 32]));
    let dev = w.ann_device().0.0;
    for read in [false, true] {
        let a = w.to_ben(&Body::Ack { chat: chat(), targets: vec![target, other], read });
        let flag = [u8::from(read)];
        assert_eq!(
            w.rows(&a),
            vec![
                ([&b"a"[..], &[6; 32], &dev, &ts, &flag].concat(), Vec::new()),
                ([&b"a"[..], &[8; 32], &dev, &ts, &flag].concat(), Vec::new()),
            ]
        );
        // Read as the acknowledging device itself: its delivery acks give no rows (they would
        // tell it nothing), its read acks do (they move its read marks).
        let itself = Reader::new(vec![w.ben_secret.clone()], w.ben.user, w.ann_device());
        assert_eq!(rows(&a, &itself, &w.trust).len(), if read { 2 } else { 0 }, "read {read}");
    }
}

#[test]
fn a_contact_counts_only_from_our_own_devices() {
    let mut w = world();
    let card = ContactCard { name: "cy".into(), certs: vec![] };
    let e = w.to_ben(&Body::Contact(card.clone()));
    assert_eq!(w.rows(&e), Vec::new(), "Ann is not Ben");
    // Once Ann's device belongs to Ben's user, it is one of ours.
    let (ben_user, ann_device) = (w.ben.user, w.ann_device());
    w.trust.vouch_unsigned(ben_user, ann_device);
    w.trust.users.remove(&w.ann_user);
    assert_eq!(w.rows(&e), vec![([&b"c"[..], e.id.as_bytes()].concat(), codec::encode(&ContactRow { card, ts: TS }))]);
}

#[test]
fn group_changes_are_rows_of_their_chat() {
    let w = world();
    let ts = TS.to_be_bytes();
    let m = vec![UserId(Bytes([1; 32]))];
    for (body, op) in [
        (
            Body::GroupCreate { chat: chat(), name: "g".into(), members: m.clone() },
            GroupOp::Create { name: "g".into(), members: m.clone() },
        ),
        (
            Body::GroupAdd { chat: chat(), name: "g".into(), members: m.clone() },
            GroupOp::Add { name: "g".into(), members: m.clone() },
        ),
        (Body::GroupLeave { chat: chat() }, GroupOp::Leave),
        (Body::GroupRemove { chat: chat(), members: m.clone() }, GroupOp::Remove { members: m.clone() }),
        (Body::GroupRename { chat: chat(), name: "h".into() }, GroupOp::Rename { name: "h".into() }),
    ] {
        let e = w.to_ben(&body);
        let row = GroupRow { user: Some(w.ann_user), op };
        assert_eq!(
            w.rows(&e),
            vec![
                ([&b"g"[..], &chat().0.0, &ts, e.id.as_bytes()].concat(), codec::encode(&row)),
                ([&b"s"[..], &chat().0.0].concat(), Vec::new()),
            ]
        );
    }
}

#[test]
fn a_file_is_a_message_with_its_file_row() {
    let w = world();
    let file = FileRef {
        name: "a.png".into(),
        size: 5,
        media_type: "image/png".into(),
        root: Bytes([4; 32]),
        key: Bytes([5; 32]),
    };
    let e = w.to_ben(&Body::File { chat: chat(), text: "look".into(), reply_to: None, file: file.clone() });
    let row = MsgRow { device: w.ann_device(), user: Some(w.ann_user), text: Some("look".into()), reply_to: None };
    let mut want = msg_rows(chat(), &e, &row);
    want.push(([&b"f"[..], e.id.as_bytes()].concat(), codec::encode(&FileRow { chat: chat(), ts: TS, file })));
    assert_eq!(w.rows(&e), want);
}

#[test]
fn what_is_known_saves_the_opening_and_gives_back_the_content_key() {
    let w = world();
    let body = Body::Text { chat: chat(), text: "hi".into(), reply_to: None };
    let e = w.to_ben(&body);
    let sealed = Sealed::decode(e.payload.as_deref().expect("payload")).expect("decode");
    let key = sealed.content_key(&w.ben_secret).expect("for Ben");
    let opened = rows_known(&e, &w.ben, &w.trust, Known::Nothing);
    assert_eq!(opened.1, Some(key));
    assert_eq!(rows_known(&e, &w.ben, &w.trust, Known::Key(key)), opened);

    // A plaintext known from sealing is taken as it is (nothing is opened), but only for an
    // entry of this very device.
    let other = Body::Text { chat: chat(), text: "known".into(), reply_to: None }.encode();
    let row =
        |text: &str| MsgRow { device: w.ann_device(), user: Some(w.ann_user), text: Some(text.into()), reply_to: None };
    assert_eq!(rows_known(&e, &w.ben, &w.trust, Known::Sealed(&other, [3; 32])), opened, "not Ben's own entry");
    let me = Reader::new(vec![w.ben_secret.clone()], w.ben.user, w.ann_device());
    let (rows, k) = rows_known(&e, &me, &w.trust, Known::Sealed(&other, [3; 32]));
    assert_eq!((rows, k), (msg_rows(chat(), &e, &row("known")), Some([3; 32])));
}

#[test]
fn older_secrets_still_open_history() {
    let w = world();
    let e = w.to_ben(&Body::Text { chat: chat(), text: "old".into(), reply_to: None });
    let newer = StaticSecret::from([0x44; 32]);
    let reader = Reader::new(vec![newer.clone(), w.ben_secret.clone()], w.ben.user, w.ben.device);
    let row = MsgRow { device: w.ann_device(), user: Some(w.ann_user), text: Some("old".into()), reply_to: None };
    assert_eq!(rows(&e, &reader, &w.trust), msg_rows(chat(), &e, &row));
    let only_newer = Reader::new(vec![newer], w.ben.user, w.ben.device);
    assert_eq!(rows(&e, &only_newer, &w.trust), Vec::new());
    // A content key kept from before opens it after its secret is gone (spec/devices.md,
    // "Retention").
    let key = Sealed::decode(e.payload.as_deref().expect("payload")).expect("decode").content_key(&w.ben_secret);
    let kept = rows_known(&e, &only_newer, &w.trust, Known::Key(key.expect("for Ben")));
    assert_eq!(kept.0, msg_rows(chat(), &e, &row));
}

#[test]
fn content_keys_are_found_before_the_write_as_the_projection_finds_them() {
    let w = world();
    let body = Body::Text { chat: chat(), text: "hi".into(), reply_to: None };
    let e = w.to_ben(&body);
    let key = Sealed::decode(e.payload.as_deref().expect("payload")).expect("decode").content_key(&w.ben_secret);
    assert_eq!(content_key_of(&e, &w.ben.agreements), Some(key.clone()));
    let other = Reader::new(vec![StaticSecret::from([0x33; 32])], w.ben.user, w.ben.device);
    assert_eq!(content_key_of(&e, &other.agreements), Some(Err(SealError::NotForUs)));
    let junk = sign_entry(&w.ann_key, None, TS, KIND_SEALED, vec![0xc1]);
    let other_kind = sign_entry(&w.ann_key, None, TS, KIND_SEALED + 1, e.payload.clone().expect("payload"));
    assert_eq!(
        (content_key_of(&junk, &w.ben.agreements), content_key_of(&other_kind, &w.ben.agreements)),
        (None, None)
    );

    // Taken as found: the same rows and key as opening in place; none found, no rows.
    let key = key.expect("for Ben");
    let opened = rows_known(&e, &w.ben, &w.trust, Known::Nothing);
    assert_eq!(rows_known(&e, &w.ben, &w.trust, Known::Opened(Some(key))), opened);
    assert_eq!(rows_known(&e, &w.ben, &w.trust, Known::Opened(None)), (Vec::new(), None));

    // Many at once, over threads: the same as one by one, junk left out.
    let mut many: Vec<Entry> =
        (0..70).map(|i| w.to_ben(&Body::Delete { chat: chat(), target: EntryId(Bytes([i; 32])) })).collect();
    many.push(junk);
    let refs: Vec<&Entry> = many.iter().collect();
    let (one, two) = (content_keys(&refs, &w.ben.agreements, 1), content_keys(&refs, &w.ben.agreements, 2));
    assert_eq!(one.len(), 70);
    assert_eq!(one, two);
    assert_eq!(one.get(&many[5].id), content_key_of(&many[5], &w.ben.agreements).as_ref());
}
