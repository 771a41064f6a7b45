//! The application: onboarding, then a sidebar (navigation and chats) beside the current view.
//! Events from the engine are drained at the start of every frame; the UI never waits on it.

use std::net::SocketAddr;
use std::path::PathBuf;

use eframe::egui::{self, RichText};
use libra_engine::clock;
use libra_engine::engine::NetStatus;
use libra_engine::log::EntryId;
use libra_engine::node::Node;
use libra_engine::short_invite::AnyInvite;

use crate::engine::{Engine, Event};
use crate::model::Snapshot;
use crate::settings::Settings;
use crate::views::chats::{self, ChatAction, ChatsState};
use crate::views::connect::{self, ConnectAction, ConnectState};
use crate::views::devices::DevicesAction;
use crate::views::identity::{self, IdentityAction, IdentityState};
use crate::views::onboarding::{self, Choice, Onboarding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Chats,
    Connect,
    Identity,
    Settings,
}

pub struct LibraApp {
    dir: PathBuf,
    engine: Option<Engine>,
    onboarding: Option<Onboarding>,
    failure: Option<String>,
    pub snap: Snapshot,
    pub tab: Tab,
    chats: ChatsState,
    identity: IdentityState,
    connect: ConnectState,
    settings: Settings,
    status: Option<(String, bool)>,
    /// When the status line last changed: notes go after a few seconds, errors later.
    status_since: Option<(String, std::time::Instant)>,
    notified: Option<EntryId>,
    title: String,
    listen_override: Option<SocketAddr>,
    ctx_set: bool,
    engine_ctx_set: bool,
    /// Linking this new device, under way.
    linking: Option<crate::link::Linking>,
    restoring: Option<crate::restore::Restoring>,
}

impl LibraApp {
    /// The app on `dir`. `listen` overrides the listen address from the settings (tests).
    pub fn new(dir: PathBuf, listen: Option<SocketAddr>) -> LibraApp {
        let settings = Settings::load(&dir);
        let mut app = LibraApp {
            dir: dir.clone(),
            engine: None,
            onboarding: None,
            failure: None,
            snap: Snapshot::default(),
            tab: Tab::Chats,
            chats: ChatsState::default(),
            identity: IdentityState::default(),
            connect: ConnectState::default(),
            settings,
            status: None,
            notified: None,
            status_since: None,
            title: String::new(),
            listen_override: listen,
            ctx_set: false,
            engine_ctx_set: false,
            linking: None,
            restoring: None,
        };
        if libra_engine::keyfile::exists(&dir) {
            match Node::open(&dir) {
                Ok(node) => app.start(node),
                Err(e) => app.failure = Some(e.to_string()),
            }
        } else {
            app.onboarding = Some(Onboarding::default());
        }
        app
    }

    fn start(&mut self, node: Node) {
        let wanted = self.listen_override.or_else(|| self.settings.listen.parse().ok());
        let fallback: SocketAddr = "0.0.0.0:0".parse().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let listen = wanted.unwrap_or(fallback);
        match Engine::start(node, &self.dir, listen, &self.settings) {
            Ok(e) => {
                self.status = Some(("starting the network…".into(), false));
                self.chats.thumbs.dir = Some(self.dir.clone());
                self.engine = Some(e);
            }
            Err(e) => self.failure = Some(e.to_string()),
        }
    }

    /// Selects the first view: a tab name and/or a chat to open (by contact or group name).
    pub fn show(&mut self, tab: Option<&str>, open: Option<&str>) {
        self.tab = match tab {
            Some("connect") => Tab::Connect,
            Some("identity") => Tab::Identity,
            Some("settings") => Tab::Settings,
            _ => self.tab,
        };
        if self.tab == Tab::Identity
            && let Some(engine) = &self.engine
        {
            engine.act(|n| n.invite(None, 1).map(|i| format!("invite:{}", i.to_text())).map_err(|e| e.to_string()));
        }
        if let (Some(name), Some(engine)) = (open, &self.engine) {
            let target = engine.core().read(|n| n.chat(name).ok()).ok().flatten();
            if let Some(t) = target {
                let key =
                    t.users.first().filter(|_| t.users.len() == 1).map_or_else(|| t.chat.to_hex(), |u| u.to_string());
                self.run_chat_actions(vec![ChatAction::Open { chat: t.chat, key }]);
                if let Some(snap) = self.engine.as_ref().and_then(|e| e.snapshot_now()) {
                    self.snap = snap;
                }
            }
        }
    }

    /// The engine, once running (tests use it to reach the node).
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// The link code the devices view shows, if any.
    pub fn link_code(&self) -> Option<String> {
        self.identity.devices.code.clone()
    }

    pub fn open_chat_key(&self) -> Option<String> {
        self.chats.open.as_ref().map(|(_, k)| k.clone())
    }

    fn drain(&mut self, ctx: &egui::Context) {
        if !self.ctx_set {
            crate::views::widgets::install_fallback_fonts(ctx);
        }
        let Some(engine) = &self.engine else {
            self.ctx_set = true;
            return;
        };
        if !self.ctx_set || !self.engine_ctx_set {
            engine.set_ctx(ctx);
            self.engine_ctx_set = true;
        }
        self.ctx_set = true;
        for ev in engine.poll() {
            match ev {
                Event::Snapshot(s) => {
                    // A snapshot built before the chat now open was chosen keeps the open chat
                    // shown (no blank frame while the next one is built).
                    let wanted = self.chats.open.as_ref().map(|(c, _)| *c);
                    let shown = self.snap.open.take().filter(|o| Some(o.chat) == wanted);
                    self.snap = *s;
                    if self.snap.open.as_ref().map(|o| o.chat) != wanted && shown.is_some() {
                        self.snap.open = shown;
                    }
                }
                Event::Peers(p, nearby) => {
                    self.snap.peers = p;
                    self.snap.nearby = nearby;
                }
                Event::Done(Ok(msg)) => {
                    if let Some(invite) = msg.strip_prefix("invite:") {
                        self.identity.invite = Some(invite.to_owned());
                        self.status = Some(("new invite ready".into(), false));
                    } else if let Some(p) = msg.strip_prefix("phrase:") {
                        self.identity.devices.phrase = Some(p.to_owned());
                    } else if let Some(code) = msg.strip_prefix("link:") {
                        self.identity.devices.code = Some(code.to_owned());
                        self.status = Some(("link code ready: scan it on the new device".into(), false));
                    } else if !msg.is_empty() {
                        self.status = Some((msg, false));
                    }
                }
                Event::Done(Err(e)) => self.status = Some((e, true)),
                Event::Network(NetStatus::Listening(a)) => {
                    self.status = Some((format!("online, listening on port {}", a.port()), false));
                }
                // Local-first: history, writing and the CLI keep working while offline.
                Event::Network(NetStatus::Offline(why)) => self.status = Some((why, true)),
            }
        }
        // Title badge, and a request for attention when a message arrives in the background.
        let title =
            if self.snap.total_unread > 0 { format!("({}) Libra", self.snap.total_unread) } else { "Libra".into() };
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        let newest = self.snap.newest_incoming.as_ref();
        if let Some(n) = newest
            && Some(n.id) != self.notified
        {
            let focused = ctx.input(|i| i.focused);
            let moment = crate::notify::Moment {
                newest,
                seen: self.notified,
                started: self.notified.is_some(),
                focused,
                open_chat: self.chats.open.as_ref().map(|(c, _)| *c),
                enabled: self.settings.notifications,
                show_preview: self.settings.notification_preview,
            };
            if let Some((summary, body)) = crate::notify::decide(&moment) {
                crate::notify::show(summary, body);
                if !focused {
                    ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                        egui::UserAttentionType::Informational,
                    ));
                }
            }
            self.notified = Some(n.id);
        }
    }

    fn run_chat_actions(&mut self, actions: Vec<ChatAction>) {
        let Some(engine) = &self.engine else { return };
        let receipts = self.settings.read_receipts;
        for a in actions {
            match a {
                ChatAction::Open { chat, key } => {
                    self.chats.open = Some((chat, key));
                    self.chats.reply_to = None;
                    self.chats.editing = None;
                    self.chats.search.clear();
                    self.chats.verifying = false;
                    self.tab = Tab::Chats;
                    engine.open_chat(Some(chat), 0);
                }
                ChatAction::Earlier => engine.show_earlier(),
                ChatAction::Send { key, text, reply_to } => engine.send_text(key, text, reply_to),
                ChatAction::Edit { key, id, text } => engine.act(move |n| {
                    let t = n.chat(&key).map_err(|e| e.to_string())?;
                    n.edit(&t, id, &text).map(|_| "edited".into()).map_err(|e| e.to_string())
                }),
                ChatAction::Delete { key, id } => engine.act(move |n| {
                    let t = n.chat(&key).map_err(|e| e.to_string())?;
                    n.delete(&t, id).map(|_| "deleted".into()).map_err(|e| e.to_string())
                }),
                ChatAction::SendFile { key, path } => engine.send_file(key, path),
                ChatAction::WantFile(file) => engine.want_file(file),
                ChatAction::SaveFile { file, open } => engine.save_file(file, open),
                ChatAction::Verify { user, verified } => engine.act(move |n| {
                    n.set_verified(&user, verified).map_err(|e| e.to_string())?;
                    Ok(if verified {
                        format!("{} verified", user.short())
                    } else {
                        format!("{} not verified", user.short())
                    })
                }),
                ChatAction::Accept { user } => engine.act(move |n| {
                    n.accept_contact(&user).map(|()| format!("accepted {}", user.short())).map_err(|e| e.to_string())
                }),
                ChatAction::SearchAll(needle) => engine.search(&needle),
                ChatAction::OpenAt { chat, key, id, needle } => {
                    self.chats.open = Some((chat, key));
                    self.chats.reply_to = None;
                    self.chats.editing = None;
                    self.chats.verifying = false;
                    self.chats.search = needle;
                    self.chats.jump_to = Some(id);
                    self.tab = Tab::Chats;
                    // A hit may be further back than the first page.
                    engine.open_chat(Some(chat), crate::model::PAGE);
                }
                ChatAction::CreateGroup { name, members } => engine.act(move |n| {
                    n.group_create(&name, &members).map(|_| format!("group {name} created")).map_err(|e| e.to_string())
                }),
                ChatAction::AddMembers { key, members } => engine.act(move |n| {
                    let t = n.chat(&key).map_err(|e| e.to_string())?;
                    n.group_add(&t, &members)
                        .map(|()| format!("added {} to {}", members.len(), t.title))
                        .map_err(|e| e.to_string())
                }),
                ChatAction::RemoveMembers { key, members } => engine.act(move |n| {
                    let t = n.chat(&key).map_err(|e| e.to_string())?;
                    n.group_remove(&t, &members)
                        .map(|()| format!("removed {} from {}", members.len(), t.title))
                        .map_err(|e| e.to_string())
                }),
                ChatAction::RenameGroup { key, name } => engine.act(move |n| {
                    let t = n.chat(&key).map_err(|e| e.to_string())?;
                    n.group_rename(&t, &name).map(|()| format!("{} is now {name}", t.title)).map_err(|e| e.to_string())
                }),
                ChatAction::Leave { key } => engine.act(move |n| {
                    let t = n.chat(&key).map_err(|e| e.to_string())?;
                    n.group_leave(&t).map(|()| format!("left {}", t.title)).map_err(|e| e.to_string())
                }),
                ChatAction::Block { user, blocked } => {
                    if blocked {
                        self.chats.open = None;
                        engine.open_chat(None, 0);
                    }
                    let core = engine.core().clone();
                    engine.act(move |n| {
                        let devices = n.set_blocked(&user, blocked).map_err(|e| e.to_string())?;
                        for d in &devices {
                            core.disconnect(d);
                        }
                        Ok(format!("{} {}", if blocked { "blocked" } else { "unblocked" }, user.short()))
                    })
                }
                ChatAction::RenameContact { user, name } => engine.act(move |n| {
                    n.rename_contact(&user, &name)
                        .map(|()| format!("{} is now {name}", user.short()))
                        .map_err(|e| e.to_string())
                }),
                ChatAction::MarkRead { key } => engine.act(move |n| {
                    let t = n.chat(&key).map_err(|e| e.to_string())?;
                    n.mark_read(&t, receipts).map(|_| String::new()).map_err(|e| e.to_string())
                }),
            }
        }
    }

    fn sidebar(&mut self, ui: &mut egui::Ui) {
        let now = clock::wall_ms();
        egui::Panel::left("sidebar").resizable(true).default_size(300.0).min_size(240.0).max_size(380.0).show(
            ui,
            |ui| {
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    ui.label(RichText::new("Libra").size(20.0).strong());
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        ui.label(RichText::new(&self.snap.me.name).weak());
                    });
                });
                ui.add_space(6.0);
                ui.horizontal(|ui| {
                    for (tab, label) in [
                        (Tab::Chats, "Chats"),
                        (Tab::Connect, "Connect"),
                        (Tab::Identity, "Identity"),
                        (Tab::Settings, "Settings"),
                    ] {
                        ui.selectable_value(&mut self.tab, tab, label);
                    }
                });
                ui.separator();
                egui::Panel::bottom("status").show(ui, |ui| {
                    let online = self.snap.peers.iter().filter(|p| p.online).count();
                    ui.label(RichText::new(format!("{online} peer(s) online")).small().weak());
                    if let Some((s, err)) = self.status.clone() {
                        let since = match &self.status_since {
                            Some((t, at)) if *t == s => *at,
                            _ => {
                                self.status_since = Some((s.clone(), std::time::Instant::now()));
                                std::time::Instant::now()
                            }
                        };
                        let keep = std::time::Duration::from_secs(if err { 20 } else { 6 });
                        if since.elapsed() >= keep {
                            self.status = None;
                        } else {
                            let color = if err { ui.visuals().error_fg_color } else { ui.visuals().weak_text_color() };
                            ui.label(RichText::new(&s).small().color(color));
                            ui.ctx().request_repaint_after(keep.saturating_sub(since.elapsed()));
                        }
                    }
                });
                let mut actions = Vec::new();
                chats::list(ui, &self.snap, &mut self.chats, now, &mut actions);
                self.run_chat_actions(actions);
            },
        );
    }
}

impl eframe::App for LibraApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.drain(&ctx);
        if let Some(e) = &self.failure {
            let e = e.clone();
            egui::CentralPanel::default().show(ui, |ui| {
                ui.centered_and_justified(|ui| {
                    ui.colored_label(ui.visuals().error_fg_color, format!("Libra could not start: {e}"));
                });
            });
            return;
        }
        if let Some(state) = &mut self.onboarding {
            let mut chosen = None;
            egui::CentralPanel::default().show(ui, |ui| chosen = onboarding::ui(ui, state));
            if let Some(Choice::Restore(phrase, backup)) = chosen {
                state.restoring = true;
                state.error = None;
                self.restoring = Some(crate::restore::start(self.dir.clone(), phrase, backup, ctx.clone()));
            } else if let Some(done) = self.restoring.as_ref().and_then(|r| r.take()) {
                self.restoring = None;
                state.restoring = false;
                match done {
                    Ok(node) => {
                        // The phrase is not kept on screen once it has done its work.
                        state.phrase.clear();
                        self.onboarding = None;
                        self.start(node);
                        self.tab = Tab::Identity;
                        self.status = Some((
                            "restored: a new device of your identity. Revoke the lost one under Identity → devices"
                                .into(),
                            false,
                        ));
                    }
                    Err(e) => state.error = Some(e),
                }
            } else if let Some(Choice::Link(code)) = chosen {
                state.linking = true;
                state.error = None;
                self.linking = Some(crate::link::start(self.dir.clone(), code, ctx.clone()));
            } else if let Some(done) = self.linking.as_ref().and_then(|l| l.take()) {
                self.linking = None;
                state.linking = false;
                match done {
                    Ok((node, linker)) => {
                        self.onboarding = None;
                        self.start(node);
                        self.tab = Tab::Identity;
                        if let Some(engine) = &self.engine {
                            let (key, addr) = linker;
                            engine.act(move |n| {
                                let mut rec = n.store.peer(&key).map_err(|e| e.to_string())?.unwrap_or_default();
                                rec.allowed = true;
                                rec.remember_address(&addr, libra_engine::store::AddressSource::Typed);
                                n.store.set_peer(&key, &rec, true).map_err(|e| e.to_string())?;
                                Ok("linked: your contacts and history arrive from your other device".into())
                            });
                        }
                    }
                    Err(e) => state.error = Some(e),
                }
            } else if let Some(Choice::Create(name)) = chosen {
                match Node::init(&self.dir, &name) {
                    Ok(node) => {
                        self.onboarding = None;
                        self.start(node);
                        // Show the new identity and its invite first.
                        self.tab = Tab::Identity;
                        if let Some(engine) = &self.engine {
                            engine.act(|n| {
                                n.invite(None, 1).map(|i| format!("invite:{}", i.to_text())).map_err(|e| e.to_string())
                            });
                        }
                    }
                    Err(e) => state.error = Some(e.to_string()),
                }
            }
            return;
        }
        // A QR code image dropped on the window fills in the invite to add.
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect()
        });
        for path in dropped {
            if path.extension().is_some_and(|e| e == "libra")
                && let Some(engine) = &self.engine
            {
                engine.bundle(libra_engine::control::BundleCommand::Import { file: path.display().to_string() });
                continue;
            }
            // An invite's QR code fills in the invite (never sent anywhere); anything else
            // dropped on an open chat is sent to it.
            let invite = crate::qr_import::invite_from_png(&path);
            if invite.is_err()
                && self.tab == Tab::Chats
                && let (Some((_, key)), Some(engine)) = (&self.chats.open, &self.engine)
                && path.is_file()
            {
                engine.send_file(key.clone(), path);
                continue;
            }
            match invite {
                Ok(text) => {
                    self.connect.invite = text;
                    self.tab = Tab::Connect;
                    self.status = Some(("invite read from the image; check it and add the contact".into(), false));
                }
                Err(e) => self.status = Some((e, true)),
            }
        }
        self.sidebar(ui);
        let now = clock::wall_ms();
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Chats => {
                let mut actions = Vec::new();
                chats::conversation(ui, &self.snap, &mut self.chats, &mut actions);
                self.run_chat_actions(actions);
            }
            Tab::Identity => match (identity::ui(ui, &self.snap, &mut self.identity), &self.engine) {
                (Some(IdentityAction::NewInvite { address, uses }), Some(engine)) => engine.act(move |n| {
                    n.invite(address, uses).map(|i| format!("invite:{}", i.to_text())).map_err(|e| e.to_string())
                }),
                (Some(IdentityAction::Rename(name)), Some(engine)) => engine
                    .act(move |n| n.set_name(&name).map(|()| format!("you are now {name}")).map_err(|e| e.to_string())),
                (Some(IdentityAction::Devices(DevicesAction::Link)), Some(engine)) => engine.link_code(),
                (Some(IdentityAction::Devices(DevicesAction::Backup)), Some(engine)) => engine.backup(),
                (Some(IdentityAction::Devices(DevicesAction::ShowPhrase)), Some(engine)) => {
                    engine.act(|n| n.recovery_phrase().map(|p| format!("phrase:{p}")).map_err(|e| e.to_string()))
                }
                (Some(IdentityAction::Devices(DevicesAction::Revoke(d, phrase))), Some(engine)) => {
                    engine.act(move |n| {
                        let secret = phrase
                            .map(|p| libra_engine::phrase::decode(&p).map_err(|e| format!("recovery phrase: {e}")))
                            .transpose()?;
                        n.revoke_device(&d, "", secret.as_ref())
                            .map(|_| format!("revoked {}; your other devices' keys rotate", d.short()))
                            .map_err(|e| e.to_string())
                    })
                }
                (Some(IdentityAction::Revoke(id)), Some(engine)) => engine.act(move |n| {
                    n.store
                        .revoke_invites(Some(&id), clock::wall_ms())
                        .map(|_| format!("revoked invite {id}"))
                        .map_err(|e| e.to_string())
                }),
                _ => {}
            },
            Tab::Connect => match connect::ui(ui, &self.snap, &mut self.connect, now) {
                Some(ConnectAction::AddContact(text)) => {
                    if let Some(engine) = &self.engine {
                        match AnyInvite::parse(&text) {
                            Ok(inv) => {
                                self.connect.invite.clear();
                                self.connect.error = None;
                                // An invite with an address is dialled by the engine's dialers as
                                // soon as the contact is stored (and we introduce ourselves).
                                engine.act(move |n| match &inv {
                                    AnyInvite::Full(inv) => n
                                        .add_contact(inv, None)
                                        .map(|u| format!("added {}", u.short()))
                                        .map_err(|e| e.to_string()),
                                    AnyInvite::Short(s) => n
                                        .add_short_invite(s)
                                        .map(|d| {
                                            format!("waiting for device {}: added once Libra reaches it", d.short())
                                        })
                                        .map_err(|e| e.to_string()),
                                });
                            }
                            Err(e) => self.connect.error = Some(e.to_string()),
                        }
                    }
                }
                Some(ConnectAction::Export { path, for_contact }) => {
                    if let Some(engine) = &self.engine {
                        let file =
                            std::path::absolute(&path).unwrap_or_else(|_| PathBuf::from(&path)).display().to_string();
                        let all = for_contact.is_none();
                        let for_contacts = for_contact.into_iter().collect();
                        engine.bundle(libra_engine::control::BundleCommand::Export {
                            file,
                            for_contacts,
                            all,
                            full: false,
                            with_files: true,
                        });
                    }
                }
                Some(ConnectAction::Import { path }) => {
                    if let Some(engine) = &self.engine {
                        let file =
                            std::path::absolute(&path).unwrap_or_else(|_| PathBuf::from(&path)).display().to_string();
                        engine.bundle(libra_engine::control::BundleCommand::Import { file });
                    }
                }
                Some(ConnectAction::Nearby { minutes }) => {
                    if let Some(engine) = &self.engine {
                        engine.nearby(minutes);
                    }
                }
                Some(ConnectAction::AddNearby(person)) => {
                    if let Some(engine) = &self.engine {
                        let inv = person.invite;
                        engine.act(move |n| {
                            n.add_contact(&inv, None)
                                .map(|u| {
                                    format!(
                                        "added {} ({}); they see you as new until they accept",
                                        inv.card.name,
                                        u.short()
                                    )
                                })
                                .map_err(|e| e.to_string())
                        });
                    }
                }
                Some(ConnectAction::Connect { address, peer }) => match libra_engine::net::check_address(&address) {
                    Ok(()) => {
                        let expected = if peer.is_empty() {
                            Ok(None)
                        } else {
                            libra_engine::text::decode_id(&peer).map(|(_, k)| Some(k))
                        };
                        match (expected, &self.engine) {
                            (Ok(exp), Some(engine)) => engine.connect(address, exp),
                            (Err(e), _) => self.connect.error = Some(format!("device id: {e}")),
                            _ => {}
                        }
                    }
                    Err(e) => self.connect.error = Some(e.to_string()),
                },
                None => {}
            },
            Tab::Settings => {
                let listening = self.engine.as_ref().and_then(Engine::listening);
                if crate::views::settings::ui(ui, &mut self.settings, listening)
                    && let Err(e) = self.settings.save(&self.dir)
                {
                    self.status = Some((format!("settings not saved: {e}"), true));
                }
                if let (Some(bytes), Some(engine)) = (crate::views::settings::downloads(ui, &self.snap), &self.engine) {
                    let core = engine.core().clone();
                    engine.act(move |n| {
                        n.store.set_auto_download(bytes).map_err(|e| e.to_string())?;
                        core.files_changed();
                        Ok(if bytes == 0 {
                            "files download only when you ask".into()
                        } else {
                            format!(
                                "files up to {} download by themselves",
                                libra_engine::control::render::bytes(bytes)
                            )
                        })
                    });
                }
                if let Some(user) = crate::views::settings::blocked(ui, &self.snap) {
                    self.run_chat_actions(vec![ChatAction::Block { user, blocked: false }]);
                }
            }
        });
    }
}
