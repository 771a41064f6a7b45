//! The bridge between the UI and the engine: the engine (store, writer) opens first and serves
//! the UI and the control socket even when the network cannot start; the network driver comes
//! up beside it on a tokio runtime (retrying, or taking another port, and saying why while it
//! cannot). A background task rebuilds the UI's snapshot when the engine says something
//! changed; actions run off the UI thread.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libra_engine::engine::{Engine as Core, Event as CoreEvent, NetStatus};
use libra_engine::messaging::ChatId;
use libra_engine::net::{Host, HostConfig};
use libra_engine::node::Node;

use crate::model::Snapshot;

/// What the engine tells the UI.
pub enum Event {
    Snapshot(Box<Snapshot>),
    /// Only who is connected (or visible nearby) changed: those views, rebuilt alone.
    Peers(Vec<crate::model::PeerRow>, crate::model::NearbyView),
    /// An action finished: a message for the status line, or an error.
    Done(Result<String, String>),
    /// The network came up, or could not.
    Network(NetStatus),
}

/// How often an offline node tries the network again.
const NET_RETRY: Duration = Duration::from_secs(10);

type Ctx = Arc<Mutex<Option<eframe::egui::Context>>>;

pub struct Engine {
    rt: tokio::runtime::Runtime,
    core: Core,
    host: libra_engine::control::HostSlot,
    rx: Receiver<Event>,
    tx: Sender<Event>,
    open: Arc<Mutex<crate::model::Wanted>>,
    refresh: Arc<tokio::sync::Notify>,
    ctx: Ctx,
    pub dir: PathBuf,
}

/// What the network side shows: links, reachability, nearby nodes, transfers.
fn net_view(c: &Core, host: Option<&Host>) -> crate::model::NetView {
    crate::model::NetView {
        links: c.links(),
        reach: c.reach(),
        seen_as: c.seen_as(),
        stun: c.stun_public(),
        nearby: crate::model::NearbyView::of(host),
        transfers: c.transfers(),
    }
}

fn repaint(ctx: &Ctx) {
    if let Some(c) = ctx.lock().ok().as_ref().and_then(|c| c.as_ref()) {
        c.request_repaint();
    }
}

impl Engine {
    /// Starts the engine on `node`, answers the control socket, and brings the network up on
    /// `listen` (another port if that one is taken; retried while there is no network).
    pub fn start(
        node: Node,
        dir: &Path,
        listen: SocketAddr,
        settings: &crate::settings::Settings,
    ) -> anyhow::Result<Engine> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let core = Core::start(node);
        let (tx, rx) = channel();
        let engine = Engine {
            rt,
            core,
            host: Arc::default(),
            rx,
            tx,
            open: Arc::default(),
            refresh: Arc::new(tokio::sync::Notify::new()),
            ctx: Arc::default(),
            dir: dir.to_path_buf(),
        };
        engine.spawn_network(listen, settings.lan, settings.relay, settings.punch, settings.stun_servers());
        engine.spawn_refresher();
        Ok(engine)
    }

    fn spawn_network(&self, listen: SocketAddr, lan: bool, relay: bool, punch: bool, stun: Vec<String>) {
        let (core, slot, tx, ctx, dir) =
            (self.core.clone(), self.host.clone(), self.tx.clone(), self.ctx.clone(), self.dir.clone());
        self.rt.spawn(async move {
            // The control socket first: the CLI works beside the app even while offline; it
            // finds the host in the shared slot once the network is up (forwarded `sync`).
            let control = tokio::spawn(libra_engine::control::serve(core.clone(), slot.clone(), dir.clone()));
            let any: SocketAddr = SocketAddr::new(listen.ip(), 0);
            loop {
                let config = |at: SocketAddr| HostConfig { relay, punch, ..HostConfig::new(at) };
                let attempt = Host::new(core.clone(), config(listen)).or_else(|first| {
                    tracing::info!(error = %first, "listen address unavailable; trying another port");
                    Host::new(core.clone(), config(any)).map_err(|_| first)
                });
                let status = match attempt {
                    Ok(host) => {
                        let host = Arc::new(host);
                        let addr = host.local_addr().ok();
                        if let Ok(mut s) = slot.write() {
                            *s = Some(host.clone());
                        }
                        let server = host.clone();
                        tokio::spawn(async move { server.serve().await });
                        host.run_dialers();
                        host.run_relay_dialer(Duration::from_secs(10));
                        host.run_fetcher();
                        host.run_stun(stun.clone());
                        // A node reachable on loopback only has nothing to announce on a LAN.
                        if lan
                            && !listen.ip().is_loopback()
                            && let Err(e) = host.run_lan(libra_engine::net::LanConfig::default())
                        {
                            tracing::warn!(error = %e, "LAN discovery unavailable");
                        }
                        addr.map_or_else(|| NetStatus::Offline("no local address".into()), NetStatus::Listening)
                    }
                    Err(e) => NetStatus::Offline(offline_reason(listen, &e)),
                };
                let up = matches!(status, NetStatus::Listening(_));
                let moved = match &status {
                    NetStatus::Listening(a) if listen.port() != 0 && a.port() != listen.port() => Some(a.port()),
                    _ => None,
                };
                let _ = tx.send(Event::Network(status));
                if let Some(p) = moved {
                    let _ = tx.send(Event::Done(Ok(format!(
                        "port {} is in use; listening on port {p} instead",
                        listen.port()
                    ))));
                }
                repaint(&ctx);
                if up {
                    break;
                }
                tokio::time::sleep(NET_RETRY).await;
            }
            if let Ok(Err(e)) = control.await {
                tracing::warn!(error = %e, "control socket unavailable");
            }
        });
    }

    fn spawn_refresher(&self) {
        let (core, tx, open, refresh, ctx, slot) = (
            self.core.clone(),
            self.tx.clone(),
            self.open.clone(),
            self.refresh.clone(),
            self.ctx.clone(),
            self.host.clone(),
        );
        let mut events = self.core.subscribe();
        self.rt.spawn(async move {
            let mut full = true;
            // The last search over all chats, when it ran, and its hits: a search reads every
            // message, so it runs when the text changes and then at most every 2 s as messages
            // arrive, not on every snapshot.
            type Searched = (String, Option<std::time::Instant>, Vec<crate::model::Hit>);
            let searched: Arc<Mutex<Searched>> = Arc::default();
            loop {
                let wanted = open.lock().map(|o| o.clone()).unwrap_or_default();
                let c = core.clone();
                let host = slot.read().ok().and_then(|h| h.clone());
                let searched = searched.clone();
                let update = tokio::task::spawn_blocking(move || {
                    let net = net_view(&c, host.as_deref());
                    c.read(|n| {
                        if full {
                            let mut cache = searched.lock().unwrap_or_else(|e| e.into_inner());
                            let fresh = cache.0 != wanted.search
                                || cache.1.is_none_or(|at| at.elapsed() >= Duration::from_secs(2));
                            let mut wanted = wanted;
                            if !fresh {
                                wanted.search.clear();
                            }
                            let mut snap = Snapshot::build(n, &wanted, &net);
                            if fresh {
                                *cache = (wanted.search.clone(), Some(std::time::Instant::now()), snap.hits.clone());
                            } else {
                                snap.hits = cache.2.clone();
                            }
                            Event::Snapshot(Box::new(snap))
                        } else {
                            let names = crate::model::contact_names(n);
                            Event::Peers(Snapshot::peers_of(n, &names, &net), net.nearby.clone())
                        }
                    })
                })
                .await;
                if let Ok(Ok(update)) = update {
                    if tx.send(update).is_err() {
                        return;
                    }
                    repaint(&ctx);
                }
                // Rebuilt only when the engine says something changed, and only what changed:
                // entries (chats, messages) rebuild the snapshot, a peer coming or going only
                // the peers view.
                full = false;
                let mut wait = true;
                while wait {
                    tokio::select! {
                        ev = events.recv() => match ev {
                            Ok(CoreEvent::Storage { ok: false, detail }) => {
                                let _ = tx.send(Event::Done(Err(format!("could not save: {detail}"))));
                            }
                            Ok(ev) if rebuilds_snapshot(&ev) => {
                                full = true;
                                wait = false;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                full = true;
                                wait = false;
                            }
                            Ok(CoreEvent::Peer { .. } | CoreEvent::Dial { .. } | CoreEvent::Nearby) => wait = false,
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        },
                        () = refresh.notified() => {
                            full = true;
                            wait = false;
                        }
                    }
                }
                // Coalesce bursts (a sync brings many entries at once). What is taken here
                // counts as much as what woke us: a download that ended now (`Files`) must
                // rebuild the snapshot even when a peer coming up woke us.
                tokio::time::sleep(Duration::from_millis(15)).await;
                loop {
                    match events.try_recv() {
                        Ok(ev) => full |= rebuilds_snapshot(&ev),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => full = true,
                        Err(_) => break,
                    }
                }
            }
        });
    }

    pub fn set_ctx(&self, ctx: &eframe::egui::Context) {
        if let Ok(mut c) = self.ctx.lock() {
            *c = Some(ctx.clone());
        }
    }

    /// Everything the engine said since the last frame.
    pub fn poll(&self) -> Vec<Event> {
        self.rx.try_iter().collect()
    }

    /// What to search all chats for (empty: no search); the next snapshot carries the hits.
    pub fn search(&self, needle: &str) {
        if let Ok(mut o) = self.open.lock() {
            if o.search == needle {
                return;
            }
            o.search = needle.to_owned();
        }
        self.refresh.notify_one();
    }

    /// Which chat's messages the snapshots should carry.
    /// The snapshot as it stands, built on the calling thread: the first frame of an app started
    /// on a chat shows it, without waiting for the refresher's round.
    pub fn snapshot_now(&self) -> Option<Snapshot> {
        let wanted = self.open.lock().ok()?.clone();
        let host = self.host.read().ok().and_then(|h| h.clone());
        let net = net_view(&self.core, host.as_deref());
        self.core.read(|n| Snapshot::build(n, &wanted, &net)).ok()
    }

    /// Opens a chat (or none) with its newest `limit` messages (0: the first page).
    pub fn open_chat(&self, chat: Option<ChatId>, limit: usize) {
        if let Ok(mut o) = self.open.lock() {
            o.chat = chat;
            o.limit = limit;
        }
        self.refresh.notify_one();
    }

    /// Carries [`crate::model::PAGE`] more of the open chat's earlier messages.
    pub fn show_earlier(&self) {
        if let Ok(mut o) = self.open.lock() {
            o.limit = o.limit.max(crate::model::FIRST_PAGE) + crate::model::PAGE;
        }
        self.refresh.notify_one();
    }

    /// Exports or imports a bundle file off the UI thread, exactly as `libra bundle` does; the
    /// status line says how it went (what an import could not take, precisely).
    pub fn bundle(&self, cmd: libra_engine::control::BundleCommand) {
        let (core, tx, ctx, refresh) = (self.core.clone(), self.tx.clone(), self.ctx.clone(), self.refresh.clone());
        let _ = self.tx.send(Event::Done(Ok("working on the bundle…".into())));
        self.rt.spawn_blocking(move || {
            let cx = libra_engine::control::Cx { engine: core, host: None, running: true, progress: None };
            let r = match libra_engine::control::execute(&cx, &libra_engine::control::Request::Bundle(cmd)) {
                Ok(reply) if reply.code == 0 => Ok(reply.text.trim().replace('\n', "; ")),
                Ok(reply) => Err(reply.text.trim().replace('\n', "; ")),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(Event::Done(r));
            refresh.notify_one();
            repaint(&ctx);
        });
    }

    /// Writes an encrypted backup (only the recovery phrase opens it) into the Documents
    /// folder (else home), named by date.
    pub fn backup(&self) {
        let (core, tx, ctx) = (self.core.clone(), self.tx.clone(), self.ctx.clone());
        let _ = self.tx.send(Event::Done(Ok("writing the backup…".into())));
        self.rt.spawn_blocking(move || {
            let dir = directories::UserDirs::new()
                .and_then(|u| u.document_dir().map(Path::to_path_buf).or_else(|| Some(u.home_dir().to_path_buf())))
                .unwrap_or_else(std::env::temp_dir);
            let day = chrono::Local::now().format("%Y-%m-%d");
            let file = dir.join(format!("libra-backup-{day}.backup"));
            let cx = libra_engine::control::Cx { engine: core, host: None, running: true, progress: None };
            let req = libra_engine::control::Request::Backup {
                file: file.display().to_string(),
                with_files: false,
                phrase: None,
            };
            let r = match libra_engine::control::execute(&cx, &req) {
                Ok(_) => Ok(format!("backup written to {} (your recovery phrase opens it)", file.display())),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(Event::Done(r));
            repaint(&ctx);
        });
    }

    /// Sends the file at `path` to the chat `key`: encrypted into the blob store off the UI
    /// thread, then sent like a message.
    pub fn send_file(&self, key: String, path: PathBuf) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = self.tx.send(Event::Done(Ok(format!("encrypting {name}…"))));
        self.spawn_action(move |core| {
            chat_of(core, &key)
                .and_then(|t| core.send_file(&t, &path, "", None).map_err(|e| format!("{name}: {e}")))
                .map(|(_, f)| format!("sent {}", f.name))
        });
    }

    /// Sends a text message: sealed on a blocking thread with only the recipients read under
    /// the node lock (`Engine::send`), so a send never holds the node while it seals and the
    /// chat list and sessions go on reading meanwhile.
    pub fn send_text(&self, key: String, text: String, reply_to: Option<libra_engine::log::EntryId>) {
        self.spawn_action(move |core| {
            chat_of(core, &key)
                .and_then(|t| core.send(&t, &text, reply_to).map_err(|e| e.to_string()))
                .map(|_| String::new())
        });
    }

    /// Asks for a file that does not download by itself.
    pub fn want_file(&self, file: libra_engine::blob::FileRef) {
        let r = self
            .core
            .want_file(&file)
            .map(|_| format!("{} will download when a peer that has it is connected", file.name));
        let _ = self.tx.send(Event::Done(r.map_err(|e| e.to_string())));
        self.refresh.notify_one();
    }

    /// Writes a downloaded file into the Downloads folder (a new name if one is taken), and
    /// opens it when `open`.
    pub fn save_file(&self, file: libra_engine::blob::FileRef, open: bool) {
        let (core, tx, ctx) = (self.core.clone(), self.tx.clone(), self.ctx.clone());
        self.rt.spawn_blocking(move || {
            let dir = directories::UserDirs::new()
                .and_then(|u| u.download_dir().map(Path::to_path_buf).or_else(|| Some(u.home_dir().to_path_buf())))
                .unwrap_or_else(std::env::temp_dir);
            let r = save_into(&core, &file, &dir);
            if open
                && let Ok(path) = &r
                && let Some(c) = ctx.lock().ok().as_ref().and_then(|c| c.as_ref())
            {
                c.open_url(eframe::egui::OpenUrl::same_tab(file_url(path)));
            }
            let _ = tx.send(Event::Done(r.map(|p| format!("saved to {}", p.display()))));
            repaint(&ctx);
        });
    }

    /// Runs an action on the node off the UI thread; its outcome arrives as `Event::Done`.
    pub fn act(&self, f: impl FnOnce(&mut Node) -> Result<String, String> + Send + 'static) {
        self.spawn_action(move |core| core.write(f).unwrap_or_else(|e| Err(e.to_string())));
    }

    /// Runs `f` on a blocking thread; its outcome arrives as `Event::Done`, then the view is
    /// rebuilt (some actions change only local state, a contact verified: no Stored event
    /// follows).
    fn spawn_action(&self, f: impl FnOnce(&Core) -> Result<String, String> + Send + 'static) {
        let (core, tx, ctx, refresh) = (self.core.clone(), self.tx.clone(), self.ctx.clone(), self.refresh.clone());
        self.rt.spawn_blocking(move || {
            let _ = tx.send(Event::Done(f(&core)));
            refresh.notify_one();
            repaint(&ctx);
        });
    }

    /// A one-time code that links a new device, answered by this app's network host.
    pub fn link_code(&self) {
        let (core, host, tx, ctx) = (self.core.clone(), self.host(), self.tx.clone(), self.ctx.clone());
        self.rt.spawn_blocking(move || {
            let r = match host {
                None => Err("the network is not up yet: linking needs it".to_owned()),
                Some(h) => h
                    .own_addresses()
                    .map_err(|e| e.to_string())
                    .and_then(|a| core.open_link(a).map_err(|e| e.to_string()))
                    .map(|c| format!("link:{}", c.to_text())),
            };
            let _ = tx.send(Event::Done(r));
            repaint(&ctx);
        });
    }

    /// Connects to a peer at `HOST:PORT` (a name or an IP address) and stays in sync with it
    /// until the connection ends.
    pub fn connect(&self, address: String, expected: Option<[u8; 32]>) {
        let Some(host) = self.host() else {
            let _ = self.tx.send(Event::Done(Err("offline: the network is not up".into())));
            return;
        };
        let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
        let shown = address.clone();
        let watched = host.clone();
        self.rt.spawn(async move {
            let r = match libra_engine::net::resolve(&address).await {
                Ok(addrs) => match addrs.first() {
                    Some(a) => host.connect(*a, expected, true).await,
                    None => Err(libra_engine::net::NetError::Address(address.clone())),
                },
                Err(e) => Err(e),
            };
            let msg = match r {
                Ok(o) => Ok(format!("session ended: {} entries in, {} out", o.entries_in, o.entries_out)),
                Err(e) => Err(format!("connection failed: {e}")),
            };
            let _ = tx.send(Event::Done(msg));
            repaint(&ctx);
        });
        let _ = self.tx.send(Event::Done(Ok(format!("connecting to {shown}…"))));
        // Say so once the session is up (the task above reports only its end).
        let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
        let before = watched.online();
        self.rt.spawn(async move {
            for _ in 0..150 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = watched.online();
                let up = match expected {
                    Some(k) => now.contains_key(&k),
                    None => now.keys().any(|k| !before.contains_key(k)),
                };
                if up {
                    let _ = tx.send(Event::Done(Ok(format!("connected to {shown}"))));
                    repaint(&ctx);
                    return;
                }
            }
        });
    }

    /// The engine (tests and the start-up benchmark reach the node through it).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Becomes visible nearby for `minutes` (or stops, with 0); the status line says how it went.
    pub fn nearby(&self, minutes: u32) {
        let (host, tx, refresh) = (self.host(), self.tx.clone(), self.refresh.clone());
        self.rt.spawn_blocking(move || {
            let r = match host {
                None => Err("offline: the network is not up".to_owned()),
                Some(h) if minutes == 0 => {
                    h.nearby_stop();
                    Ok("no longer visible nearby".to_owned())
                }
                Some(h) => h
                    .nearby_start(minutes)
                    .map(|_| {
                        format!(
                            "visible nearby for {minutes} minutes: your name and keys go to everyone on this network"
                        )
                    })
                    .map_err(|e| e.to_string()),
            };
            let _ = tx.send(Event::Done(r));
            refresh.notify_one();
        });
    }

    /// The network host, once the network is up.
    pub fn host(&self) -> Option<Arc<Host>> {
        self.host.read().ok().and_then(|h| h.clone())
    }

    /// Where the node listens, once the network is up.
    pub fn listening(&self) -> Option<SocketAddr> {
        self.host().and_then(|h| h.local_addr().ok())
    }
}

/// Why the network is not up, in words a person can act on.
fn offline_reason(listen: SocketAddr, e: &libra_engine::net::NetError) -> String {
    match e {
        libra_engine::net::NetError::Io(io) if io.kind() == std::io::ErrorKind::AddrInUse => {
            format!("offline: port {} in use", listen.port())
        }
        other => format!("offline: {other}"),
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(host) = self.host() {
            self.rt.block_on(async move { tokio::time::timeout(Duration::from_secs(2), host.shutdown()).await.ok() });
        }
        self.core.shutdown();
    }
}

/// Exports `file` into `dir` under its own name, or "name (2).ext" and so on if taken.
fn save_into(core: &Core, file: &libra_engine::blob::FileRef, dir: &Path) -> Result<PathBuf, String> {
    let safe = libra_engine::blob::safe_file_name(&file.name);
    let (stem, ext) = match safe.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (safe.clone(), String::new()),
    };
    for i in 1..1000 {
        let name = if i == 1 { safe.clone() } else { format!("{stem} ({i}){ext}") };
        let path = dir.join(name);
        if path.parent() != Some(dir) {
            return Err(format!("{}: not a name to save under", file.name));
        }
        match core.blobs().export(file, &path) {
            Ok(()) => return Ok(path),
            Err(libra_engine::blob::BlobError::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", file.name)),
        }
    }
    Err(format!("{}: no free name in {}", file.name, dir.display()))
}

/// A `file:` URL for a local path: bytes outside the unreserved set percent-encoded (a name
/// with a space, `#` or `?` would otherwise open something else), Windows drive paths as
/// `file:///C:/…`.
pub fn file_url(path: &Path) -> String {
    let p = path.to_string_lossy().replace('\\', "/");
    let mut out = String::from("file://");
    if !p.starts_with('/') {
        out.push('/');
    }
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The chat `key` names (a chat id, or a contact for the 1:1 chat), as the status line says it.
fn chat_of(core: &Core, key: &str) -> Result<libra_engine::messenger::ChatTarget, String> {
    core.read(|n| n.chat(key)).map_err(|e| e.to_string())?.map_err(|e| e.to_string())
}

/// Whether an engine event changes what the snapshot shows beyond the peers view: entries
/// (chats, messages), who may see what, files and their downloads.
fn rebuilds_snapshot(ev: &CoreEvent) -> bool {
    matches!(ev, CoreEvent::Stored { .. } | CoreEvent::Interest | CoreEvent::Files | CoreEvent::Transfer)
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn file_urls_escape_what_a_url_would_misread() {
        assert_eq!(file_url(Path::new("/home/a/My Photo #1?.jpg")), "file:///home/a/My%20Photo%20%231%3F.jpg");
        assert_eq!(file_url(Path::new("/tmp/été.txt")), "file:///tmp/%C3%A9t%C3%A9.txt");
        assert_eq!(file_url(Path::new("C:\\Users\\a b\\x.png")), "file:///C:/Users/a%20b/x.png");
    }
}
