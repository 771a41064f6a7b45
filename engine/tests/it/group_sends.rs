//! Sends from many threads share commits (`engine::appends`): each caller still gets its own
//! entry, once durable, in the order it queued; a payload that fails alone fails alone.

use std::collections::BTreeSet;

use libra_engine::engine::Engine;
use libra_engine::log::MAX_PAYLOAD;
use libra_engine::messenger::Sealing;
use libra_engine::node::Node;

/// Ann, with Ben as a contact (no network between them): Ann's node and her chat with Ben.
fn ann_with_ben(dir: &std::path::Path) -> (Node, libra_engine::messenger::ChatTarget) {
    let mut a = Node::init(&dir.join("a"), "ann").expect("a");
    let mut b = Node::init(&dir.join("b"), "ben").expect("b");
    let (ia, ib) = (a.invite(None, 1).expect("i"), b.invite(None, 1).expect("i"));
    a.add_contact(&ib, None).expect("add");
    b.add_contact(&ia, None).expect("add");
    let chat = a.chat(&ib.user().to_string()).expect("chat");
    (a, chat)
}

#[test]
fn concurrent_sends_each_get_their_own_durable_entry_in_queue_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, chat) = ann_with_ben(dir.path());
    let me = *a.device_id().as_bytes();
    let engine = Engine::start(a);
    let first = engine.read(|n| n.store.head(&me).map_or(0, |h| h.seq)).expect("read") + 1;
    let (threads, each) = (16, 25);
    let sent: Vec<Vec<(String, libra_engine::log::Entry)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, chat) = (engine.clone(), chat.clone());
                s.spawn(move || {
                    (0..each)
                        .map(|i| {
                            let text = format!("thread {t} message {i}");
                            let e = engine.send(&chat, &text, None).expect("send");
                            (text, e)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("sender")).collect()
    });
    let total = threads * each;
    // Every send got a distinct entry; together they fill the log's next positions exactly.
    let seqs: BTreeSet<u64> = sent.iter().flatten().map(|(_, e)| e.header().seq).collect();
    assert_eq!(seqs, (first..first + total as u64).collect::<BTreeSet<_>>());
    // One thread's sends are queued one after another, so they are stored in that order.
    for per_thread in &sent {
        assert!(per_thread.windows(2).all(|w| w[0].1.header().seq < w[1].1.header().seq), "in order");
    }
    engine.shutdown();
    drop(engine);
    // After a reopen, each returned entry is the one stored at its position, and the chat shows
    // each text as this device's message.
    let a = Node::open(&dir.path().join("a")).expect("reopen");
    let messages = a.store.messages(&chat.chat, 10 * total).expect("messages");
    for (text, e) in sent.iter().flatten() {
        let stored = a.store.read_log(&me, e.header().seq, 1).expect("read");
        assert_eq!(stored.first().map(|s| s.id), Some(e.id), "{text}");
        let m = messages.iter().find(|m| m.id == e.id).expect("in the chat");
        assert_eq!(m.text.as_deref(), Some(text.as_str()));
        assert!(m.mine);
    }
}

#[test]
fn in_a_shared_commit_a_payload_that_fails_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut a, chat) = ann_with_ben(dir.path());
    let me = *a.device_id().as_bytes();
    let before = a.store.head(&me).map_or(0, |h| h.seq);
    let body = |t: &str| Node::text_body(&chat, t, None).expect("body");
    let seal = |a: &Node, t: &str| a.seal_body(&body(t), &chat.users).expect("seal");
    let too_big = Sealing { payload: vec![0; MAX_PAYLOAD as usize + 1], plaintext: Vec::new(), content_key: [0; 32] };
    let batch = vec![seal(&a, "one"), too_big, seal(&a, "three")];
    let out = a.append_sealed_many(batch).expect("nothing was stored by the failed commit");
    assert_eq!(out.len(), 3);
    let err = out[1].as_ref().expect_err("oversize");
    assert!(err.to_string().contains("exceeds"), "{err}");
    let (one, three) = (out[0].as_ref().expect("one"), out[2].as_ref().expect("three"));
    assert_eq!((one.header().seq, three.header().seq), (before + 1, before + 2));
    let texts: Vec<Option<String>> =
        a.store.messages(&chat.chat, 10).expect("messages").into_iter().map(|m| m.text).collect();
    assert_eq!(texts, vec![Some("one".to_owned()), Some("three".to_owned())]);
    // All good: one commit, consecutive positions, each text projected from its noted plaintext.
    let out = a.append_sealed_many(vec![seal(&a, "four"), seal(&a, "five")]).expect("append");
    let seqs: Vec<u64> = out.iter().map(|r| r.as_ref().expect("ok").header().seq).collect();
    assert_eq!(seqs, vec![before + 3, before + 4]);
    assert_eq!(a.store.messages(&chat.chat, 10).expect("messages").len(), 4);
}
