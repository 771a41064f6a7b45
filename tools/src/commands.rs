//! Carrying out commands: the few that need no node (init, vectors) or own one (serve) here;
//! every other one is an engine control request, run on an engine opened here or sent to the
//! node already running on the data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use libra_engine::control::{self, Cx, Reply, Request, identity_json, identity_text};
use libra_engine::engine::Engine;
use libra_engine::net::{Host, HostConfig};
use libra_engine::node::{Node, NodeError};
use libra_engine::store::StoreError;
use libra_engine::vectors;
use serde_json::{Value, json};

use crate::cli::{
    AuditCommand, BundleCommand, Cli, Command, ContactCommand, DeviceCommand, FileCommand, GroupCommand, InviteCommand,
    LogCommand, NearbyCommand, PeerCommand, StoreCommand, StunCommand, VectorsCommand,
};

pub fn data_dir(args: &Cli) -> Result<PathBuf> {
    if let Some(d) = &args.data {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "Libra", "libra")
        .map(|p| p.data_dir().to_path_buf())
        .context("no home directory found; pass --data DIR")
}

/// Appends a command's output, as JSON or text, to `out`.
pub fn print(args: &Cli, out: &mut String, value: &Value, text: impl FnOnce() -> String) {
    if args.json {
        out.push_str(&serde_json::to_string_pretty(value).unwrap_or_default());
        out.push('\n');
    } else {
        out.push_str(&text());
    }
}

/// The engine request a command is, if it is one (`init`, `serve` and `vectors` are not).
pub fn request(command: &Command) -> Option<Request> {
    Some(match command {
        Command::Init { .. }
        | Command::Serve { .. }
        | Command::Vectors(_)
        | Command::Completions { .. }
        | Command::Store(StoreCommand::Repair)
        | Command::Stun(StunCommand::Serve { .. }) => {
            return None;
        }
        Command::Id => Request::Id,
        Command::Log(cmd) => Request::Log(match cmd {
            LogCommand::List => control::LogCommand::List,
            LogCommand::Show { author, from, limit } => {
                control::LogCommand::Show { author: author.clone(), from: *from, limit: *limit }
            }
            LogCommand::Verify => control::LogCommand::Verify,
            LogCommand::Replay { bundle: Some(file), .. } => {
                return Some(Request::Bundle(control::BundleCommand::Replay { file: absolute(file) }));
            }
            LogCommand::Replay { author, .. } => {
                control::LogCommand::Replay { author: author.clone().unwrap_or_default() }
            }
            LogCommand::Forks => control::LogCommand::Forks,
        }),
        Command::Sync { target, peer } => Request::Sync { target: target.clone(), peer: peer.clone() },
        Command::Peers => Request::Peers,
        Command::Peer(PeerCommand::Allow { id, address }) => {
            Request::PeerAllow { id: id.clone(), address: address.clone() }
        }
        Command::Invite { action: None, with_address, uses, .. } => {
            Request::Invite(control::InviteCommand::Make { with_address: with_address.clone(), uses: *uses })
        }
        Command::Invite { action: Some(InviteCommand::List), .. } => Request::Invite(control::InviteCommand::List),
        Command::Audit(AuditCommand::Chat { chat }) => Request::AuditChat { chat: chat.clone() },
        Command::Audit(AuditCommand::Verify) => Request::Log(control::LogCommand::Verify),
        Command::Bundle(BundleCommand::Export { file, for_contacts, all, full, with_files }) => {
            Request::Bundle(control::BundleCommand::Export {
                file: absolute(file),
                for_contacts: for_contacts.clone(),
                all: *all,
                full: *full,
                with_files: *with_files,
            })
        }
        Command::Bundle(BundleCommand::Import { file }) => {
            Request::Bundle(control::BundleCommand::Import { file: absolute(file) })
        }
        Command::Stun(StunCommand::Ask { server }) => Request::StunAsk { server: server.clone() },
        Command::Nearby { action: None, minutes } => {
            Request::Nearby(control::NearbyCommand::Start { minutes: *minutes })
        }
        Command::Nearby { action: Some(NearbyCommand::List), .. } => Request::Nearby(control::NearbyCommand::List),
        Command::Nearby { action: Some(NearbyCommand::Off), .. } => Request::Nearby(control::NearbyCommand::Stop),
        Command::Nearby { action: Some(NearbyCommand::Add { who, name }), .. } => {
            Request::Nearby(control::NearbyCommand::Add { who: who.clone(), name: name.clone() })
        }
        Command::Invite { action: Some(InviteCommand::Revoke { id, .. }), .. } => {
            Request::Invite(control::InviteCommand::Revoke { id: id.clone() })
        }
        Command::Contact(ContactCommand::Add { invite, name }) => {
            Request::Contact(control::ContactCommand::Add { invite: invite.clone(), name: name.clone() })
        }
        Command::Contact(ContactCommand::List) => Request::Contact(control::ContactCommand::List),
        Command::Contact(ContactCommand::Rename { contact, name }) => {
            Request::Contact(control::ContactCommand::Rename { contact: contact.clone(), name: name.clone() })
        }
        Command::Contact(ContactCommand::Verify { contact, confirm, undo, .. }) => {
            Request::Contact(control::ContactCommand::Verify {
                contact: contact.clone(),
                confirm: *confirm,
                undo: *undo,
            })
        }
        Command::Contact(ContactCommand::Block { contact }) => {
            Request::Contact(control::ContactCommand::Block { contact: contact.clone(), blocked: true })
        }
        Command::Contact(ContactCommand::Unblock { contact }) => {
            Request::Contact(control::ContactCommand::Block { contact: contact.clone(), blocked: false })
        }
        Command::Contact(ContactCommand::Accept { contact }) => {
            Request::Contact(control::ContactCommand::Accept { contact: contact.clone() })
        }
        Command::Send { chat, text, reply_to, file } => Request::Send {
            chat: chat.clone(),
            text: text.clone().unwrap_or_default(),
            reply_to: reply_to.clone(),
            file: file.as_deref().map(absolute),
        },
        Command::File(FileCommand::List) => Request::File(control::FileCommand::List),
        Command::File(FileCommand::Get { id, out, wait }) => {
            Request::File(control::FileCommand::Get { id: id.clone(), out: absolute(out), wait_secs: *wait })
        }
        Command::File(FileCommand::Auto { size }) => Request::File(control::FileCommand::Auto { bytes: *size }),
        Command::Edit { chat, message, text } => {
            Request::Edit { chat: chat.clone(), message: message.clone(), text: text.clone() }
        }
        Command::Delete { chat, message } => Request::Delete { chat: chat.clone(), message: message.clone() },
        Command::Chats => Request::Chats,
        Command::Chat { chat, limit, follow: _, mark_read, receipts, after } => Request::Chat {
            chat: chat.clone(),
            limit: *limit,
            mark_read: *mark_read,
            receipts: *receipts,
            after: *after,
        },
        Command::Backup { file, with_files, phrase_text, .. } => {
            Request::Backup { file: absolute(file), with_files: *with_files, phrase: phrase_text.clone() }
        }
        Command::Device(cmd) => Request::Device(match cmd {
            DeviceCommand::List { of } => control::DeviceCommand::List { of: of.clone() },
            DeviceCommand::Link { address, .. } => control::DeviceCommand::Link { addresses: address.clone() },
            DeviceCommand::Revoke { device, reason, phrase_text, .. } => control::DeviceCommand::Revoke {
                device: device.clone(),
                reason: reason.clone(),
                phrase: phrase_text.clone(),
            },
            DeviceCommand::Phrase => control::DeviceCommand::Phrase,
            DeviceCommand::Rotate => control::DeviceCommand::Rotate,
        }),
        Command::Group(GroupCommand::Create { name, members }) => {
            Request::Group(control::GroupCommand::Create { name: name.clone(), members: members.clone() })
        }
        Command::Group(GroupCommand::Add { group, members }) => {
            Request::Group(control::GroupCommand::Add { group: group.clone(), members: members.clone() })
        }
        Command::Group(GroupCommand::Remove { group, members }) => {
            Request::Group(control::GroupCommand::Remove { group: group.clone(), members: members.clone() })
        }
        Command::Group(GroupCommand::Rename { group, name }) => {
            Request::Group(control::GroupCommand::Rename { group: group.clone(), name: name.clone() })
        }
        Command::Group(GroupCommand::Leave { group }) => {
            Request::Group(control::GroupCommand::Leave { group: group.clone() })
        }
    })
}

/// A recovery phrase from standard input (never an argument: it would sit in the shell's
/// history and the process list). Unreadable input gives an empty phrase, refused later.
pub fn read_phrase() -> String {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("Recovery phrase (14 groups of 4), then Enter:");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return line;
    }
    let mut buf = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut buf);
    buf
}

/// A path as the running node's process must see it (its working directory is not ours).
fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

/// Replaces a `-` argument that stands for standard input (`send CHAT -`, `contact add -`)
/// with what standard input holds, read here so that a forwarded command carries it.
pub fn read_stdin_args(args: &mut Cli) -> Result<()> {
    if let Command::Device(DeviceCommand::Revoke { phrase: true, phrase_text, .. })
    | Command::Backup { phrase: true, phrase_text, .. } = &mut args.command
    {
        *phrase_text = Some(read_phrase());
        return Ok(());
    }
    let slot = match &mut args.command {
        Command::Send { text: Some(text), .. } if text == "-" => text,
        Command::Contact(ContactCommand::Add { invite, .. }) if invite == "-" => invite,
        Command::Init { link: Some(code), .. } if code == "-" => code,
        _ => return Ok(()),
    };
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut buf).context("reading standard input")?;
    // One trailing newline is how a line ends, not part of the message.
    let body = buf.strip_suffix('\n').map(|b| b.strip_suffix('\r').unwrap_or(b)).unwrap_or(&buf);
    *slot = body.to_owned();
    Ok(())
}

/// A reply as the user asked for it (JSON or text), with what only a terminal adds (QR codes).
pub fn show(args: &Cli, reply: &Reply) -> String {
    let mut out = String::new();
    print(args, &mut out, &reply.value, || {
        let mut s = reply.text.clone();
        let qr = match &args.command {
            // Upper case: QR codes hold it in their compact alphanumeric mode.
            // The short form, so that the code fits an 80×24 terminal.
            Command::Invite { action: None, qr: true, .. } => reply.value["short"].as_str().map(|t| {
                s.push_str(
                    "\nThe code holds the short form: this device and the invite's token. It completes\nonce the scanner reaches this device, on this network or at the address given.\n",
                );
                t.to_ascii_uppercase()
            }),
            Command::Device(DeviceCommand::Link { qr: true, .. }) => {
                reply.value["code"].as_str().map(str::to_ascii_uppercase)
            }
            Command::Contact(ContactCommand::Verify { qr: true, .. }) => reply.value["safety_number"]
                .as_str()
                .map(|n| format!("{}{}", libra_engine::identity::SAFETY_QR_PREFIX, n.replace(' ', ""))),
            _ => None,
        };
        if let Some(text) = qr {
            match qr_block(&text, std::io::IsTerminal::is_terminal(&std::io::stdout())) {
                Ok(block) => {
                    s.push('\n');
                    s.push_str(&block);
                }
                Err(e) => s.push_str(&format!("(no QR code: {e})\n")),
            }
        }
        s
    });
    out
}

/// A QR code in half-block characters, two modules per character row, with the smallest
/// error correction (it is read off a screen, not a crumpled label). On a terminal it is drawn
/// black on white whatever the terminal's colours, so that it scans in light and dark themes
/// alike (a light-on-dark code is inverted, which many scanners refuse).
pub fn qr_block(text: &str, terminal: bool) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L)?;
    let art = code.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build();
    Ok(art.lines().map(|l| if terminal { format!("\x1b[30;107m{l}\x1b[0m\n") } else { format!("{l}\n") }).collect())
}

/// A progress bar on standard error for long local commands (bundles).
fn progress_bar() -> control::Progress {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Arc::new(move |what: &str, done: u64, total: u64| {
        bar.set_message(what.to_owned());
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
        }
    })
}

/// `file get` through a running node, watched: asks for the file, shows the node's download
/// progress (polled) as a bar, then has the node write it out.
pub fn file_get_watching(dir: &std::path::Path, id: &str, to: &str, wait_secs: u64) -> Result<Reply> {
    let call = |req: &Request| -> Result<Reply> {
        let stream = control::connect(dir).context("the running node stopped answering")?;
        Ok(control::call(stream, req)?)
    };
    let get = Request::File(control::FileCommand::Get { id: id.to_owned(), out: to.to_owned(), wait_secs: 0 });
    match call(&get) {
        Err(e) if e.to_string().contains("not downloaded yet") => {}
        r => return r,
    }
    let bar = progress_bar();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_secs);
    let prefix = id.trim().to_ascii_lowercase();
    loop {
        let list = call(&Request::File(control::FileCommand::List))?;
        let file = list.value.as_array().and_then(|a| {
            a.iter().find(|f| {
                [&f["root"], &f["message"]].iter().any(|v| v.as_str().is_some_and(|s| s.starts_with(&prefix)))
            })
        });
        let Some(f) = file else { anyhow::bail!("no file {id} (see libra file list)") };
        let (have, size) = (f["have"].as_u64().unwrap_or(0), f["size"].as_u64().unwrap_or(0));
        if f["state"] == "complete" {
            bar("download", size, size);
            break;
        }
        bar("download", have, size.max(1));
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} is not downloaded yet ({have} of {size} bytes); the download goes on while Libra runs",
                f["name"]
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    call(&get)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Runs a request on an engine opened here (no node runs on the data directory).
fn run_local(args: &Cli, req: Request) -> Result<Reply> {
    let engine = Engine::start(Node::open(&data_dir(args)?)?);
    let reply = if matches!(req, Request::Sync { .. }) {
        // A one-shot sync needs the network: a host on any port, for this command only.
        let rt = runtime()?;
        let r = rt.block_on(async {
            let host = Arc::new(Host::new(engine.clone(), HostConfig::new(SocketAddr::from(([0, 0, 0, 0], 0))))?);
            let cx = Cx { engine: engine.clone(), host: Some(host.clone()), running: false, progress: None };
            let r = tokio::task::spawn_blocking(move || control::execute(&cx, &req)).await;
            host.shutdown().await;
            Ok::<_, anyhow::Error>(r?)
        })?;
        r?
    } else if let Request::File(control::FileCommand::Get { id, .. }) = &req
        && control::file_needs_fetch(&engine, id)
    {
        // Writing out a file that is not here yet: bring the network up for this command
        // (dialers and the fetcher, as a running node would) and wait for the download.
        let rt = runtime()?;
        let r = rt.block_on(async {
            let host = Arc::new(Host::new(engine.clone(), HostConfig::new(SocketAddr::from(([0, 0, 0, 0], 0))))?);
            let server = host.clone();
            tokio::spawn(async move { server.serve().await });
            host.run_dialers();
            host.run_fetcher();
            let mut cx = Cx { engine: engine.clone(), host: Some(host.clone()), running: false, progress: None };
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                cx.progress = Some(progress_bar());
            }
            let r = tokio::task::spawn_blocking(move || control::execute(&cx, &req)).await;
            host.shutdown().await;
            Ok::<_, anyhow::Error>(r?)
        })?;
        r?
    } else {
        let mut cx = Cx::local(engine.clone());
        if matches!(req, Request::Bundle(_)) && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            cx.progress = Some(progress_bar());
        }
        control::execute(&cx, &req)?
    };
    engine.shutdown();
    Ok(reply)
}

/// Runs a command here: `init`, `serve`, `vectors`, or a request on this data directory.
pub fn run(args: &Cli, out: &mut String) -> Result<u8> {
    match &args.command {
        Command::Init { name, link: None, restore: false, .. } => init(args, out, name),
        Command::Init { link: Some(code), device_name, address, .. } => {
            crate::link::init_linked(args, out, code, device_name.as_deref(), address.as_deref())
        }
        Command::Init { restore: true, backup, .. } => crate::link::init_restored(args, out, backup.as_deref()),
        Command::Vectors(cmd) => vectors_cmd(args, out, cmd),
        Command::Store(StoreCommand::Repair) => store_repair(args, out),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "libra", &mut buf);
            out.push_str(&String::from_utf8_lossy(&buf));
            Ok(0)
        }
        Command::Serve { offline: true, .. } => serve_offline(args),
        Command::Stun(StunCommand::Serve { listen }) => crate::stun_server::serve(listen),
        Command::Serve {
            listen,
            no_lan,
            relay,
            no_punch,
            relay_retry,
            lan_port,
            lan_epoch,
            lan_interval,
            stun,
            ..
        } => {
            let lan = (!no_lan).then(|| libra_engine::net::LanConfig {
                port: *lan_port,
                interval: std::time::Duration::from_secs((*lan_interval).max(1)),
                epoch_secs: (*lan_epoch).max(1),
            });
            let net = Net {
                relay: *relay,
                punch: !no_punch,
                relay_retry: std::time::Duration::from_secs((*relay_retry).max(1)),
                stun: stun.clone(),
            };
            for s in &net.stun {
                libra_engine::net::check_address(s).with_context(|| format!("--stun {s}"))?;
            }
            serve(args, listen, lan, net)
        }
        other => {
            let req = request(other).context("not a node command")?;
            let reply = run_local(args, req)?;
            out.push_str(&show(args, &reply));
            Ok(reply.code)
        }
    }
}

fn init(args: &Cli, out: &mut String, name: &str) -> Result<u8> {
    let dir = data_dir(args)?;
    let node = Node::init(&dir, name).with_context(|| format!("creating an identity in {}", dir.display()))?;
    let mut v = identity_json(&node);
    let phrase = node.recovery_phrase()?;
    v["recovery_phrase"] = json!(phrase);
    print(args, out, &v, || {
        format!(
            "Created a new identity.\n{}\nRecovery phrase — write it down and keep it offline. It restores your identity on a new\ndevice (`libra init --restore`) and can revoke a lost one; whoever has it owns your identity.\n\n  {phrase}\n\n(`libra device phrase` shows it again on this device.)\n",
            identity_text(&v)
        )
    });
    Ok(0)
}

fn vectors_cmd(args: &Cli, out: &mut String, cmd: &VectorsCommand) -> Result<u8> {
    match cmd {
        VectorsCommand::Generate { dir } => {
            let names = vectors::write_dir(dir)?;
            print(args, out, &json!({ "dir": dir.display().to_string(), "files": names }), || {
                format!("wrote {} to {}\n", names.join(", "), dir.display())
            });
            Ok(0)
        }
        VectorsCommand::Verify { dir } => {
            let report = vectors::verify_dir(dir)?;
            let failures: Vec<Value> = report
                .failures
                .iter()
                .map(|f| json!({ "file": f.file, "case": f.case, "problem": f.problem }))
                .collect();
            let v = json!({
                "cases": report.cases,
                "failures": failures,
                "differs_from_generated": report.differs_from_generated,
                "ok": report.ok(),
            });
            print(args, out, &v, || {
                let mut out = format!("checked {} cases in {}\n", report.cases, dir.display());
                for f in &report.failures {
                    out += &format!("FAIL {} {}: {}\n", f.file, f.case, f.problem);
                }
                for f in &report.differs_from_generated {
                    out += &format!("DIFFERS {f}: not what this version generates\n");
                }
                if report.ok() {
                    out += "all vectors verify\n";
                }
                out
            });
            Ok(if report.ok() { 0 } else { 1 })
        }
    }
}

/// Opens the node for `serve`. Another `libra` command may hold the store for a moment (it
/// ran before this node's control socket existed): wait for it rather than fail, but not for
/// a running node, which holds the store for good.
fn open_waiting(dir: &std::path::Path) -> Result<Node> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Node::open(dir) {
            Err(NodeError::Store(StoreError::Locked(_)))
                if std::time::Instant::now() < deadline && control::connect(dir).is_none() =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return Ok(r?),
        }
    }
}

/// `serve --offline`: the node and its control channel, no network.
fn serve_offline(args: &Cli) -> Result<u8> {
    let dir = data_dir(args)?;
    let engine = Engine::start(open_waiting(&dir)?);
    let rt = runtime()?;
    rt.block_on(async move {
        let slot: control::HostSlot = Arc::default();
        let control = tokio::spawn(control::serve(engine.clone(), slot, dir.clone()));
        // The banner says the channel is open: a command run after it reaches this node.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while control::connect(&dir).is_none() && std::time::Instant::now() < deadline && !control.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = std::io::Write::write_all(&mut stdout, b"offline: answering local commands only\n")
            .and_then(|()| std::io::Write::flush(&mut stdout));
        drop(stdout);
        tokio::select! {
            r = control => match r {
                Ok(Err(e)) => Err(anyhow::anyhow!("the control channel stopped: {e}")),
                _ => Ok(()),
            },
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    Ok(0)
}

/// How `serve` takes part in reaching contacts beyond its own address.
struct Net {
    relay: bool,
    punch: bool,
    relay_retry: std::time::Duration,
    stun: Vec<String>,
}

fn serve(args: &Cli, listen: &str, lan: Option<libra_engine::net::LanConfig>, net: Net) -> Result<u8> {
    let listen: SocketAddr = listen.parse().with_context(|| format!("'{listen}' is not HOST:PORT"))?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let dir = data_dir(args)?;
    let engine = Engine::start(open_waiting(&dir)?);
    let rt = runtime()?;
    rt.block_on(async move {
        let config = HostConfig { relay: net.relay, punch: net.punch, ..HostConfig::new(listen) };
        let host = Arc::new(Host::new(engine.clone(), config)?);
        // The bound address goes to the user's terminal only, never into logs or to peers.
        // Written, not printed: a closed standard output must not stop the node.
        let banner = format!(
            "listening on {}\ndevice {}\n",
            host.local_addr()?,
            libra_engine::identity::DeviceId(libra_engine::codec::Bytes(host.device()))
        );
        let mut stdout = std::io::stdout().lock();
        let _ =
            std::io::Write::write_all(&mut stdout, banner.as_bytes()).and_then(|()| std::io::Write::flush(&mut stdout));
        drop(stdout);
        host.run_dialers();
        host.run_relay_dialer(net.relay_retry);
        host.run_fetcher();
        host.run_stun(net.stun);
        // A node reachable on loopback only has nothing to announce on a LAN.
        if let Some(cfg) = lan.filter(|_| !listen.ip().is_loopback())
            && let Err(e) = host.run_lan(cfg)
        {
            eprintln!("LAN discovery unavailable: {e}");
        }
        let slot: control::HostSlot = Arc::new(std::sync::RwLock::new(Some(host.clone())));
        let control = tokio::spawn(control::serve(engine.clone(), slot, dir));
        let server = host.clone();
        tokio::select! {
            () = server.serve() => {}
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
        }
        control.abort();
        host.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    // Tasks still running (a forwarded command, a session's write) get a moment, not forever;
    // every write already acknowledged is durable, and the engine closes the store below.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    Ok(0)
}

/// `libra store repair`: rebuilds the store from its readable logs (the old one is kept), then
/// checks that the identity opens on the result.
fn store_repair(args: &Cli, out: &mut String) -> Result<u8> {
    let data = data_dir(args)?;
    let store = data.join("store");
    if !store.exists() {
        anyhow::bail!("there is no store in {} to repair", data.display());
    }
    // This device's own log must survive the repair (else it would sign at used positions).
    let own = libra_engine::keyfile::load(&data).ok().map(|s| s.device.signing.verifying_key().to_bytes());
    let r = libra_engine::store::Store::repair(&store, libra_engine::clock::wall_ms(), own)?;
    // The identity must open on what was rebuilt: its own log and published keys are checked.
    let opens = Node::open(&data).map(|_| ()).map_err(|e| e.to_string());
    let v = json!({
        "kept_at": r.kept_at.display().to_string(),
        "set_aside": r.set_aside.iter().map(|(from, to)| json!({ "from": from.display().to_string(), "to": to.display().to_string() })).collect::<Vec<_>>(),
        "lost": r.lost,
        "logs": r.logs,
        "entries": r.entries,
        "refused": r.refused.iter().map(|(a, seq, why)| json!({ "log": hex::encode(a), "seq": seq, "reason": why })).collect::<Vec<_>>(),
        "opens": opens.is_ok(),
        "open_error": opens.as_ref().err(),
    });
    print(args, out, &v, || {
        let mut s = format!(
            "rebuilt {} entries of {} logs; the old store is kept in {}\n",
            r.entries,
            r.logs,
            r.kept_at.display()
        );
        for (from, to) in &r.set_aside {
            s += &format!("  damaged keyspace {} moved to {}\n", from.display(), to.display());
        }
        let (local, derived): (Vec<&str>, Vec<&str>) =
            r.lost.iter().partition(|k| ["meta", "peers", "invites", "grants", "views"].contains(k));
        if !derived.is_empty() {
            s += &format!("  lost with them and rebuilt from the logs: {}\n", derived.join(", "));
        }
        if !local.is_empty() {
            s += &format!(
                "  lost with them, in no log (peer records, invites, grants, settings, blocks, kept content keys): {}\n",
                local.join(", ")
            );
        }
        for (a, seq, why) in &r.refused {
            s += &format!("  log {}… from seq {seq} not taken: {why}\n", &hex::encode(a)[..8]);
        }
        match &opens {
            Ok(()) => s += "the identity opens on the repaired store\n",
            Err(e) => s += &format!("the repaired store does not open for this identity: {e}\n"),
        }
        s
    });
    Ok(if opens.is_ok() && r.refused.is_empty() { 0 } else { 1 })
}
