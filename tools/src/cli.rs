//! Command-line grammar.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "libra",
    version,
    about = "Libra: serverless, end-to-end encrypted messaging on signed append-only logs"
)]
pub struct Cli {
    /// Data directory (identity and store). Defaults to the platform's per-user data directory.
    #[arg(long, global = true, env = "LIBRA_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new identity (user key and this device) in the data directory.
    Init {
        /// Display name shown to contacts.
        #[arg(long, default_value = "anonymous")]
        name: String,
        /// Join an existing identity as a new device: the code `libra device link` shows on a
        /// device that holds it (`-` reads it from standard input).
        #[arg(long, value_name = "CODE", conflicts_with = "restore")]
        link: Option<String>,
        /// Restore an identity on this new device from its recovery phrase, read from standard
        /// input. The old devices' keys are never reused.
        #[arg(long)]
        restore: bool,
        /// With --restore: bring back the history from this backup (`libra backup`).
        #[arg(long, requires = "restore", value_name = "FILE")]
        backup: Option<PathBuf>,
        /// With --link: this device's name, shown to your contacts (default: "<os> desktop").
        #[arg(long, requires = "link")]
        device_name: Option<String>,
        /// With --link: also try this address of the linking device (HOST:PORT).
        #[arg(long, requires = "link")]
        address: Option<String>,
    },
    /// Show this device's identity.
    Id,
    /// Inspect and audit the logs in the store.
    #[command(subcommand)]
    Log(LogCommand),
    /// Run this node on the network: accept allowed peers, stay in sync live, re-dial known peers.
    Serve {
        /// Address to listen on (UDP). Only allowed device keys get past the handshake.
        #[arg(long, default_value = "0.0.0.0:7444")]
        listen: String,
        /// Do not send or listen for LAN discovery beacons.
        #[arg(long)]
        no_lan: bool,
        /// Relay for your contacts: splice end-to-end encrypted sessions between two of them
        /// who cannot reach each other (you learn only that they talk, and how much).
        #[arg(long)]
        relay: bool,
        /// Never tell a contact this node's public address for hole punching, nor ask for
        /// theirs (contacts then reach it only through a relay or an address you gave).
        #[arg(long)]
        no_punch: bool,
        /// Seconds between attempts to reach unconnected contacts through connected ones.
        #[arg(long, default_value_t = 10, hide = true)]
        relay_retry: u64,
        /// The UDP port of LAN discovery beacons.
        #[arg(long, default_value_t = libra_engine::discovery::DEFAULT_PORT)]
        lan_port: u16,
        /// Seconds per beacon tag epoch (the protocol uses 300; shorter only for tests).
        #[arg(long, default_value_t = libra_engine::discovery::EPOCH_SECS, hide = true)]
        lan_epoch: u64,
        /// Seconds between beacons.
        #[arg(long, default_value_t = 5, hide = true)]
        lan_interval: u64,
        /// Stay off the network (nothing listened on, dialled or announced): the node only
        /// answers the `libra` commands run beside it, e.g. to keep one store open for a script.
        #[arg(long, conflicts_with_all = ["listen", "relay", "no_lan", "no_punch", "lan_port", "stun"])]
        offline: bool,
        /// A STUN server of your choosing (`HOST:PORT`, repeatable; none by default): asked
        /// every 5 minutes for this node's public address, which hole punching then offers
        /// contacts. The server learns that address.
        #[arg(long, value_name = "HOST:PORT")]
        stun: Vec<String>,
    },
    /// Sync once with a peer (address, or a peer id with a remembered address), print what moved.
    Sync {
        /// `HOST:PORT`, an `ld…` device id allowed with `--address`, or a contact (name or short
        /// id) one of whose devices has a known address.
        target: String,
        /// The device id the peer must prove (required when dialing an address).
        #[arg(long)]
        peer: Option<String>,
    },
    /// List known peers: allow-list and last connection state (local knowledge only).
    Peers,
    /// Manage the allow-list (until contacts exist, the allow-list decides who may sync).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Generate or check the published test vectors.
    #[command(subcommand)]
    Vectors(VectorsCommand),
    /// Print an invite others add with `libra contact add` (text, and a QR code with --qr).
    /// It introduces one person (`--uses N` for more) within 7 days; `invite list` shows the
    /// open ones and `invite revoke` withdraws them.
    #[command(args_conflicts_with_subcommands = true)]
    Invite {
        #[command(subcommand)]
        action: Option<InviteCommand>,
        /// Include an address to reach this node (off by default: an invite carries no IP
        /// address unless you ask).
        #[arg(long, value_name = "HOST:PORT")]
        with_address: Option<String>,
        /// How many people the invite may introduce (1 to 1000).
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
        /// Also draw the invite as a QR code in the terminal.
        #[arg(long)]
        qr: bool,
    },
    /// Contacts: add one from an invite, list them.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Audit: a chat's verified history with each message's provenance, or every projection
    /// rebuilt from the logs and compared.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Carry logs in a file (a USB stick): export for contacts, import what others carried.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// The store on disk: repair a damaged one.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Print a completion script for your shell (e.g. `libra completions bash > ~/.local/share/bash-completion/completions/libra`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Visible nearby: for a few minutes, announce an invite to this local network and list
    /// the people who do the same, to add each other without typing (needs a running node).
    #[command(args_conflicts_with_subcommands = true)]
    Nearby {
        #[command(subcommand)]
        action: Option<NearbyCommand>,
        /// How long to stay visible (1 to 30 minutes).
        #[arg(long, default_value_t = 5, value_name = "N")]
        minutes: u32,
    },
    /// STUN: ask a server where it sees this node, or run a STUN server of your own.
    #[command(subcommand)]
    Stun(StunCommand),
    /// Send a message (appended at once; delivered whenever a path reaches the recipient).
    Send {
        /// Contact name, short id (lu:xxxx-…), user id, group name or chat id.
        chat: String,
        /// The message (the caption of a file); `-` reads it from standard input.
        #[arg(required_unless_present = "file")]
        text: Option<String>,
        /// Reply to a message (id or its first 8+ hex digits).
        #[arg(long, conflicts_with = "file")]
        reply_to: Option<String>,
        /// Send this file (encrypted; members fetch it from whoever has it).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Files sent and received: list them, write one out (downloading it first if needed),
    /// or set which sizes download by themselves.
    #[command(subcommand)]
    File(FileCommand),
    /// Edit one of your messages.
    Edit {
        /// Contact name, short id (lu:xxxx-…), user id, group name or chat id.
        chat: String,
        /// The message: at least 8 hex digits of its id (as `chat` shows it).
        message: String,
        /// The new text.
        text: String,
    },
    /// Delete one of your messages.
    Delete {
        /// Contact name, short id (lu:xxxx-…), user id, group name or chat id.
        chat: String,
        /// The message: at least 8 hex digits of its id (as `chat` shows it).
        message: String,
    },
    /// List chats: last message, unread count.
    Chats,
    /// Show a chat with delivery state; --follow keeps printing new messages.
    Chat {
        /// Contact name, short id (lu:xxxx-…), user id, group name or chat id.
        chat: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Keep printing new messages (needs a running node: `libra serve` or the app).
        #[arg(long)]
        follow: bool,
        /// Mark the chat read on this device (and all your devices).
        #[arg(long)]
        mark_read: bool,
        /// With --mark-read, also tell the senders (read receipts are off unless you ask).
        #[arg(long)]
        receipts: bool,
        /// Only messages after this timestamp (used by --follow).
        #[arg(long, hide = true)]
        after: Option<u64>,
    },
    /// Groups: create, add members, leave.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Write an encrypted backup of every log and this device's keys for reading history;
    /// only the recovery phrase opens it (`libra init --restore --backup FILE`).
    Backup {
        file: PathBuf,
        /// Also the files (attachments) this device has.
        #[arg(long)]
        with_files: bool,
        /// Read the recovery phrase from standard input (on a device without the user key).
        #[arg(long)]
        phrase: bool,
        #[arg(skip)]
        phrase_text: Option<String>,
    },
    /// Your devices: link a new one, list, revoke, the recovery phrase.
    #[command(subcommand)]
    Device(DeviceCommand),
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// List your devices (or a contact's), with which are revoked.
    List {
        /// A contact whose devices to list.
        #[arg(long)]
        of: Option<String>,
    },
    /// Show a one-time code (and QR) that links a new device to your identity. Needs a running
    /// node (`libra serve` or the app) on the device that holds the user key.
    Link {
        /// Address the new device dials (HOST:PORT); default: this node's addresses.
        #[arg(long)]
        address: Vec<String>,
        /// Also show the code as a QR code.
        #[arg(long)]
        qr: bool,
    },
    /// Revoke a device: its later entries are refused and it gets no keys for later messages.
    Revoke {
        /// Device id, short id (ld:xxxx-…) or name.
        device: String,
        /// Why (kept in the revocation, seen by your contacts).
        #[arg(long, default_value = "")]
        reason: String,
        /// Read the recovery phrase from standard input (on a device without the user key).
        #[arg(long)]
        phrase: bool,
        /// The phrase read (once, before the command is forwarded or run).
        #[arg(skip)]
        phrase_text: Option<String>,
    },
    /// Show the recovery phrase (on the device that holds the user key).
    Phrase,
    /// Publish a fresh agreement key for this device now.
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// List every log held: author, entries, head.
    List,
    /// Show the entries of one log.
    Show {
        /// Author: a user id (lu…), device id (ld…), 64 hex digits, or `user` / `device` for your own.
        author: String,
        /// First seq to show.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Most entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Check every chain, head, fork proof and view in the store; exits 1 on any problem.
    Verify,
    /// Audit one log: its verified history with decoded payloads.
    Replay {
        /// Author, as for `show`.
        #[arg(required_unless_present = "bundle")]
        author: Option<String>,
        /// Audit the logs a bundle file carries instead, without importing anything.
        #[arg(long, value_name = "FILE", conflicts_with = "author")]
        bundle: Option<PathBuf>,
    },
    /// List fork proofs: authors caught signing two entries at one position.
    Forks,
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Rebuild a damaged store from what can still be read of it: every log entry is checked
    /// again and the indexes and views are made anew; nothing is deleted (the old store is kept
    /// beside the new one). Stop the running node first.
    Repair,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Each message of a chat with its author's user and device, log position, id, whether
    /// its signature verifies and whether its author equivocated.
    Chat {
        /// Contact name, short id (lu:xxxx-…), user id, group name or chat id.
        chat: String,
    },
    /// Check every chain, head and fork proof, and rebuild every projection to compare it
    /// with the stored one (as `log verify`).
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum BundleCommand {
    /// Write into FILE what these contacts would get in a sync and were not sent by an earlier
    /// bundle (or every log, whole).
    Export {
        /// The bundle file to write (replaced atomically).
        file: PathBuf,
        /// A contact the bundle is for (name, short id or user id); repeat for several.
        #[arg(long = "for", value_name = "CONTACT", required_unless_present = "all")]
        for_contacts: Vec<String>,
        /// Every log this node holds.
        #[arg(long, conflicts_with = "for_contacts")]
        all: bool,
        /// Whole logs, even what earlier bundles for these contacts carried (when one was lost).
        #[arg(long)]
        full: bool,
        /// Also the files of the messages carried (those downloaded here), verified by the
        /// reader piece by piece.
        #[arg(long)]
        with_files: bool,
    },
    /// Check FILE and take every valid entry that is for this node, as from a peer.
    Import {
        /// The bundle file to read.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum FileCommand {
    /// Every file of every chat, with its state here (complete, downloading, not downloaded).
    List,
    /// Write file ID (its first 6+ hex digits, as `file list` shows it) to OUT.
    Get {
        id: String,
        /// Where to write it (must not exist yet).
        out: PathBuf,
        /// How long to wait for the download (at most 170 s when a running node fetches it; it
        /// goes on in the background after that).
        #[arg(long, default_value_t = 120, value_name = "SECONDS")]
        wait: u64,
    },
    /// Show, or set, the largest file that downloads without being asked for (e.g. 32M, 1G, 0).
    Auto {
        #[arg(value_parser = parse_size)]
        size: Option<u64>,
    },
}

/// A size such as `500k`, `32M`, `1G` or a number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last().map(|(i, c)| (i, c.to_ascii_lowercase())) {
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size (bytes, or a number with k, M or G)"))
}

#[derive(Subcommand, Debug)]
pub enum StunCommand {
    /// Ask a STUN server where it sees the running node: its public address and port (the
    /// server learns them).
    Ask {
        /// `HOST:PORT` of the server.
        server: String,
    },
    /// Answer STUN binding requests (RFC 8489) for whoever wants their own server: each asker
    /// is told the address its request came from. Nothing is stored or logged.
    Serve {
        /// Address to listen on (UDP).
        #[arg(long, default_value = "0.0.0.0:3478")]
        listen: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum NearbyCommand {
    /// The people visible nearby now.
    List,
    /// Add someone visible nearby as a contact (they see you as new until they accept).
    Add {
        /// Their name or short id (lu:…) as `nearby list` shows it.
        who: String,
        /// The name to show instead of the one they chose.
        #[arg(long)]
        name: Option<String>,
    },
    /// Stop being visible now (the invite announced is revoked).
    Off,
}

#[derive(Subcommand, Debug)]
pub enum InviteCommand {
    /// The invites still open: id, uses left, expiry.
    List,
    /// Withdraw an open invite: nobody can introduce themselves with it any more.
    Revoke {
        /// The invite's id (as `invite list` shows it, at least 4 hex digits).
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// Revoke every open invite.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContactCommand {
    /// Add a contact from an invite; their devices may then sync with this node.
    Add {
        /// The invite (libra:…); `-` reads it from standard input.
        invite: String,
        /// The name to show instead of the one in the invite.
        #[arg(long)]
        name: Option<String>,
    },
    /// List contacts, with whether each is verified or new.
    List,
    /// Give a contact your own name for it (only your devices see it).
    Rename {
        /// Contact name, short id (lu:xxxx-…) or user id.
        contact: String,
        /// Your name for them (1 to 64 bytes; they never see it).
        name: String,
    },
    /// Show the safety number to compare with the contact in person; --confirm marks the
    /// contact verified once the numbers match, --undo clears it.
    Verify {
        /// Contact name, short id (lu:xxxx-…) or user id.
        contact: String,
        #[arg(long, conflicts_with = "undo")]
        confirm: bool,
        #[arg(long)]
        undo: bool,
        /// Also print the number as a QR code, for the other device to scan and compare.
        #[arg(long)]
        qr: bool,
    },
    /// Accept a contact that introduced itself with one of your invites (no longer shown as new).
    Accept {
        /// Contact name, short id (lu:xxxx-…) or user id.
        contact: String,
    },
    /// Block a contact: their devices can no longer connect, you can no longer write to them,
    /// and their chat is hidden in the app (`unblock` takes it back).
    Block {
        /// Contact name, short id (lu:xxxx-…) or user id.
        contact: String,
    },
    /// Unblock a contact.
    Unblock {
        /// Contact name, short id (lu:xxxx-…) or user id.
        contact: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group with contacts as members.
    Create {
        /// The group's name.
        name: String,
        /// Members: contact names, short ids (lu:xxxx-…) or user ids.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Add contacts to a group.
    Add {
        /// The group: its name or chat id.
        group: String,
        /// Members: contact names, short ids (lu:xxxx-…) or user ids.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Leave a group.
    Leave {
        /// The group: its name or chat id.
        group: String,
    },
    /// Take members out of a group (any member may; they are told).
    Remove {
        /// The group: its name or chat id.
        group: String,
        /// Members: contact names, short ids (lu:xxxx-…) or user ids.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Give a group a new name (for every member).
    Rename {
        /// The group: its name or chat id.
        group: String,
        /// The new name (1 to 64 bytes).
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PeerCommand {
    /// Allow a device (ld…) or user (lu…) to sync with this node.
    Allow {
        /// The device (ld…) or user (lu…) id to allow.
        id: String,
        /// Where to dial it (kept locally, never sent to anyone).
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum VectorsCommand {
    /// Write the test vectors (deterministic) into DIR.
    Generate {
        /// Directory to write the JSON files into (created if missing).
        dir: PathBuf,
    },
    /// Check every case of the vectors in DIR and compare them with freshly generated ones.
    Verify {
        /// Directory holding the vector files.
        #[arg(default_value = "testvectors")]
        dir: PathBuf,
    },
}
