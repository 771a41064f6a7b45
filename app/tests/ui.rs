//! The real app driven by egui_kittest: onboarding, sending with Enter to a contact's engine,
//! a message arriving with no input, and delivery state — no mocks, real stores and QUIC.

use std::sync::Arc;
use std::time::Duration;

use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use libra_app::LibraApp;
use libra_engine::engine::Engine;
use libra_engine::net::{Host, HostConfig};
use libra_engine::node::Node;
use libra_engine::store::Delivery;

fn harness(dir: std::path::PathBuf) -> Harness<'static, LibraApp> {
    Harness::builder()
        .with_size(egui::vec2(1000.0, 680.0))
        .with_accessibility_check(false)
        .with_max_steps(10_000)
        .build_eframe(move |_cc| LibraApp::new(dir, Some("127.0.0.1:0".parse().expect("addr"))))
}

/// Ann's app with contacts that never go online: `(data dir label, name)` each; returns the
/// harness (engine up), the engine, and each contact's user id.
fn ann_with(
    dir: &std::path::Path,
    others: &[(&str, &str)],
) -> (Harness<'static, LibraApp>, libra_engine::engine::Engine, Vec<libra_engine::identity::UserId>) {
    let data = dir.join("me");
    drop(Node::init(&data, "Ann").expect("init"));
    let invites: Vec<_> = others
        .iter()
        .map(|(label, name)| Node::init(&dir.join(label), name).expect("init").invite(None, 1).expect("invite"))
        .collect();
    let users = invites.iter().map(|i| i.user()).collect();
    let mut h = harness(data);
    step_until(&mut h, "the engine", |h| h.state().engine().is_some() && !h.state().snap.me.name.is_empty());
    let app = h.state().engine().expect("engine").core().clone();
    app.write(move |n| {
        for i in &invites {
            n.add_contact(i, None).expect("add");
        }
    })
    .expect("write");
    (h, app, users)
}

/// Steps the UI until `cond` holds (engine events arrive from other threads in real time).
fn step_until(
    h: &mut Harness<'static, LibraApp>,
    what: &str,
    mut cond: impl FnMut(&mut Harness<'static, LibraApp>) -> bool,
) {
    for _ in 0..400 {
        h.step();
        if cond(h) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// Replaces the whole text of the single-line field that holds `old` with `new`.
fn replace_text(h: &mut Harness<'static, LibraApp>, old: &str, new: &str) {
    let field = |h: &Harness<'static, LibraApp>| {
        h.get_all_by_role(Role::TextInput).find(|n| n.value().as_deref() == Some(old)).map(|n| n.focus()).is_some()
    };
    assert!(field(h), "no field holds {old:?}");
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_all_by_role(Role::TextInput).find(|n| n.value().as_deref() == Some(old)).expect("the field").type_text(new);
    h.step();
}

/// Whether some widget shows exactly this text (a message can be in the thread and the list).
fn shows(h: &Harness<'static, LibraApp>, text: &str) -> bool {
    h.query_all_by_label(text).next().is_some()
}

#[test]
fn onboarding_creates_an_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("me");
    let mut h = harness(data.clone());
    h.step();
    // The first field is the name; the second takes a link code.
    let name = h.get_all_by_role(Role::TextInput).next().expect("the name field");
    name.focus();
    name.type_text("Tess");
    h.step();
    h.step();
    h.get_by_label("Create identity").click();
    step_until(&mut h, "the identity view", |h| h.query_by_label("Copy invite").is_some());
    assert!(libra_engine::keyfile::exists(&data));
    assert_eq!(h.state().snap.me.name, "Tess");
    assert!(h.state().snap.me.user_id.starts_with("lu"));
}

/// Ann's app with its network up, and Ben (his own node), contacts of each other.
fn ann_and_ben(dir: &std::path::Path) -> (Harness<'static, LibraApp>, Engine, Ben) {
    let data = dir.join("me");
    drop(Node::init(&data, "Ann").expect("init"));
    let ben = ben(dir);
    let mut h = harness(data);
    step_until(&mut h, "the network", |h| h.state().engine().and_then(|e| e.listening()).is_some());
    let app = h.state().engine().expect("engine").core().clone();
    befriend(&app, ben.host.engine());
    (h, app, ben)
}

/// Each engine adds the other's invite.
fn befriend(a: &Engine, b: &Engine) {
    let ia = a.write(|n| n.invite(None, 1).expect("invite")).expect("write");
    let ib = b.write(|n| n.invite(None, 1).expect("invite")).expect("write");
    a.write(move |n| n.add_contact(&ib, None).expect("add")).expect("write");
    b.write(move |n| n.add_contact(&ia, None).expect("add")).expect("write");
}

/// A second node in the same test: Ben, on his own runtime, live-connected to the app.
struct Ben {
    rt: tokio::runtime::Runtime,
    host: Arc<Host>,
}

fn ben(dir: &std::path::Path) -> Ben {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let node = Node::init(&dir.join("ben"), "Ben").expect("init");
    let host = rt.block_on(async {
        Arc::new(Host::new(Engine::start(node), HostConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("host"))
    });
    let server = host.clone();
    rt.spawn(async move { server.serve().await });
    {
        let _in_runtime = rt.enter();
        host.run_fetcher();
    }
    Ben { rt, host }
}

#[test]
fn chatting_with_a_contact_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("me");
    drop(Node::init(&data, "Ann").expect("init"));
    let ben = ben(dir.path());
    let mut h = harness(data);
    step_until(&mut h, "the engine", |h| h.state().engine().is_some() && !h.state().snap.me.name.is_empty());

    // Make Ann and Ben contacts, then keep them connected.
    step_until(&mut h, "the network", |h| h.state().engine().and_then(|e| e.listening()).is_some());
    let app = h.state().engine().expect("engine").core().clone();
    let bc = ben.host.engine().clone();
    befriend(&app, &bc);
    let addr = h.state().engine().and_then(|e| e.listening()).expect("listening");
    let (b, app_device) = (ben.host.clone(), app.device());
    ben.rt.spawn(async move {
        let _ = b.connect(addr, Some(app_device), true).await;
    });

    // Open the chat from the contact list, type, press Enter.
    step_until(&mut h, "Ben in the contact list", |h| h.query_by_label("Ben").is_some());
    h.get_by_label("Ben").click();
    step_until(&mut h, "the composer", |h| h.query_by_label("Send").is_some());
    // The composer is the multi-line input (the single-line one is the search field).
    let composer = h.get_by_role(Role::MultilineTextInput);
    composer.focus();
    composer.type_text("Hello from the app");
    h.step();
    h.key_press(egui::Key::Enter);

    step_until(&mut h, "my message in the thread", |h| {
        shows(h, "Hello from the app")
            && h.state()
                .snap
                .open
                .as_ref()
                .is_some_and(|o| o.messages.iter().any(|m| m.text.as_deref() == Some("Hello from the app")))
    });
    // Enter sent it (no newline was typed): the composer is empty again.
    assert_eq!(h.get_by_role(Role::MultilineTextInput).value().as_deref(), Some(""));
    step_until(&mut h, "Ben's engine to receive it", |_| {
        bc.read(|n| {
            n.store
                .chats()
                .expect("chats")
                .iter()
                .any(|c| c.last.as_ref().and_then(|m| m.text.as_deref()) == Some("Hello from the app"))
        })
        .expect("read")
    });
    // Ben acknowledged on receipt: the app shows "delivered".
    step_until(&mut h, "delivered", |h| {
        h.state()
            .snap
            .open
            .as_ref()
            .is_some_and(|o| o.messages.iter().any(|m| m.mine && m.delivery >= Some(Delivery::Delivered)))
    });

    // The peers view says how Ben is connected (he dialled the app).
    assert!(
        h.state().snap.peers.iter().any(|p| p.online && p.path.as_deref() == Some("inbound")),
        "{:?}",
        h.state().snap.peers
    );
    // Ben answers; it appears with no input at all.
    let chat = bc.read(|n| n.chat("Ann").expect("chat")).expect("read");
    bc.write(move |n| n.send(&chat, "Hi Ann, got it", None).expect("send")).expect("write");
    step_until(&mut h, "Ben's reply to appear", |h| shows(h, "Hi Ann, got it"));
    drop(h);
}

#[test]
fn an_impostor_is_told_apart_and_a_contact_is_verified_by_safety_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("me");
    drop(Node::init(&data, "Ann").expect("init"));
    // Two people who both call themselves Ben.
    let invite_of = |label: &str| {
        let mut n = Node::init(&dir.path().join(label), "Ben").expect("init");
        let inv = n.invite(None, 1).expect("invite");
        (inv.user(), inv)
    };
    let (ben, ben_inv) = invite_of("ben");
    let (fake, fake_inv) = invite_of("fake");
    let mut h = harness(data);
    step_until(&mut h, "the engine", |h| h.state().engine().is_some() && !h.state().snap.me.name.is_empty());
    let app = h.state().engine().expect("engine").core().clone();
    app.write(move |n| n.add_contact(&ben_inv, None).expect("add")).expect("write");
    app.write(move |n| n.add_contact(&fake_inv, None).expect("add")).expect("write");

    // Neither shows as plain "Ben": each carries its short id and "unverified".
    let (ben_label, fake_label) =
        (format!("Ben ({}, unverified)", ben.short()), format!("Ben ({}, unverified)", fake.short()));
    step_until(&mut h, "both contacts", |h| shows(h, &ben_label) && shows(h, &fake_label));
    assert!(!shows(&h, "Ben"));

    // Open the real Ben, compare the safety number, confirm it.
    h.get_by_label(&ben_label).click();
    step_until(&mut h, "the chat", |h| h.query_by_label("Safety number…").is_some());
    h.get_by_label("Safety number…").click();
    let number = app.read(move |n| n.safety_number_with(&ben).expect("number")).expect("read");
    let first_row: Vec<&str> = number.split(' ').take(4).collect();
    step_until(&mut h, "the safety number", |h| shows(h, &first_row.join("  ")));
    h.get_by_label("The numbers match: mark verified").click();
    step_until(&mut h, "verified", |h| h.query_by_label("✔ Verified").is_some());
    assert!(app.read(move |n| n.store.contact_state(&ben).expect("state").verified).expect("read"));
    // The impostor is still marked; the verified Ben is not called unverified.
    step_until(&mut h, "the lists", |h| shows(h, &fake_label) && !shows(h, &ben_label));
    assert!(!app.read(move |n| n.store.contact_state(&fake).expect("state").verified).expect("read"));
}

/// A message to a contact nobody can reach says why it waits.
#[test]
fn a_message_waiting_at_one_tick_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, _, _) = ann_with(dir.path(), &[("ben", "Ben")]);
    step_until(&mut h, "Ben in the contact list", |h| h.query_by_label("Ben").is_some());
    h.get_by_label("Ben").click();
    step_until(&mut h, "the composer", |h| h.query_by_label("Send").is_some());
    let composer = h.get_by_role(Role::MultilineTextInput);
    composer.focus();
    composer.type_text("are you there?");
    h.step();
    h.key_press(egui::Key::Enter);
    step_until(&mut h, "the reason it waits", |h| {
        h.query_by_label_contains("Not sent yet: Ben is offline: no address known").is_some()
    });
}

/// A device whose own log ran over a day ahead of its clock says so where messages wait, even
/// with nobody to reach: contacts would hold what it writes.
#[test]
fn a_device_whose_stamps_ran_ahead_says_so_in_the_chat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, app, _) = ann_with(dir.path(), &[("ben", "Ben")]);
    app.write(|n| {
        let signing = n.secrets.device.signing.clone();
        let ahead = libra_engine::clock::wall_ms() + 2 * libra_engine::clock::MAX_AHEAD_MS;
        n.store.append(&signing, vec![(99, b"a fast clock".to_vec())], ahead).expect("append");
    })
    .expect("write");
    step_until(&mut h, "Ben in the contact list", |h| h.query_by_label("Ben").is_some());
    h.get_by_label("Ben").click();
    step_until(&mut h, "the warning", |h| {
        h.query_by_label_contains("This device's messages are stamped 48 h ahead of its clock").is_some()
    });
}

/// Groups and names in the app: create a group from contacts and send to it, give a contact
/// a name of your own, and change your own name.
#[test]
fn a_group_is_created_and_a_contact_renamed_in_the_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, app, users) = ann_with(dir.path(), &[("ben", "Ben"), ("cat", "Cat")]);
    let (ben, cat) = (users[0], users[1]);
    step_until(&mut h, "the contacts", |h| shows(h, "Ben") && shows(h, "Cat"));

    // New group: a name, two people ticked, Create.
    h.get_by_label("New group…").click();
    step_until(&mut h, "the form", |h| h.query_by_label("Create group").is_some());
    // The second single-line field: the first is "Search all chats".
    let name = h.get_all_by_role(Role::TextInput).nth(1).expect("the group name field");
    name.focus();
    name.type_text("Trip");
    h.step();
    h.get_by_role_and_label(Role::CheckBox, "Ben").click();
    h.get_by_role_and_label(Role::CheckBox, "Cat").click();
    h.step();
    h.get_by_label("Create group").click();
    step_until(&mut h, "the group in the list", |h| h.query_by_label("Trip").is_some());
    let members = app
        .read(|n| {
            let t = n.chat("Trip").expect("group");
            n.store.group(&t.chat).expect("read").expect("a group").1
        })
        .expect("read");
    assert_eq!(members.len(), 3, "Ann, Ben and Cat");
    assert!(members.contains(&ben) && members.contains(&cat));
    h.get_by_label("Trip").click();
    step_until(&mut h, "the composer", |h| h.query_by_label("Send").is_some());
    let composer = h.get_by_role(Role::MultilineTextInput);
    composer.focus();
    composer.type_text("who brings the tent?");
    h.step();
    h.key_press(egui::Key::Enter);
    step_until(&mut h, "the message in the group", |h| shows(h, "who brings the tent?"));
    assert!(h.query_by_label("Leave group…").is_some());
    // Take Cat out, then rename the group.
    h.get_by_label("Remove people…").click();
    step_until(&mut h, "the remove form", |h| h.query_by_label("Remove from group").is_some());
    h.get_by_role_and_label(Role::CheckBox, "Cat").click();
    h.step();
    h.get_by_label("Remove from group").click();
    step_until(&mut h, "two members", |h| h.state().snap.open.as_ref().is_some_and(|o| o.members.len() == 2));
    h.get_by_label("Rename group…").click();
    step_until(&mut h, "the rename form", |h| h.query_by_label("Rename").is_some());
    replace_text(&mut h, "Trip", "Trip 2027");
    h.get_by_label("Rename").click();
    step_until(&mut h, "the new group name", |h| h.state().snap.open.as_ref().is_some_and(|o| o.title == "Trip 2027"));

    // Rename Ben to a name of our own.
    h.get_by_label("Ben").click();
    step_until(&mut h, "Ben's chat", |h| h.query_by_label("Rename…").is_some());
    h.get_by_label("Rename…").click();
    step_until(&mut h, "the rename form", |h| h.query_by_label("Save").is_some());
    replace_text(&mut h, "Ben", "Benji");
    h.get_by_label("Save").click();
    step_until(&mut h, "the new name", |h| shows(h, "Benji"));
    assert_eq!(app.read(move |n| n.display_name(&ben)).expect("read"), "Benji");

    // Block Benji: his chat goes; Settings lists him and takes him back.
    h.get_by_label("Block…").click();
    step_until(&mut h, "the block question", |h| h.query_by_label("Block").is_some());
    h.get_by_label("Block").click();
    step_until(&mut h, "blocked", |h| h.state().snap.blocked.len() == 1 && !shows(h, "Benji"));
    assert!(app.read(move |n| n.store.contact_state(&ben).expect("state").blocked).expect("read"));
    h.get_by_label("Settings").click();
    step_until(&mut h, "the blocked list", |h| h.query_by_label("Unblock").is_some());
    h.get_by_label("Unblock").click();
    step_until(&mut h, "unblocked", |h| h.state().snap.blocked.is_empty());

    // And our own name.
    app.write(|n| n.set_name("Annie").expect("rename")).expect("write");
    assert_eq!(app.read(|n| n.name()).expect("read").as_deref(), Some("Annie"));
    assert!(app.write(|n| n.set_name("\u{202e}evil")).expect("write").is_err(), "bidi controls are refused");
}

/// Searching all chats finds a message in any of them, and a hit opens its chat there.
#[test]
fn a_search_over_all_chats_opens_the_chat_at_the_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, app, _) = ann_with(dir.path(), &[("ben", "Ben"), ("cat", "Cat")]);
    app.write(move |n| {
        for (who, text) in [("Ben", "the blue tent is mine"), ("Cat", "bring the red Kayak"), ("Ben", "see you at 8")] {
            let t = n.chat(who).expect("chat");
            n.send(&t, text, None).expect("send");
        }
    })
    .expect("write");
    step_until(&mut h, "the chats", |h| h.state().snap.chats.len() == 2);
    let search = h.get_all_by_role(Role::TextInput).next().expect("the search field");
    search.focus();
    search.type_text("kayak");
    step_until(&mut h, "one hit", |h| h.state().snap.hits.len() == 1);
    assert_eq!(h.state().snap.hits[0].title, "Cat");
    h.get_by_label_contains("bring the red Kayak").click();
    step_until(&mut h, "Cat's chat at the message", |h| {
        h.state().snap.open.as_ref().is_some_and(|o| o.title == "Cat") && shows(h, "bring the red Kayak")
    });
    // Nothing matches: said so.
    let search = h.get_all_by_role(Role::TextInput).next().expect("the search field");
    search.focus();
    search.type_text("zzz");
    step_until(&mut h, "no hits", |h| h.query_by_label("No messages found.").is_some());
}

/// The status tells the truth: "connecting" turns into "connected" once the session is up,
/// and a bad invite is refused where it was typed.
#[test]
fn connecting_says_when_it_is_connected_and_errors_show_where_they_happen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, _, ben) = ann_and_ben(dir.path());
    let addr = ben.host.local_addr().expect("addr").to_string();
    h.state().engine().expect("engine").connect(addr.clone(), Some(ben.host.device()));
    step_until(&mut h, "connected", |h| h.query_by_label(&format!("connected to {addr}")).is_some());

    h.get_by_label("Connect").click();
    step_until(&mut h, "the connect view", |h| h.query_by_label("Add contact").is_some());
    let field = h.get_by_role(Role::MultilineTextInput);
    field.focus();
    field.type_text("libra:not-an-invite");
    h.step();
    h.get_by_label("Add contact").click();
    step_until(&mut h, "the error under the field", |h| h.query_by_label_contains("not a Libra invite").is_some());
}

/// A name with an invisible character is shown with the character marked, never as a
/// lookalike of another name.
#[test]
fn invisible_characters_in_names_are_marked() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Names chosen by their owners are checked only for length: this one hides a zero-width space.
    let (mut h, _, _) = ann_with(dir.path(), &[("sneaky", "Bo\u{200b}b")]);
    step_until(&mut h, "the marked name", |h| shows(h, "Bo\\u{200b}b"));
    assert!(!shows(&h, "Bo\u{200b}b"));
}

/// A bundle carried by hand: Ben's node writes one for Ann; dropped on the app's window, it is
/// imported and his message shows.
#[test]
fn a_bundle_dropped_on_the_window_is_imported() {
    use libra_engine::control::{BundleCommand, Cx, Request, execute};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("me");
    let mut ann = Node::init(&data, "Ann").expect("init");
    let mut ben = Node::init(&dir.path().join("ben"), "Ben").expect("init");
    let (ia, ib) = (ann.invite(None, 1).expect("invite"), ben.invite(None, 1).expect("invite"));
    ann.add_contact(&ib, None).expect("add");
    ben.add_contact(&ia, None).expect("add");
    drop(ann);
    let chat = ben.chat("Ann").expect("chat");
    ben.send(&chat, "by stick, as promised", None).expect("send");
    let ben = Engine::start(ben);
    let file = dir.path().join("for-ann.libra");
    let export = Request::Bundle(BundleCommand::Export {
        file: file.display().to_string(),
        for_contacts: vec!["Ann".into()],
        all: false,
        full: false,
        with_files: false,
    });
    execute(&Cx::local(ben.clone()), &export).expect("export");

    let mut h = harness(data);
    step_until(&mut h, "the engine", |h| h.state().engine().is_some() && !h.state().snap.me.name.is_empty());
    h.get_by_label("Connect").click();
    step_until(&mut h, "the connect view", |h| h.query_by_label("Import").is_some());
    // Dropped on the window, a .libra file is imported.
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(file.clone())));
    h.step();
    step_until(&mut h, "Ben's message", |h| h.state().snap.chats.iter().any(|c| c.preview == "by stick, as promised"));
    ben.shutdown();
}

#[test]
fn files_arrive_with_a_thumbnail_and_a_dropped_file_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, app, ben) = ann_and_ben(dir.path());
    let bc = ben.host.engine().clone();
    let addr = h.state().engine().and_then(|e| e.listening()).expect("listening");
    let (b, app_device) = (ben.host.clone(), app.device());
    ben.rt.spawn(async move {
        let _ = b.connect(addr, Some(app_device), true).await;
    });
    // Ben sends a picture; it downloads by itself (small) and shows as a thumbnail.
    let picture = dir.path().join("sunset.png");
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128]))
        .save(&picture)
        .expect("png");
    let chat = bc.read(|n| n.chat("Ann").expect("chat")).expect("read");
    let (_, sent) = bc.send_file(&chat, &picture, "tonight", None).expect("send file");
    // Clicked once the picture's message is in: before, Ben is a contact row that the chat's
    // row replaces when the message lands, and a click aimed at the old row is lost.
    step_until(&mut h, "Ben's chat in the list", |h| {
        h.state().snap.chats.iter().any(|c| c.title == "Ben") && h.query_by_label("Ben").is_some()
    });
    h.get_by_label("Ben").click();
    step_until(&mut h, "the picture, downloaded", |h| {
        h.state().snap.open.as_ref().is_some_and(|o| {
            o.messages.iter().any(|m| m.file.as_ref().is_some_and(|f| f.state == libra_app::model::FileState::Complete))
        }) && h.query_by_label("Save").is_some()
    });
    assert!(shows(&h, "sunset.png") && shows(&h, "tonight"));
    // The thumbnail (an image that opens the picture) beside the Open button.
    step_until(&mut h, "the thumbnail", |h| {
        h.query_all_by_role(Role::Image).count() > 0 && h.query_all_by_label("Open").count() >= 2
    });
    assert_eq!(app.blobs().state(&sent.root.0), libra_engine::store::blobs::BlobState::Complete);

    // A file dropped on the open chat is sent to Ben, and reaches him.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "bring the tent\n".repeat(5000)).expect("write");
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(notes.clone())));
    h.step();
    step_until(&mut h, "the file at Ben", |_| {
        bc.read(|n| n.store.files().expect("files")).expect("read").iter().any(|f| {
            f.row.file.name == "notes.txt"
                && bc.blobs().state(&f.row.file.root.0) == libra_engine::store::blobs::BlobState::Complete
        })
    });
    drop(h);
}

#[test]
fn which_files_download_by_themselves_is_set_in_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, app, _) = ann_with(dir.path(), &[]);
    h.get_by_label("Settings").click();
    step_until(&mut h, "the download setting", |h| h.query_by_label("Download files by themselves:").is_some());
    h.get_by_role(Role::ComboBox).click();
    step_until(&mut h, "the choices", |h| h.query_by_label("only when I ask").is_some());
    h.get_by_label("only when I ask").click();
    step_until(&mut h, "the store to say so", |_| {
        app.read(|n| n.store.auto_download().expect("read")).expect("read") == 0
    });
}

/// A file dropped on the window, as the windowing system hands it over.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Ann links a second device from her devices view; the new device's app joins by pasting the
/// code at onboarding; both list two devices, and the new one has Ann's contact.
#[test]
fn a_new_device_links_by_code_from_the_devices_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut a, _, users) = ann_with(dir.path(), &[("zoe", "Zoe")]);
    step_until(&mut a, "the network", |h| h.state().engine().is_some_and(|e| e.host().is_some()));
    a.get_by_label("Identity").click();
    step_until(&mut a, "the devices view", |h| h.query_by_label("Link a new device").is_some());
    a.get_by_label("Link a new device").click();
    step_until(&mut a, "a link code", |h| h.state().link_code().is_some());
    let code = a.state().link_code().expect("code");
    assert!(code.starts_with("libra-link:"));

    let mut b = harness(dir.path().join("phone"));
    b.step();
    let field = b.get_all_by_role(Role::TextInput).nth(1).expect("the code field");
    field.focus();
    field.type_text(&code);
    b.step();
    b.get_by_label("Link this device").click();
    step_until(&mut b, "the linked device", |h| {
        h.state().snap.devices.len() == 2 && h.state().snap.contacts.iter().any(|(u, _)| *u == users[0])
    });
    assert!(!b.state().snap.holds_user_key, "a linked device does not hold the user key");
    step_until(&mut a, "two devices at Ann's", |h| h.state().snap.devices.len() == 2);
    assert!(a.query_by_label("this device").is_some());
}

/// A short invite (what `libra invite --qr` draws) pasted in the connect view: the app says it
/// waits for that device; once a session reaches it, the device answers with its card and
/// the contact arrives with its name.
#[test]
fn a_short_invite_waits_for_its_device_then_becomes_a_contact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("me");
    drop(Node::init(&data, "Ann").expect("init"));
    let ben = ben(dir.path());
    let (_, short) = ben.host.engine().write(|n| n.invite_both(None, 1).expect("invite")).expect("write");
    let mut h = harness(data);
    step_until(&mut h, "the network", |h| h.state().engine().and_then(|e| e.listening()).is_some());
    h.get_by_label("Connect").click();
    step_until(&mut h, "the connect view", |h| h.query_by_label("Add contact").is_some());
    let field = h.get_by_role(Role::MultilineTextInput);
    field.focus();
    field.type_text(&short.to_qr_text());
    h.step();
    h.get_by_label("Add contact").click();
    let device = short.device().short();
    step_until(&mut h, "the waiting device", |h| {
        h.query_by_label_contains(&format!("Waiting to reach device {device}")).is_some()
    });
    assert!(h.state().snap.contacts.is_empty());
    let addr = ben.host.local_addr().expect("addr").to_string();
    h.state().engine().expect("engine").connect(addr, Some(ben.host.device()));
    step_until(&mut h, "Ben as a contact", |h| {
        h.state().snap.contacts.iter().any(|(_, name)| name == "Ben") && h.state().snap.awaiting.is_empty()
    });
    assert!(h.query_by_label_contains("Waiting to reach device").is_none());
    drop(ben.rt);
}

/// Clicks "Show earlier messages", which sits above the messages: scrolled to first (the scroll
/// is animated over a few frames), as a user scrolls up.
fn show_earlier(h: &mut Harness<'static, LibraApp>) {
    h.get_by_label("Show earlier messages").scroll_to_me();
    for _ in 0..30 {
        h.step();
    }
    h.get_by_label("Show earlier messages").click();
}

/// A chat opens on its newest messages (few to lay out, so it opens fast); earlier ones come in
/// pages when asked for, down to the first.
#[test]
fn a_long_chat_opens_on_its_newest_messages_and_shows_earlier_ones_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, app, _) = ann_with(dir.path(), &[("ben", "Ben")]);
    app.write(move |n| {
        let t = n.chat("Ben").expect("chat");
        for i in 0..400 {
            n.send(&t, &format!("note {i}"), None).expect("send");
        }
    })
    .expect("write");
    step_until(&mut h, "the chat", |h| h.state().snap.chats.len() == 1);
    h.get_by_label_contains("Ben").click();
    let carried = |h: &Harness<'static, LibraApp>| h.state().snap.open.as_ref().map(|o| (o.messages.len(), o.earlier));
    step_until(&mut h, "the newest page", |h| carried(h) == Some((libra_app::model::FIRST_PAGE, true)));
    assert!(shows(&h, "note 399"));
    show_earlier(&mut h);
    let more = libra_app::model::FIRST_PAGE + libra_app::model::PAGE;
    step_until(&mut h, "a page more", |h| carried(h) == Some((more, true)));
    show_earlier(&mut h);
    step_until(&mut h, "all of them", |h| carried(h) == Some((400, false)));
    assert!(h.query_by_label("Show earlier messages").is_none(), "nothing earlier");
}
