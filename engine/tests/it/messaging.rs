//! Messaging end to end on real nodes over QUIC on loopback: offline delivery with
//! acknowledgements, store-and-forward through a third node that cannot read, groups, edits and
//! deletions, and a projection independent of arrival order.

use crate::util::{HostExt, ann_and_ben, befriend, host, live, user, wait_until};

use libra_engine::identity::UserId;
use libra_engine::messaging::{Body, Sealed, aad};
use libra_engine::messenger::ChatTarget;
use libra_engine::net::Host;
use libra_engine::node::Node;
use libra_engine::store::Delivery;
use proptest::prelude::*;

/// Every entry `n` holds, log by log.
fn logs_of(n: &Node) -> Vec<libra_engine::log::Entry> {
    let mut all = Vec::new();
    for (author, _) in n.store.heads().collect::<Vec<_>>() {
        all.extend(n.store.read_log(&author, 1, usize::MAX).expect("read"));
    }
    all
}

fn unread(s: &libra_engine::Store) -> Vec<usize> {
    s.chats().expect("chats").iter().map(|c| c.unread).collect()
}

fn chat_with(h: &Host, other: &Host) -> ChatTarget {
    let u = user(other);
    h.read_node(|n| n.chat(&u.to_string()).expect("chat"))
}

fn texts(h: &Host, chat: &ChatTarget) -> Vec<Option<String>> {
    h.read_node(|n| n.store.messages(&chat.chat, 100).expect("messages").into_iter().map(|m| m.text).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_message_is_delivered_and_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    befriend(&a, &b);
    // Sending never waits for the network: B is not connected.
    let chat = chat_with(&a, &b);
    let sent = a.with_node(|n| n.send(&chat, "hello while you were away", None).expect("send"));
    let state = |h: &Host| {
        h.read_node(|n| {
            n.store.messages(&chat.chat, 10).expect("m").iter().find(|m| m.id == sent.id).and_then(|m| m.delivery)
        })
    };
    assert_eq!(state(&a), Some(Delivery::Sent));

    // B comes online; a live connection carries the message over and the ack back.
    let session = live(&a, &b);
    let back = chat_with(&b, &a);
    assert_eq!(back.chat, chat.chat, "both sides name the 1:1 chat alike");
    wait_until("the message at B", || texts(&b, &back) == vec![Some("hello while you were away".to_owned())]).await;
    wait_until("the ack at A", || state(&a) == Some(Delivery::Delivered)).await;
    // Read receipts are opt-in: with them, A sees "read".
    b.with_node(|n| n.mark_read(&back, true).expect("read"));
    wait_until("the read receipt at A", || state(&a) == Some(Delivery::Read)).await;
    let unread = b.read_node(|n| n.store.chats().expect("chats")[0].unread);
    assert_eq!(unread, 0);
    // Shown exactly once, however often it arrives.
    assert_eq!(texts(&b, &back).len(), 1);
    session.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_delivers_what_it_cannot_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (host(dir.path(), "ann"), host(dir.path(), "ben"), host(dir.path(), "cat"));
    befriend(&a, &b);
    befriend(&a, &c);
    befriend(&b, &c);
    let chat = chat_with(&a, &b);
    let sent = a.with_node(|n| n.send(&chat, "for ben only", None).expect("send"));
    // A and B never meet: A syncs with C, then C with B.
    a.connect(c.local_addr().expect("addr"), Some(c.device()), false).await.expect("a-c");
    c.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("c-b");
    let back = chat_with(&b, &a);
    assert_eq!(texts(&b, &back), vec![Some("for ben only".to_owned())]);
    // C holds the entry, but only ciphertext it cannot open, and shows nothing of it.
    let held = c.read_node(|n| n.store.get(&sent.id).expect("get").expect("C carries it"));
    let sealed = Sealed::decode(held.payload.as_deref().expect("payload")).expect("sealed");
    let c_secret = c.read_node(|n| n.secrets.device.agreement().clone());
    assert!(sealed.open(&c_secret, &aad(&held.header().author.0)).is_err());
    assert!(c.read_node(|n| n.store.chats().expect("chats")).iter().all(|s| s.chat != chat.chat));
    // B's acknowledgement finds its way back the same way, once B has sealed it: acks are
    // sealed by B's writer after the ingest's group and offered once durable, so a session
    // started right away may come before them.
    wait_until("B's ack sealed", || !b.read_node(|n| n.store.has_new_messages())).await;
    b.engine().wait_durable().expect("durable");
    b.connect(c.local_addr().expect("addr"), Some(c.device()), false).await.expect("b-c");
    c.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("c-a");
    let delivery = a.read_node(|n| n.store.messages(&chat.chat, 10).expect("m")[0].delivery);
    assert_eq!(delivery, Some(Delivery::Delivered));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_with_one_member_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (host(dir.path(), "ann"), host(dir.path(), "ben"), host(dir.path(), "cat"));
    befriend(&a, &b);
    befriend(&a, &c);
    befriend(&b, &c);
    let members = vec![user(&b), user(&c)];
    let group = a.with_node(|n| n.group_create("trip", &members).expect("group"));
    a.with_node(|n| n.send(&group, "who brings the tent?", None).expect("send"));
    let s1 = live(&a, &b);
    wait_until("the group at B", || b.read_node(|n| n.chat("trip").is_ok())).await;
    let at_b = b.read_node(|n| n.chat("trip").expect("chat"));
    assert_eq!(at_b.chat, group.chat);
    b.with_node(|n| n.send(&at_b, "I do", None).expect("send"));
    wait_until("B's reply at A", || texts(&a, &group).len() == 2).await;
    // C was offline; when it comes up and meets only B, it gets the whole conversation.
    c.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("c-b");
    let at_c = c.read_node(|n| n.chat("trip").expect("group known at C"));
    assert_eq!(texts(&c, &at_c), vec![Some("who brings the tent?".to_owned()), Some("I do".to_owned())]);
    let members_at_c = c.read_node(|n| n.store.group(&at_c.chat).expect("group").expect("exists").1);
    assert_eq!(members_at_c.len(), 3);
    s1.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_later_knows_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (host(dir.path(), "ann"), host(dir.path(), "ben"), host(dir.path(), "cat"));
    befriend(&a, &b);
    befriend(&a, &c);
    befriend(&b, &c);
    let group = a.with_node(|n| n.group_create("trip", &[user(&b)]).expect("group"));
    a.with_node(|n| n.send(&group, "before Cat joined", None).expect("send"));
    let cat = user(&c);
    a.with_node(|n| n.group_add(&group, &[cat]).expect("add"));
    let group = a.read_node(|n| n.chat("trip").expect("chat"));
    a.with_node(|n| n.send(&group, "welcome, Cat", None).expect("send"));
    c.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("sync");
    let at_c = c.read_node(|n| n.chat("trip").expect("Cat knows the group by name"));
    assert_eq!(at_c.users.len(), 3);
    // Cat reads what was sealed to her, not what came before she was added.
    assert_eq!(texts(&c, &at_c), vec![Some("welcome, Cat".to_owned())]);
    c.with_node(|n| n.send(&at_c, "thanks!", None).expect("reply"));
}

/// A member takes another out and renames the group: everyone sees the new name and members,
/// the one removed learns it, and what is said afterwards is not sealed to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_removed_and_the_group_renamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (host(dir.path(), "ann"), host(dir.path(), "ben"), host(dir.path(), "cat"));
    befriend(&a, &b);
    befriend(&a, &c);
    befriend(&b, &c);
    let group = a.with_node(|n| n.group_create("trip", &[user(&b), user(&c)]).expect("group"));
    a.with_node(|n| n.send(&group, "all three of us", None).expect("send"));
    a.with_node(|n| n.group_remove(&group, &[user(&c)]).expect("remove"));
    let group = a.read_node(|n| n.chat("trip").expect("chat"));
    a.with_node(|n| n.group_rename(&group, "trip for two").expect("rename"));
    let group = a.read_node(|n| n.chat("trip for two").expect("renamed"));
    assert_eq!(group.users.len(), 2, "Ann and Ben");
    a.with_node(|n| n.send(&group, "just us now", None).expect("send"));
    // Refused: removing someone who is not in it, a bad name.
    assert!(a.with_node(|n| n.group_remove(&group, &[user(&c)])).is_err());
    assert!(a.with_node(|n| n.group_rename(&group, "")).is_err());
    for h in [&b, &c] {
        h.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("sync");
    }
    let at_b = b.read_node(|n| n.chat("trip for two").expect("B knows the new name"));
    assert_eq!(texts(&b, &at_b), vec![Some("all three of us".to_owned()), Some("just us now".to_owned())]);
    let members_at_c = c.read_node(|n| n.store.group(&group.chat).expect("group").expect("exists").1);
    assert!(!members_at_c.contains(&user(&c)), "Cat learns she was removed");
    let at_c = c.read_node(|n| n.chat(&group.chat.to_hex()).expect("chat"));
    assert_eq!(texts(&c, &at_c), vec![Some("all three of us".to_owned())], "nothing after the removal");
    // A removal by someone no longer in the group changes nothing.
    c.with_node(|n| {
        let body = libra_engine::messaging::Body::GroupRemove { chat: group.chat, members: vec![user(&b)] };
        n.say(&body, &[user(&a), user(&b)]).expect("say")
    });
    b.connect(c.local_addr().expect("addr"), Some(c.device()), false).await.expect("sync");
    let members_at_b = b.read_node(|n| n.store.group(&group.chat).expect("group").expect("exists").1);
    assert!(members_at_b.contains(&user(&b)), "an outsider cannot remove members");
}

/// Blocking a contact ends its sessions, refuses its devices and writing to it; unblocking
/// takes it all back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_contact_cannot_connect_and_is_not_written_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    befriend(&a, &b);
    let s = live(&b, &a);
    wait_until("B online at A", || a.online().contains_key(&b.device())).await;
    let devices = a.with_node(|n| n.set_blocked(&user(&b), true).expect("block"));
    assert_eq!(devices, vec![b.device()]);
    for d in &devices {
        a.engine().disconnect(d);
    }
    wait_until("B's session ended", || !a.online().contains_key(&b.device())).await;
    s.abort();
    let again = b.connect(a.local_addr().expect("addr"), Some(a.device()), false).await;
    assert!(again.is_err(), "a blocked device got in: {again:?}");
    let chat = chat_with(&a, &b);
    let refused = a.with_node(|n| n.send(&chat, "hi", None));
    assert!(matches!(refused, Err(libra_engine::messenger::MessengerError::Blocked(_))), "{refused:?}");
    a.with_node(|n| n.set_blocked(&user(&b), false).expect("unblock"));
    a.with_node(|n| n.send(&chat, "sorry, you are back", None).expect("send"));
    b.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("B gets in again");
    let back = chat_with(&b, &a);
    assert_eq!(texts(&b, &back), vec![Some("sorry, you are back".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletions_converge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    befriend(&a, &b);
    let chat = chat_with(&a, &b);
    let one = a.with_node(|n| n.send(&chat, "frist", None).expect("send"));
    let two = a.with_node(|n| n.send(&chat, "oops", None).expect("send"));
    a.with_node(|n| n.edit(&chat, one.id, "first").expect("edit"));
    a.with_node(|n| n.delete(&chat, two.id).expect("delete"));
    // B tries to edit A's message: not its message, so it is ignored everywhere.
    a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("sync");
    let back = chat_with(&b, &a);
    // Its own client refuses (a clear error, nothing sent) ...
    let refused = b.with_node(|n| n.edit(&back, one.id, "hijacked"));
    assert!(matches!(refused, Err(libra_engine::messenger::MessengerError::NotYourMessage)), "{refused:?}");
    assert!(matches!(
        b.with_node(|n| n.delete(&back, one.id)),
        Err(libra_engine::messenger::MessengerError::NotYourMessage)
    ));
    // ... and a modified client's edit is sent but ignored everywhere.
    let body = libra_engine::messaging::Body::Edit { chat: back.chat, target: one.id, text: "hijacked".into() };
    b.with_node(|n| n.say(&body, &back.users).expect("edit is sent"));
    b.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("sync");
    for (h, c) in [(&a, &chat), (&b, &back)] {
        assert!(h.read_node(|n| n.store.verify().expect("verify")).is_empty(), "rows equal their rebuild");
        let msgs = h.read_node(|n| n.store.messages(&c.chat, 10).expect("m"));
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].text.as_deref(), msgs[0].edited), (Some("first"), true));
        assert!(msgs[1].deleted && msgs[1].text.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_sided_add_becomes_mutual_on_first_contact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    // Only A adds B's invite; B has never heard of A.
    let ib = b.with_node(|n| n.invite(None, 1).expect("invite"));
    a.with_node(|n| n.add_contact(&ib, None).expect("add"));
    let chat = chat_with(&a, &b);
    a.with_node(|n| n.send(&chat, "it's Ann, from the conference", None).expect("send"));
    a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("introduced and synced");
    // B now has A as a contact (authenticated by A's device key and the token of B's invite).
    let contacts = b.read_node(|n| n.store.contacts().expect("contacts"));
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].0, user(&a));
    // Anyone holding B's invite could have done this: A is new to B until B accepts it.
    assert!(b.read_node(|n| n.store.contact_state(&user(&a)).expect("state")).introduced);
    assert!(!a.read_node(|n| n.store.contact_state(&user(&b)).expect("state")).introduced, "A added B itself");
    b.with_node(|n| n.accept_contact(&user(&a)).expect("accept"));
    assert!(!b.read_node(|n| n.store.contact_state(&user(&a)).expect("state")).introduced);
    let back = chat_with(&b, &a);
    assert_eq!(texts(&b, &back), vec![Some("it's Ann, from the conference".to_owned())]);
    // And B can answer: A's devices are allowed now.
    b.with_node(|n| n.send(&back, "hi Ann", None).expect("send"));
    b.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("sync back");
    assert_eq!(texts(&a, &chat).len(), 2);
}

/// An invite introduces as many people as it allows (one by default), and none once revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_are_single_use_by_default_counted_and_revocable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = host(dir.path(), "ben");
    let holders: Vec<_> = ["ann", "cat", "dan", "eve", "fay"].iter().map(|n| host(dir.path(), n)).collect();
    let introduce = |inv: &libra_engine::messenger::Invite, i: usize| {
        holders[i].with_node(|n| n.add_contact(inv, None).expect("add"));
        holders[i].connect(b.local_addr().expect("addr"), Some(b.device()), false)
    };
    let once = b.with_node(|n| n.invite(None, 1).expect("invite"));
    introduce(&once, 0).await.expect("the first holder is introduced");
    let second = introduce(&once, 1).await;
    assert!(second.is_err(), "a used single-use invite let a second person in: {second:?}");
    let twice = b.with_node(|n| n.invite(None, 2).expect("invite"));
    introduce(&twice, 1).await.expect("first use of two");
    introduce(&twice, 2).await.expect("second use of two");
    assert!(introduce(&twice, 3).await.is_err(), "a third use of a two-use invite");
    // Revoked before anyone used it.
    let revoked = b.with_node(|n| n.invite(None, 5).expect("invite"));
    let id = libra_engine::store::invite_id(&revoked.token.expect("token").0);
    let open = b.read_node(|n| n.store.open_invites(libra_engine::clock::wall_ms()).expect("open"));
    assert_eq!(open.iter().map(|(i, r)| (i.clone(), r.uses_left)).collect::<Vec<_>>(), vec![(id.clone(), 5)]);
    assert_eq!(
        b.with_node(|n| n.store.revoke_invites(Some(&id[..4]), libra_engine::clock::wall_ms()).expect("revoke")),
        vec![id]
    );
    assert!(introduce(&revoked, 4).await.is_err(), "a revoked invite let someone in");
    let known: Vec<_> = b.read_node(|n| n.store.contacts().expect("contacts")).into_iter().map(|(u, _)| u).collect();
    assert_eq!(known, {
        let mut v: Vec<_> = [0, 1, 2].iter().map(|&i| user(&holders[i])).collect();
        v.sort();
        v
    });
    assert!(b.with_node(|n| n.invite(None, 0)).is_err(), "an invite with no uses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_without_a_valid_token_is_refused_and_forgotten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (b, eve) = (host(dir.path(), "ben"), host(dir.path(), "eve"));
    // B has an open invite (so strangers may complete the handshake), but Eve's is forged.
    let mut ib = b.with_node(|n| n.invite(None, 1).expect("invite"));
    ib.token = Some(libra_engine::codec::Bytes([7; 16]));
    eve.with_node(|n| n.add_contact(&ib, None).expect("add"));
    let r = eve.connect(b.local_addr().expect("addr"), Some(b.device()), false).await;
    // Refused at the door: its knock proves no open invite, so the connection is closed with
    // code 2 before any session starts.
    let closed = match &r {
        Err(libra_engine::net::NetError::Connection(quinn::ConnectionError::ApplicationClosed(c))) => {
            Some((u64::from(c.error_code), c.reason.to_vec()))
        }
        _ => None,
    };
    assert_eq!(closed, Some((2, b"refused".to_vec())), "{r:?}");
    assert!(b.read_node(|n| n.store.contacts().expect("contacts")).is_empty());
    assert!(b.read_node(|n| n.store.peer(&eve.device()).expect("peer")).is_none(), "no record of the stranger");
    assert_eq!(b.read_node(|n| n.store.heads().count()), 2, "nothing of Eve's stored");
}

#[test]
fn oversized_messages_are_refused_with_the_limit() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
        befriend(&a, &b);
        let chat = chat_with(&a, &b);
        let err = a.with_node(|n| n.send(&chat, &"x".repeat(40_000), None).expect_err("too long"));
        assert!(err.to_string().contains("limit of 32768 bytes"), "{err}");
    });
}

#[test]
fn undecryptable_messages_are_shown_not_dropped() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
        befriend(&a, &b);
        // A seals garbage (not a body) for B: B can open the envelope but not parse it.
        let ub = user(&b);
        let bad = a.with_node(|n| {
            let recipients: Vec<[u8; 32]> =
                n.device_certs(&ub).expect("certs").iter().map(|c| c.body.agreement.0).collect();
            let author = n.device_id();
            let s = libra_engine::messaging::seal(
                b"\xff not a body",
                &aad(author.as_bytes()),
                &recipients,
                &libra_engine::messaging::SealRandom::fresh(),
            )
            .expect("seal");
            n.store
                .append(&n.secrets.device.signing, vec![(libra_engine::payload::KIND_SEALED, s.encode())], 1)
                .expect("append")
        });
        a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("sync");
        let back = chat_with(&b, &a);
        let msgs = b.read_node(|n| n.store.messages(&back.chat, 10).expect("m"));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].undecryptable && msgs[0].id == bad[0].id);
        // And the log is kept: it verifies.
        assert!(b.read_node(|n| n.store.verify().expect("verify")).is_empty());
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The chats rows, and the chat list's unread counts, are the same whatever order the same
    /// entries arrive in (a read acknowledgement may arrive before the message it reads).
    #[test]
    fn chats_projection_is_independent_of_arrival_order(order in Just((0..12usize).collect::<Vec<_>>()).prop_shuffle(), split in 1usize..5) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = Node::init(&dir.path().join("a"), "ann").expect("a");
        let mut b = Node::init(&dir.path().join("b"), "ben").expect("b");
        let ia = a.invite(None, 1).expect("i");
        let ib = b.invite(None, 1).expect("i");
        a.add_contact(&ib, None).expect("add");
        b.add_contact(&ia, None).expect("add");
        let back = b.chat(&ia.user().to_string()).expect("chat");
        b.send(&back, "three", None).expect("send");
        // A's messages are newer than "three" by the clock, not only by position in the test.
        std::thread::sleep(std::time::Duration::from_millis(3));
        let chat = a.chat(&ib.user().to_string()).expect("chat");
        let m1 = a.send(&chat, "one", None).expect("send");
        let m2 = a.send(&chat, "two", Some(m1.id)).expect("send");
        a.edit(&chat, m1.id, "one!").expect("edit");
        a.delete(&chat, m2.id).expect("delete");
        b.store.ingest(logs_of(&a), 0).expect("ingest");
        // B reads "one" and "two", which are newer than its own "three"; then A writes two more.
        prop_assert_eq!(b.mark_read(&back, true).expect("read"), 2);
        a.send(&chat, "four", None).expect("send");
        a.send(&chat, "five", None).expect("send");
        b.store.ingest(logs_of(&a), 0).expect("ingest");
        prop_assert_eq!(unread(&b.store), vec![2]);
        // Everything B holds, which is everything both wrote.
        let all = logs_of(&b);
        // Ingest the same entries into fresh stores read with B's keys: once in natural order,
        // once as shuffled logs in small batches. Rows must match, and match a rebuild.
        let reader =
            || libra_engine::messaging::Reader::new(b.secrets.agreements(), b.user_id().expect("u"), b.device_id());
        let d1 = tempfile::tempdir().expect("t");
        let mut s1 = libra_engine::Store::open(d1.path()).expect("store");
        s1.set_reader(reader()).expect("reader");
        s1.ingest(all.clone(), 0).expect("ingest");
        let reference = s1.chat_rows().expect("rows");
        prop_assert!(reference.keys().filter(|k| k[0] == b'm').count() >= 3, "messages are in the projection");
        prop_assert_eq!(unread(&s1), vec![2]);
        let mut by_author = std::collections::BTreeMap::new();
        for e in &all { by_author.entry(e.header().author.0).or_insert_with(Vec::new).push(e.clone()); }
        let logs: Vec<Vec<libra_engine::log::Entry>> = by_author.into_values().collect();
        let d2 = tempfile::tempdir().expect("t");
        let mut s2 = libra_engine::Store::open(d2.path()).expect("store");
        s2.set_reader(reader()).expect("reader");
        let mut idx: Vec<usize> = order.iter().copied().filter(|i| *i < logs.len()).collect();
        idx.extend(logs.len().min(12)..logs.len());
        for i in idx { for chunk in logs[i].chunks(split) { s2.ingest(chunk.to_vec(), 0).expect("ingest"); } }
        prop_assert_eq!(s2.chat_rows().expect("rows"), reference.clone());
        prop_assert_eq!(s2.chat_rows_rebuilt().expect("rebuilt"), reference);
        prop_assert_eq!(unread(&s2), vec![2]);
        // The marks made from the rows alone (a store from before them) count the same.
        s2.rebuild_read_marks().expect("rebuild");
        prop_assert_eq!(unread(&s2), vec![2]);
    }
}

/// Read receipts are opt-in: without them the reader's own devices learn that the chat was read
/// (its unread count drops) and the sender never sees "read"; with them, it does.
#[test]
fn without_read_receipts_the_sender_never_sees_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut a, mut b) = ann_and_ben(dir.path());
    let chat = a.chat("ben").expect("chat");
    let back = b.chat("ann").expect("chat");
    let first = a.send(&chat, "one", None).expect("send");
    b.store.ingest(logs_of(&a), 0).expect("ingest");
    assert_eq!(unread(&b.store), vec![1]);
    assert_eq!(b.acknowledge().expect("ack"), 1);
    assert_eq!(b.mark_read(&back, false).expect("read"), 1);
    assert_eq!(unread(&b.store), vec![0], "read on B's own devices");
    a.store.ingest(logs_of(&b), 0).expect("ingest");
    let state = |n: &Node, id| {
        n.store.messages(&chat.chat, 10).expect("m").iter().find(|m| m.id == id).and_then(|m| m.delivery)
    };
    assert_eq!(state(&a, first.id), Some(Delivery::Delivered), "no receipt: delivered, not read");
    let second = a.send(&chat, "two", None).expect("send");
    b.store.ingest(logs_of(&a), 0).expect("ingest");
    assert_eq!(unread(&b.store), vec![1]);
    assert_eq!(b.mark_read(&back, true).expect("read"), 1);
    a.store.ingest(logs_of(&b), 0).expect("ingest");
    assert_eq!(state(&a, second.id), Some(Delivery::Read), "with receipts: read");
    assert_eq!(state(&a, first.id), Some(Delivery::Delivered), "the first was read without one");
}

/// A member who leaves is out of the group on every member's side; a group never has more than
/// 64 members, at creation or by additions.
#[test]
fn a_member_who_leaves_is_out_and_groups_stop_at_64_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut a, mut b) = ann_and_ben(dir.path());
    let (ua, ub) = (a.user_id().expect("u"), b.user_id().expect("u"));
    let group = a.group_create("trip", &[ub]).expect("group");
    b.store.ingest(logs_of(&a), 0).expect("ingest");
    let members = |n: &Node| n.store.group(&group.chat).expect("group").map(|(_, m)| m);
    let mut both = vec![ua, ub];
    both.sort();
    assert_eq!(members(&b), Some(both));
    let at_b = b.chat("trip").expect("chat");
    b.group_leave(&at_b).expect("leave");
    a.store.ingest(logs_of(&b), 0).expect("ingest");
    assert_eq!(members(&a), Some(vec![ua]), "Ben left");
    assert_eq!(members(&b), Some(vec![ua]));

    let strangers: Vec<UserId> = (0..65u8).map(|i| UserId(libra_engine::codec::Bytes([i; 32]))).collect();
    let too_many = |r: Result<_, libra_engine::messenger::MessengerError>| {
        matches!(r, Err(libra_engine::messenger::MessengerError::TooManyMembers { size: 65.., limit: 64 }))
    };
    assert!(too_many(a.group_create("big", &strangers).map(|_| ())));
    let group = a.group_create("small", &[ub]).expect("group");
    assert!(too_many(a.group_add(&group, &strangers[..64])), "64 more and the two of us");
    assert_eq!(a.store.group(&group.chat).expect("group").map(|(_, m)| m.len()), Some(2), "nothing added");
}

#[test]
fn unacknowledged_messages_survive_a_restart_and_are_acked_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut a, mut b) = ann_and_ben(dir.path());
    let chat = a.chat(&b.user_id().expect("user").to_string()).expect("chat");
    a.send(&chat, "one", None).expect("send");
    a.send(&chat, "two", None).expect("send");
    let mut all = Vec::new();
    for (author, _) in a.store.heads().collect::<Vec<_>>() {
        all.extend(a.store.read_log(&author, 1, usize::MAX).expect("read"));
    }
    b.store.ingest(all, 0).expect("ingest");
    // A crash before acknowledging: the marks are on disk.
    drop(b);
    let mut b = Node::open(&dir.path().join("b")).expect("reopen");
    assert_eq!(b.store.unacknowledged().expect("pending").len(), 2);
    assert_eq!(b.acknowledge_all().expect("ack"), 2);
    assert!(b.store.unacknowledged().expect("pending").is_empty());
    assert_eq!(b.acknowledge_all().expect("ack"), 0, "acked once");
    assert!(b.store.verify().expect("verify").is_empty());
}

/// Per-peer interest: a node offers a peer only its own logs, the peer's, and those of people
/// who chose the peer (a grant they gave the carrier). Contacts do not learn each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_forwards_only_between_people_who_chose_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (host(dir.path(), "ann"), host(dir.path(), "ben"), host(dir.path(), "cat"));
    befriend(&a, &b);
    befriend(&a, &c);
    let (ub, uc) = (user(&b), user(&c));
    let holds = |h: &Host, u: &UserId| h.read_node(|n| n.store.head(u.as_bytes()).is_some());
    // Cat's logs reach Ann; Ben, Ann's other contact, is not offered them.
    c.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("c-a");
    assert!(holds(&a, &uc));
    let out = b.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("b-a");
    assert!(out.synced);
    assert!(!holds(&b, &uc), "Ben received the log of Ann's other contact");
    assert!(holds(&b, &user(&a)), "Ben has Ann's log");
    // Once Ben and Cat choose each other (and Cat tells the carrier), Ann forwards between them.
    befriend(&b, &c);
    c.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("c-a again");
    b.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("b-a again");
    assert!(holds(&b, &uc), "Cat's log was not forwarded to Ben after Cat granted it");
    // And back: Ben's grant reached Ann in that session, so Cat now gets Ben's log from her.
    c.connect(a.local_addr().expect("addr"), Some(a.device()), false).await.expect("c-a third");
    assert!(holds(&c, &ub), "Ben's log was not forwarded to Cat");
}

/// A Contact note sealed to us by someone else — even a contact — adds nobody: only our own
/// devices add contacts for us (spec/messaging.md, section 9.2).
#[test]
fn a_contact_note_from_someone_else_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ann = Node::init(&dir.path().join("ann"), "ann").expect("init");
    let mut mal = Node::init(&dir.path().join("mal"), "mal").expect("init");
    let stranger = Node::init(&dir.path().join("eve"), "eve").expect("init");
    let (ia, im) = (ann.invite(None, 1).expect("invite"), mal.invite(None, 1).expect("invite"));
    ann.add_contact(&im, None).expect("add");
    mal.add_contact(&ia, None).expect("add");
    let eve_card = stranger.own_card().expect("card");
    // Mal seals a Contact note naming Eve to Ann (and to itself).
    mal.say(&Body::Contact(eve_card), &[ia.user()]).expect("say");
    let mut logs = Vec::new();
    for (author, _) in mal.store.heads().collect::<Vec<_>>() {
        logs.extend(mal.store.read_log(&author, 1, 1000).expect("log"));
    }
    let report = ann.store.ingest(logs, libra_engine::clock::wall_ms()).expect("ingest");
    assert!(report.accepted > 0, "Mal's log arrived: {report:?}");
    let contacts: Vec<UserId> = ann.store.contacts().expect("contacts").into_iter().map(|(u, _)| u).collect();
    assert!(contacts.contains(&im.user()), "Mal is a contact");
    assert!(!contacts.contains(&stranger.user_id().expect("eve")), "a contact note from Mal must not add Eve");
    let eve_device = *stranger.device_id().as_bytes();
    assert!(!ann.store.allowed_peers().expect("allowed").contains(&eve_device), "nor allow her device");
    assert!(!ann.accept_set().expect("accept").contains(&eve_device), "nor want her log");
}

/// A group's name is shown on every member's screen: it follows the rules of any name (not
/// empty, at most 64 bytes, no control or direction characters), at creation as at a rename.
#[test]
fn a_group_name_follows_the_name_rules_at_creation() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut n = libra_engine::node::Node::init(&dir.path().join("a"), "Ann").expect("init");
    for bad in ["", "   ", &"x".repeat(65), "trip\u{202e}gnp.exe", "a\nb"] {
        let r = n.group_create(bad, &[]);
        assert!(matches!(r, Err(libra_engine::messenger::MessengerError::BadName(64))), "{bad:?}: {r:?}");
    }
    assert!(n.group_create(&"é".repeat(32), &[]).is_ok(), "64 bytes of UTF-8 is the limit, not 64 characters");
}

/// An introduction counts only for a card that certifies the device that connected: the same
/// token with Cat's card from another device uses nothing and adds no one; from Cat's own
/// device it admits her and spends the use.
#[test]
fn an_introduction_must_come_from_a_device_its_card_certifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ben = Node::init(&dir.path().join("ben"), "Ben").expect("init");
    let mut cat = Node::init(&dir.path().join("cat"), "Cat").expect("init");
    let invite = ben.invite(None, 1).expect("invite");
    let token = invite.token.expect("token").0;
    let card = cat.invite(None, 1).expect("Cat's invite").card;
    let uses = |n: &Node| {
        n.store
            .open_invites(libra_engine::clock::wall_ms())
            .expect("open")
            .iter()
            .map(|(_, r)| r.uses_left)
            .sum::<u32>()
    };
    let other_device = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes();
    assert!(!ben.accept_introduction(&token, &card, &other_device).expect("checked"), "another device");
    assert_eq!(uses(&ben), 1, "the use is not spent");
    assert!(ben.store.contacts().expect("contacts").is_empty());
    assert!(ben.accept_introduction(&token, &card, &cat.device_id().0.0).expect("checked"), "Cat's own device");
    assert_eq!(uses(&ben), 0);
    assert_eq!(ben.store.contacts().expect("contacts").len(), 1);
}

/// The recipients of a seal are cached per chat; a contact learned or a device linked since
/// must be sealed to at once.
#[test]
fn a_seal_names_a_contact_learned_after_an_earlier_seal_for_the_same_chat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Node::init(&dir.path().join("a"), "ann").expect("a");
    let mut b = Node::init(&dir.path().join("b"), "ben").expect("b");
    let ben = b.user_id().expect("ben");
    let ben_key = b.secrets.device.agreement_public();
    let own = a.secrets.device.agreement_public();
    let users = [a.user_id().expect("ann"), ben];
    assert_eq!(a.seal_plan(&users).expect("plan").recipients(), &[own][..], "no card for Ben yet");
    let ib = b.invite(None, 1).expect("invite");
    a.add_contact(&ib, None).expect("add");
    let plan = a.seal_plan(&users).expect("plan");
    assert!(plan.recipients().contains(&ben_key), "Ben's device, learned from his card");
    assert!(plan.recipients().contains(&own));
    // Ben rotates his agreement key; once Ann holds his log she seals to the new key only.
    b.rotate_agreement().expect("rotate");
    let new_key = b.secrets.device.agreement_public();
    assert_ne!(new_key, ben_key);
    a.store.ingest(logs_of(&b), libra_engine::clock::wall_ms()).expect("ingest");
    let plan = a.seal_plan(&users).expect("plan");
    assert!(plan.recipients().contains(&new_key) && !plan.recipients().contains(&ben_key), "{:?}", plan.recipients());
}
