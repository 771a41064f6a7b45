//! Short invites (spec/messaging.md, section 8.1a) end to end on real nodes over QUIC on
//! loopback: the holder reaches the inviter's device once, introduces itself with the token,
//! and the contact is added from the card the device answers with; a forged token or a card
//! that does not certify the device adds nobody.

use crate::util::{HostExt, host, user};
use libra_engine::identity::UserId;
use libra_engine::net::Host;
use libra_engine::short_invite::ShortInvite;

fn contacts(h: &Host) -> Vec<UserId> {
    h.read_node(|n| n.store.contacts().expect("contacts")).into_iter().map(|(u, _)| u).collect()
}

fn short_of(h: &Host) -> ShortInvite {
    let (_, short) = h.with_node(|n| n.invite_both(None, 1).expect("invite"));
    // What a scanner reads: the upper-case text of the QR code.
    ShortInvite::parse(&short.to_qr_text()).expect("parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_invite_becomes_a_contact_on_first_contact_and_messages_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    let short = short_of(&b);
    let device = a.with_node(|n| n.add_short_invite(&short).expect("add"));
    assert_eq!(device.0.0, b.device());
    assert!(a.read_node(|n| n.awaits_card(&b.device())), "waits for the card");
    assert!(contacts(&a).is_empty(), "no contact before the device answered");
    // Adding it again is harmless; adding one's own is refused.
    a.with_node(|n| n.add_short_invite(&short).expect("again"));
    assert!(b.with_node(|n| n.add_short_invite(&short)).is_err(), "own short invite");

    a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("first contact");
    assert_eq!(contacts(&a), vec![user(&b)], "the card became a contact");
    assert!(!a.read_node(|n| n.awaits_card(&b.device())), "nothing waits any more");
    assert_eq!(contacts(&b), vec![user(&a)], "the introduction made it mutual");
    let name = a.read_node(|n| n.display_name(&user(&b)));
    assert_eq!(name, "ben", "the name came with the card");

    let chat = a.read_node(|n| n.chat(&user(&b).to_string()).expect("chat"));
    a.with_node(|n| n.send(&chat, "scanned your code", None).expect("send"));
    a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("sync");
    let texts: Vec<_> =
        b.read_node(|n| n.store.messages(&chat.chat, 10).expect("messages")).into_iter().map(|m| m.text).collect();
    assert_eq!(texts, vec![Some("scanned your code".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_peer_answers_too_and_a_forged_token_adds_nobody() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, eve) = (host(dir.path(), "ann"), host(dir.path(), "ben"), host(dir.path(), "eve"));
    // Eve holds a short invite of Ben's with a token Ben never made: refused, forgotten.
    let mut forged = short_of(&b);
    forged.token = libra_engine::codec::Bytes([9; 16]);
    eve.with_node(|n| n.add_short_invite(&forged).expect("add"));
    let r = eve.connect(b.local_addr().expect("addr"), Some(b.device()), false).await;
    assert!(r.is_err(), "{r:?}");
    assert!(eve.read_node(|n| n.awaits_card(&b.device())), "still waiting");
    assert!(contacts(&eve).is_empty() && !contacts(&b).contains(&user(&eve)));
    assert!(b.read_node(|n| n.store.peer(&eve.device()).expect("peer")).is_none(), "no record of the stranger");

    // Ben knows Ann already (he added her full invite), so her session is admitted at once;
    // her short invite of Ben's still completes: Ben answers a known peer's Introduce too.
    let ann_full = a.with_node(|n| n.invite(None, 1).expect("invite"));
    b.with_node(|n| n.add_contact(&ann_full, None).expect("add"));
    let short = short_of(&b);
    a.with_node(|n| n.add_short_invite(&short).expect("add"));
    a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("sync");
    assert_eq!(contacts(&a), vec![user(&b)]);

    // An answer that does not fit adds nobody: the wrong token, or a card that does not
    // certify the device we wait for.
    let short = short_of(&b);
    let card_b = b.read_node(|n| n.own_card().expect("card"));
    let card_a = a.read_node(|n| n.own_card().expect("card"));
    eve.with_node(|n| n.add_short_invite(&short).expect("add"));
    let complete = |token: [u8; 16], card: &libra_engine::messaging::ContactCard| {
        eve.with_node(|n| n.complete_short_invite(&b.device(), &token, card).expect("complete"))
    };
    assert_eq!(complete([1; 16], &card_b), None, "wrong token");
    assert_eq!(complete(short.token.0, &card_a), None, "a card of someone else");
    assert!(contacts(&eve).is_empty());
    assert_eq!(complete(short.token.0, &card_b), Some(user(&b)), "the right answer");
}
