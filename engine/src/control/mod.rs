//! The control channel: typed requests a front end sends to a running engine, and their
//! replies. While a node runs (`libra serve`, the app), the `libra` CLI sends each command here
//! instead of opening the (locked) store; run locally, the CLI carries out the same requests on
//! an engine it opened itself, so a command means the same either way.
//!
//! Transport: `<data>/control.sock`, a Unix domain socket, mode 0600 inside the 0700 data
//! directory, so only the owner can use it. One request per connection: a JSON line
//! `{"request": …}`, answered by `{"value": …, "text": "…", "code": n}` or `{"error": "…"}`.

mod audit;
pub mod backup;
mod bundle;
mod chat;
mod contact;
mod devices;
mod errors;
mod exec;
mod files;
mod invite;
mod nearby;
mod peers;
pub mod render;
mod waiting;

pub use chat::message_line;
pub use errors::error_code;
pub use exec::{clock_ahead_text, identity_json, identity_text};
pub use files::{file_json, file_needs_fetch};

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::Engine;
use crate::net::Host;
use crate::node::Node;

pub const SOCKET: &str = "control.sock";
/// Largest request accepted.
const MAX_REQUEST: u64 = 64 * 1024;

/// What a front end asks of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Id,
    Log(LogCommand),
    Sync {
        target: String,
        peer: Option<String>,
    },
    Peers,
    PeerAllow {
        id: String,
        address: Option<String>,
    },
    Invite(InviteCommand),
    Nearby(NearbyCommand),
    /// Ask a STUN server where it sees the running node (section 4.3 of connectivity.md).
    StunAsk {
        server: String,
    },
    Bundle(BundleCommand),
    /// The verified history of a chat, with each message's provenance.
    AuditChat {
        chat: String,
    },
    Contact(ContactCommand),
    Send {
        chat: String,
        text: String,
        reply_to: Option<String>,
        /// A file to send (an absolute path), with `text` as its caption.
        #[serde(default)]
        file: Option<String>,
    },
    File(FileCommand),
    Edit {
        chat: String,
        message: String,
        text: String,
    },
    Delete {
        chat: String,
        message: String,
    },
    Chats,
    Chat {
        chat: String,
        limit: usize,
        mark_read: bool,
        receipts: bool,
        after: Option<u64>,
    },
    Group(GroupCommand),
    Device(DeviceCommand),
    /// An encrypted backup of every log and this device's agreement secrets.
    Backup {
        file: String,
        with_files: bool,
        phrase: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceCommand {
    /// The devices of this user, or of a contact.
    List { of: Option<String> },
    /// A one-time code for a new device (a running node answers it).
    Link { addresses: Vec<String> },
    /// Revoke a device; `phrase` when this device does not hold the user key.
    Revoke { device: String, reason: String, phrase: Option<String> },
    /// The recovery phrase (on the device holding the user key).
    Phrase,
    /// Publish a fresh agreement key now.
    Rotate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogCommand {
    List,
    Show { author: String, from: u64, limit: usize },
    Verify,
    Replay { author: String },
    Forks,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteCommand {
    Make {
        with_address: Option<String>,
        uses: u32,
    },
    List,
    /// Revoke the open invite whose id starts with `id`; every open invite with `None`.
    Revoke {
        id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileCommand {
    List,
    /// Writes a file to `out` (absolute), downloading it first if needed, waiting at most
    /// `wait_secs` on a running node.
    Get {
        id: String,
        out: String,
        wait_secs: u64,
    },
    /// Shows or sets the largest file fetched without being asked for.
    Auto {
        bytes: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BundleCommand {
    /// Paths are absolute: a forwarded command runs in the node's process.
    Export {
        file: String,
        for_contacts: Vec<String>,
        all: bool,
        /// Whole logs even for contacts sent some before.
        full: bool,
        /// Also the files (blobs) of the messages carried, where this node has them.
        #[serde(default)]
        with_files: bool,
    },
    Import {
        file: String,
    },
    /// Audit a bundle without importing it.
    Replay {
        file: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearbyCommand {
    Start {
        minutes: u32,
    },
    Stop,
    List,
    /// Add the person visible nearby that `who` names (name or short id).
    Add {
        who: String,
        name: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactCommand {
    Add {
        invite: String,
        name: Option<String>,
    },
    List,
    Rename {
        contact: String,
        name: String,
    },
    Verify {
        contact: String,
        confirm: bool,
        undo: bool,
    },
    Accept {
        contact: String,
    },
    /// Block (or unblock, with `blocked` false).
    Block {
        contact: String,
        blocked: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupCommand {
    Create { name: String, members: Vec<String> },
    Add { group: String, members: Vec<String> },
    Leave { group: String },
    Remove { group: String, members: Vec<String> },
    Rename { group: String, name: String },
}

/// A reply: the structured value (what `--json` prints), its text rendering, and the exit status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub value: Value,
    pub text: String,
    pub code: u8,
}

/// Why a request failed: its message is what the CLI prints after `error:`, its code one of
/// [`errors::error_code`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub message: String,
    pub code: String,
}

impl ControlError {
    pub fn new(message: impl Into<String>) -> ControlError {
        ControlError { message: message.into(), code: "failed".into() }
    }
}

/// Where the network host is, once (and if) it is up.
pub type HostSlot = Arc<RwLock<Option<Arc<Host>>>>;

/// Told how a long command is going: what it does, how much is done of how much.
pub type Progress = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// What a request runs against.
pub struct Cx {
    pub engine: Engine,
    pub host: Option<Arc<Host>>,
    /// A running node (rather than the CLI's own engine): it knows who is online.
    pub running: bool,
    /// Where long commands (bundles) report progress, if anyone watches.
    pub progress: Option<Progress>,
}

impl Cx {
    /// A context with no network and nobody watching progress.
    pub fn local(engine: Engine) -> Cx {
        Cx { engine, host: None, running: false, progress: None }
    }

    fn report(&self, what: &str, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            p(what, done, total);
        }
    }

    fn read<R>(&self, f: impl FnOnce(&Node) -> anyhow::Result<R>) -> anyhow::Result<R> {
        self.engine.read(f)?
    }
    fn write<R>(&self, f: impl FnOnce(&mut Node) -> anyhow::Result<R>) -> anyhow::Result<R> {
        self.engine.write_here(f)?
    }
}

/// A command's output while it is being built.
#[derive(Default)]
pub struct Out {
    value: Value,
    text: String,
}

impl Out {
    fn set(&mut self, value: &Value, text: impl FnOnce() -> String) {
        self.value = value.clone();
        self.text = text();
    }
}

/// Carries out a request. Blocking (a `sync` waits for its session): call it off the async
/// runtime's workers, on a thread of a runtime (`spawn_blocking`) when it may sync.
pub fn execute(cx: &Cx, req: &Request) -> Result<Reply, ControlError> {
    let mut out = Out::default();
    match exec::run(cx, &mut out, req) {
        Ok(code) => Ok(Reply { value: out.value, text: out.text, code }),
        Err(e) => Err(ControlError { message: format!("{e:#}"), code: errors::error_code(&e).into() }),
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    request: Request,
}

/// One request line as the control socket reads it (JSON `{"request": …}`).
pub fn decode_request(line: &str) -> Result<Request, serde_json::Error> {
    serde_json::from_str::<Envelope>(line).map(|e| e.request)
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Answer {
    Ok(Reply),
    Err {
        error: String,
        #[serde(default)]
        code: String,
    },
}

/// Answers one control connection: one request line in, one answer line out.
async fn answer<S>(stream: S, engine: Engine, host: Option<Arc<Host>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let (r, mut w) = tokio::io::split(stream);
    let mut line = String::new();
    if BufReader::new(r.take(MAX_REQUEST)).read_line(&mut line).await.is_err() {
        return;
    }
    let answer = match decode_request(&line) {
        Ok(request) => {
            let cx = Cx { engine, host, running: true, progress: None };
            tokio::task::spawn_blocking(move || execute(&cx, &request))
                .await
                .unwrap_or_else(|e| Err(ControlError::new(e.to_string())))
        }
        Err(e) => Err(ControlError { message: format!("bad request: {e}"), code: "bad_request".into() }),
    };
    let answer = match answer {
        Ok(r) => Answer::Ok(r),
        Err(e) => Answer::Err { error: e.message, code: e.code },
    };
    let mut text = serde_json::to_string(&answer).unwrap_or_default();
    text.push('\n');
    let _ = w.write_all(text.as_bytes()).await;
    let _ = w.flush().await;
}

/// Serves the control socket of the node in `dir` until the task is dropped.
#[cfg(unix)]
pub async fn serve(engine: Engine, host: HostSlot, dir: PathBuf) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(SOCKET);
    // We hold the store lock, so a socket file left here is stale from a crash.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let (engine, host) = (engine.clone(), host.read().ok().and_then(|h| h.clone()));
        tokio::spawn(answer(stream, engine, host));
    }
}

/// Serves the control channel of the node in `dir` on a named pipe until the task is dropped.
/// The pipe's name is random and written to `dir/control.pipe` (readable by the user alone:
/// the data directory's DACL), so nobody else can know it in advance to squat on it; its
/// descriptor lets only the current user open it, and remote clients are refused.
#[cfg(windows)]
pub async fn serve(engine: Engine, host: HostSlot, dir: PathBuf) -> std::io::Result<()> {
    use crate::winsec::{Descriptor, Rights, pipe_server};
    let sd = Descriptor::user_only(Rights::Pipe, false)?;
    let name = format!(r"\\.\pipe\libra-control-{}", hex::encode(&crate::identity::random_secret()[..16]));
    let create = |first: bool| pipe_server(&name, first, &sd);
    let mut server = create(true)?;
    std::fs::write(dir.join(PIPE_FILE), &name)?;
    loop {
        server.connect().await?;
        let connected = std::mem::replace(&mut server, create(false)?);
        let (engine, host) = (engine.clone(), host.read().ok().and_then(|h| h.clone()));
        tokio::spawn(answer(connected, engine, host));
    }
}

#[cfg(not(any(unix, windows)))]
pub async fn serve(_engine: Engine, _host: HostSlot, _dir: PathBuf) -> std::io::Result<()> {
    std::future::pending::<()>().await;
    Ok(())
}

/// Where a running node on Windows wrote its control pipe's name.
pub const PIPE_FILE: &str = "control.pipe";

/// A connection to a running node's control channel.
#[cfg(unix)]
pub type Stream = std::os::unix::net::UnixStream;
#[cfg(windows)]
pub type Stream = std::fs::File;
#[cfg(not(any(unix, windows)))]
pub type Stream = std::convert::Infallible;

/// A connection to the node running on `dir`, if one answers there.
#[cfg(unix)]
pub fn connect(dir: &Path) -> Option<Stream> {
    let s = std::os::unix::net::UnixStream::connect(dir.join(SOCKET)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(180))).ok()?;
    Some(s)
}

/// A connection to the node running on `dir`: the pipe named in its pipe file. A busy pipe
/// (every instance taken for a moment) is tried again for up to 2 s; a file left by a node
/// that is gone names no pipe, so nothing answers.
#[cfg(windows)]
pub fn connect(dir: &Path) -> Option<Stream> {
    let name = std::fs::read_to_string(dir.join(PIPE_FILE)).ok()?;
    if !name.starts_with(r"\\.\pipe\libra-control-") {
        return None;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match std::fs::OpenOptions::new().read(true).write(true).open(name.trim()) {
            Ok(f) => return Some(f),
            // ERROR_PIPE_BUSY
            Err(e) if e.raw_os_error() == Some(231) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(_) => return None,
        }
    }
}

#[cfg(not(any(unix, windows)))]
pub fn connect(_dir: &Path) -> Option<Stream> {
    None
}

/// Sends `req` over a connection from [`connect`] and waits for the reply (at most 180 s on
/// Unix).
pub fn call(stream: Stream, req: &Request) -> Result<Reply, ControlError> {
    use std::io::{BufRead, BufReader, Write};
    let io = |e: std::io::Error| ControlError::new(format!("talking to the running node: {e}"));
    let mut line =
        serde_json::to_string(&Envelope { request: req.clone() }).map_err(|e| ControlError::new(e.to_string()))?;
    line.push('\n');
    let mut stream = stream;
    stream.write_all(line.as_bytes()).map_err(io)?;
    stream.flush().map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    match serde_json::from_str::<Answer>(&answer) {
        Ok(Answer::Ok(r)) => Ok(r),
        Ok(Answer::Err { error, code }) => Err(ControlError { message: error, code }),
        Err(e) => Err(ControlError::new(format!("the running node's answer is not valid: {e}"))),
    }
}
