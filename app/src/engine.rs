//! The bridge between the UI and the engine: a tokio runtime hosting the node (sync, live
//! push, control socket for the `libra` CLI), a background task that rebuilds the UI's snapshot
//! whenever the logs change, and actions run off the UI thread.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libra_engine::messaging::ChatId;
use libra_engine::net::{Host, HostConfig};
use libra_engine::node::Node;

use crate::model::Snapshot;

/// What the engine tells the UI.
pub enum Event {
    Snapshot(Box<Snapshot>),
    /// An action finished: a message for the status line, or an error.
    Done(Result<String, String>),
}

pub struct Engine {
    rt: tokio::runtime::Runtime,
    host: Arc<Host>,
    rx: Receiver<Event>,
    tx: Sender<Event>,
    open: Arc<Mutex<Option<ChatId>>>,
    refresh: Arc<tokio::sync::Notify>,
    ctx: Arc<Mutex<Option<eframe::egui::Context>>>,
    pub dir: PathBuf,
    pub listening: Option<SocketAddr>,
}

impl Engine {
    /// Starts the node: listens on `listen` (or any free port if that is taken), answers the
    /// control socket, dials known peers, and begins producing snapshots.
    pub fn start(node: Node, dir: &Path, listen: SocketAddr) -> anyhow::Result<Engine> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        // The endpoint binds inside the runtime.
        let host = rt.block_on(async { Host::new(node, HostConfig::new(listen)) });
        let host = match host {
            Ok(h) => Arc::new(h),
            Err(e) => return Err(anyhow::anyhow!("could not start the node: {e}")),
        };
        let listening = host.local_addr().ok();
        let (tx, rx) = channel();
        let engine = Engine {
            rt,
            host,
            rx,
            tx,
            open: Arc::default(),
            refresh: Arc::new(tokio::sync::Notify::new()),
            ctx: Arc::default(),
            dir: dir.to_path_buf(),
            listening,
        };
        let server = engine.host.clone();
        engine.rt.spawn(async move { server.serve().await });
        let control = engine.host.clone();
        let cdir = engine.dir.clone();
        engine.rt.spawn(async move {
            if let Err(e) = libra_tools::control::serve(control, cdir).await {
                tracing::warn!(error = %e, "control socket unavailable");
            }
        });
        let dialer = engine.host.clone();
        engine.rt.spawn(async move { dialer.dial_known() });
        engine.spawn_refresher();
        Ok(engine)
    }

    fn spawn_refresher(&self) {
        let (host, tx, open, refresh, ctx) =
            (self.host.clone(), self.tx.clone(), self.open.clone(), self.refresh.clone(), self.ctx.clone());
        let mut changes = self.host.subscribe();
        self.rt.spawn(async move {
            loop {
                let chat = *open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let h = host.clone();
                let snap = tokio::task::spawn_blocking(move || {
                    let online = h.online();
                    h.read_node(|n| Snapshot::build(n, chat, &online))
                })
                .await;
                if let Ok(snap) = snap {
                    if tx.send(Event::Snapshot(Box::new(snap))).is_err() {
                        return;
                    }
                    if let Some(c) = ctx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                        c.request_repaint();
                    }
                }
                tokio::select! {
                    r = changes.changed() => if r.is_err() { return },
                    () = refresh.notified() => {}
                    // Online state and "last seen" change without log changes.
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                // Coalesce bursts (a sync brings many entries at once).
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        });
    }

    pub fn set_ctx(&self, ctx: &eframe::egui::Context) {
        *self.ctx.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ctx.clone());
    }

    /// Everything the engine said since the last frame.
    pub fn poll(&self) -> Vec<Event> {
        self.rx.try_iter().collect()
    }

    /// Which chat's messages the snapshots should carry.
    pub fn open_chat(&self, chat: Option<ChatId>) {
        *self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = chat;
        self.refresh.notify_one();
    }

    /// Runs an action on the node off the UI thread; its outcome arrives as `Event::Done`.
    pub fn act(&self, f: impl FnOnce(&mut Node) -> Result<String, String> + Send + 'static) {
        let (host, tx, ctx) = (self.host.clone(), self.tx.clone(), self.ctx.clone());
        self.rt.spawn_blocking(move || {
            let r = host.with_node(f);
            let _ = tx.send(Event::Done(r));
            if let Some(c) = ctx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                c.request_repaint();
            }
        });
    }

    /// Connects to a peer and stays in sync with it until the connection ends.
    pub fn connect(&self, addr: SocketAddr, expected: Option<[u8; 32]>) {
        let (host, tx, ctx) = (self.host.clone(), self.tx.clone(), self.ctx.clone());
        self.rt.spawn(async move {
            let r = host.connect(addr, expected, true).await;
            let msg = match r {
                Ok(o) => Ok(format!("session ended: {} entries in, {} out", o.entries_in, o.entries_out)),
                Err(e) => Err(format!("connection failed: {e}")),
            };
            let _ = tx.send(Event::Done(msg));
            if let Some(c) = ctx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                c.request_repaint();
            }
        });
        let _ = self.tx.send(Event::Done(Ok(format!("connecting to {addr}…"))));
    }

    /// Direct access for tests and the start-up benchmark.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let host = self.host.clone();
        self.rt.block_on(async move { tokio::time::timeout(Duration::from_secs(2), host.shutdown()).await.ok() });
    }
}
