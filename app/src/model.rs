//! What the UI shows, built from the node in one pass off the UI thread.

use std::collections::BTreeMap;

use libra_engine::clock;
use libra_engine::engine::{Link, PathKind, Reach};
use libra_engine::identity::UserId;
use libra_engine::log::EntryId;
use libra_engine::messaging::ChatId;
use libra_engine::node::Node;
use libra_engine::store::{ChatKind, Delivery, MessageView};

/// Messages of an open chat carried at first: what a screen shows and a little more, so that
/// opening a chat (and starting the app on one) lays out few messages.
pub const FIRST_PAGE: usize = 60;
/// Messages added each time the user asks for earlier ones.
pub const PAGE: usize = 300;

#[derive(Debug, Clone, Default)]
pub struct Me {
    pub name: String,
    pub user_id: String,
    pub user_short: String,
    pub device_id: String,
    pub device_short: String,
    /// How far our own log is stamped past the clock, when contacts hold what we write.
    pub clock_ahead_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ChatRow {
    pub chat: ChatId,
    pub title: String,
    pub group: bool,
    pub preview: String,
    pub last_ms: u64,
    pub unread: usize,
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub id: EntryId,
    pub ms: u64,
    pub from: String,
    pub mine: bool,
    pub text: Option<String>,
    pub edited: bool,
    pub deleted: bool,
    pub undecryptable: bool,
    pub reply: Option<(EntryId, String)>,
    pub delivery: Option<Delivery>,
    pub file: Option<FileView>,
}

/// A message's file as the chat shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileView {
    pub file: libra_engine::blob::FileRef,
    pub state: FileState,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FileState {
    Complete,
    /// Being fetched: the share verified (0–1), bytes per second, seconds left.
    Downloading {
        share: f64,
        rate: f64,
        eta: Option<u64>,
    },
    /// Part of it is here; it resumes when a peer that has it is connected.
    Waiting {
        share: f64,
    },
    /// Not asked for (larger than the automatic download size).
    Missing,
}

impl FileView {
    fn of(f: &libra_engine::blob::FileRef, node: &Node, net: &NetView) -> FileView {
        use libra_engine::store::blobs::{BlobState, Blobs};
        let blob = f.blob_size().max(1) as f64;
        let state = match Blobs::new(&node.dir).state(&f.root.0) {
            BlobState::Complete => FileState::Complete,
            BlobState::Partial(n) => match net.transfers.get(&f.root.0) {
                Some(t) => FileState::Downloading { share: n as f64 / blob, rate: t.rate, eta: t.eta_secs() },
                None => FileState::Waiting { share: n as f64 / blob },
            },
            BlobState::Missing => FileState::Missing,
        };
        FileView { file: f.clone(), state }
    }
}

#[derive(Debug, Clone)]
pub struct OpenChat {
    pub chat: ChatId,
    pub title: String,
    pub subtitle: String,
    pub messages: Vec<Msg>,
    /// The other person of a direct chat with a contact.
    pub contact: Option<ContactInfo>,
    /// The short ids of the other person's devices (to tell whether any is connected).
    pub devices: Vec<String>,
    /// A group's members (empty for a direct chat).
    pub members: Vec<UserId>,
    /// The chat has messages older than those carried.
    pub earlier: bool,
}

/// Who the other person of a direct chat is, as far as the user checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInfo {
    pub user: UserId,
    pub short: String,
    pub verified: bool,
    /// Added itself with one of our invites and not accepted yet.
    pub introduced: bool,
    /// Another contact has the same name.
    pub collides: bool,
    pub safety_number: String,
}

/// What the UI wants in the next snapshot besides the chat list.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// The open chat, whose messages it carries.
    pub chat: Option<ChatId>,
    /// Text to look for in every chat (at least 2 characters).
    pub search: String,
    /// Messages of the open chat to carry; 0 for [`FIRST_PAGE`].
    pub limit: usize,
}

/// A message found by searching all chats.
#[derive(Debug, Clone)]
pub struct Hit {
    pub chat: ChatId,
    /// What opens the chat (a user id or the chat id in hex).
    pub key: String,
    pub title: String,
    pub id: EntryId,
    pub ms: u64,
    pub from: String,
    pub text: String,
}

/// Most hits shown for one search.
pub const MAX_HITS: usize = 50;

/// What the network knows right now: each connected peer's path, why others are not, and
/// who is visible nearby.
#[derive(Debug, Clone, Default)]
pub struct NetView {
    pub links: BTreeMap<[u8; 32], Link>,
    pub reach: BTreeMap<[u8; 32], Reach>,
    /// Where each contact that introduced us in a hole punch saw us (our public address).
    pub seen_as: BTreeMap<[u8; 32], (std::net::SocketAddr, u64)>,
    /// What the STUN server the user chose says our public address is: server, address, when.
    pub stun: Option<(String, std::net::SocketAddr, u64)>,
    pub nearby: NearbyView,
    /// Downloads under way.
    pub transfers: BTreeMap<[u8; 32], libra_engine::engine::Transfer>,
}

/// While we are visible nearby: until when, and the people visible too.
#[derive(Debug, Clone, Default)]
pub struct NearbyView {
    pub until_ms: Option<u64>,
    pub people: Vec<libra_engine::nearby::Person>,
}

impl NearbyView {
    pub fn of(host: Option<&libra_engine::net::Host>) -> NearbyView {
        let (until_ms, people) = host.map(|h| h.nearby_people()).unwrap_or_default();
        NearbyView { until_ms, people }
    }
}

#[derive(Debug, Clone)]
pub struct PeerRow {
    pub name: String,
    pub short: String,
    pub online: bool,
    /// The path in use ("direct", "LAN", "relayed via Rex", …) while online.
    pub path: Option<String>,
    /// Why the peer is not connected, while offline.
    pub why: Option<String>,
    /// The address in use or remembered — shown locally only.
    pub address: Option<String>,
    /// Our own public address as this peer last saw it (when it introduced us).
    pub sees_you_at: Option<String>,
    pub last_seen_ms: u64,
    pub last_sync_ms: u64,
    pub status: String,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub me: Me,
    pub chats: Vec<ChatRow>,
    pub open: Option<OpenChat>,
    pub peers: Vec<PeerRow>,
    pub contacts: Vec<(UserId, String)>,
    pub total_unread: usize,
    pub nearby: NearbyView,
    /// Our public address as the user's STUN server gave it, and that server.
    pub public_address: Option<(String, String)>,
    /// Messages matching the search over all chats.
    pub hits: Vec<Hit>,
    /// Contacts the user blocked (their chats are hidden).
    pub blocked: Vec<(UserId, String)>,
    /// Open invites: id, uses left, expiry (ms).
    pub invites: Vec<(String, u32, u64)>,
    /// Devices of short invites added here that have not answered with their card yet (short ids).
    pub awaiting: Vec<String>,
    /// The newest message from someone else, for notifications.
    pub newest_incoming: Option<crate::notify::Incoming>,
    /// Files up to this size (bytes) download by themselves.
    pub auto_download: u64,
    /// This user's devices (the trust chain as folded here).
    pub devices: Vec<libra_engine::devices::DeviceInfo>,
    /// This device holds the user key (it can link and revoke).
    pub holds_user_key: bool,
    pub built_us: u128,
}

/// Contacts with the names to show: where two share a name, each is told apart by its short id
/// (and "unverified" unless verified), so an impostor cannot look like someone else.
/// Invisible and bidi-control characters a peer put in a name are shown as escapes
/// (`\u{200b}`), so "Bob" and "Bo\u{200b}b" never look the same.
pub fn contact_names(node: &Node) -> Vec<(UserId, String)> {
    node.distinct_names().into_iter().map(|(u, n)| (u, libra_engine::text::for_terminal(&n))).collect()
}

fn name_of(node: &Node, contacts: &[(UserId, String)], user: &Option<UserId>) -> String {
    match user {
        None => "unknown".into(),
        Some(u) if Some(*u) == node.user_id() => "You".into(),
        Some(u) => contacts.iter().find(|(c, _)| c == u).map_or_else(|| u.short(), |(_, n)| n.clone()),
    }
}

fn preview(m: &MessageView) -> String {
    if m.undecryptable {
        "⚠ could not be decrypted".into()
    } else if m.deleted {
        "message deleted".into()
    } else if let Some(f) = &m.file {
        format!("📎 {}", f.name.chars().take(56).collect::<String>())
    } else {
        m.text.clone().unwrap_or_default().lines().next().unwrap_or("").chars().take(60).collect()
    }
}

impl Snapshot {
    pub fn build(node: &Node, wanted: &Wanted, net: &NetView) -> Snapshot {
        let open = wanted.chat;
        let t = std::time::Instant::now();
        let mut s = Snapshot {
            auto_download: node.store.auto_download().unwrap_or(libra_engine::store::DEFAULT_AUTO_DOWNLOAD),
            ..Snapshot::default()
        };
        if let (Some(u), d) = (node.user_id(), node.device_id()) {
            s.me = Me {
                name: node.name().unwrap_or_default(),
                user_id: u.to_string(),
                user_short: u.short(),
                device_id: d.to_string(),
                device_short: d.short(),
                clock_ahead_ms: node.clock_ahead_ms(libra_engine::clock::wall_ms()),
            };
        }
        s.devices = node.devices(None).unwrap_or_default();
        s.holds_user_key = node.secrets.user.is_some();
        s.contacts = contact_names(node);
        s.blocked = s
            .contacts
            .iter()
            .filter(|(u, _)| node.store.contact_state(u).is_ok_and(|st| st.blocked))
            .cloned()
            .collect();
        s.awaiting = node.awaiting_cards().unwrap_or_default().iter().map(|d| d.short()).collect();
        s.invites = node
            .store
            .open_invites(clock::wall_ms())
            .unwrap_or_default()
            .into_iter()
            .map(|(id, r)| (id, r.uses_left, r.expires_ms))
            .collect();
        for c in node.store.chats().unwrap_or_default() {
            if let ChatKind::Direct(Some(u)) = &c.kind
                && s.blocked.iter().any(|(b, _)| b == u)
            {
                continue;
            }
            let (title, group) = match &c.kind {
                ChatKind::Group { name, .. } => (libra_engine::text::for_terminal(name), true),
                ChatKind::Direct(u) => (name_of(node, &s.contacts, u), false),
            };
            // Chats come most recent first: the first one with unread messages holds the newest.
            if s.newest_incoming.is_none()
                && c.unread > 0
                && let Some(m) = c.last.as_ref().filter(|m| !m.mine)
            {
                s.newest_incoming =
                    Some(crate::notify::Incoming { id: m.id, chat: c.chat, title: title.clone(), preview: preview(m) });
            }
            s.total_unread += c.unread;
            s.chats.push(ChatRow {
                chat: c.chat,
                title,
                group,
                preview: c.last.as_ref().map(preview).unwrap_or_default(),
                last_ms: c.last.as_ref().map_or(0, |m| clock::physical_ms(m.timestamp)),
                unread: c.unread,
            });
        }
        if let Some(chat) = open {
            // A contact with no messages yet is titled with its name, not "New chat".
            let me = node.user_id();
            let title = s
                .chats
                .iter()
                .find(|c| c.chat == chat)
                .map(|c| c.title.clone())
                .or_else(|| {
                    let me = me?;
                    s.contacts.iter().find(|(u, _)| ChatId::direct(&me, u) == chat).map(|(_, n)| n.clone())
                })
                .unwrap_or_default();
            let group = node.store.group(&chat).ok().flatten();
            let subtitle = match &group {
                Some((_, members)) => {
                    let names: Vec<String> = members.iter().map(|m| name_of(node, &s.contacts, &Some(*m))).collect();
                    names.join(", ")
                }
                None => "end-to-end encrypted".into(),
            };
            let limit = if wanted.limit == 0 { FIRST_PAGE } else { wanted.limit };
            let mut views = node.store.messages(&chat, limit + 1).unwrap_or_default();
            let earlier = views.len() > limit;
            if earlier {
                views.remove(0);
            }
            let by_id: BTreeMap<EntryId, String> = views.iter().map(|m| (m.id, preview(m))).collect();
            let messages = views
                .iter()
                .map(|m| Msg {
                    id: m.id,
                    ms: clock::physical_ms(m.timestamp),
                    from: name_of(node, &s.contacts, &m.user),
                    mine: m.mine,
                    text: m.text.clone(),
                    edited: m.edited,
                    deleted: m.deleted,
                    undecryptable: m.undecryptable,
                    reply: m
                        .reply_to
                        .map(|r| (r, by_id.get(&r).cloned().unwrap_or_else(|| "an earlier message".into()))),
                    delivery: m.delivery,
                    file: m.file.as_ref().map(|f| FileView::of(f, node, net)),
                })
                .collect();
            let contact = node.user_id().and_then(|me| {
                let (user, _) = s.contacts.iter().find(|(u, _)| ChatId::direct(&me, u) == chat)?;
                let state = node.store.contact_state(user).unwrap_or_default();
                let name = node.display_name(user).to_lowercase();
                let collides = node
                    .contact_views()
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.user != *user && c.name.to_lowercase() == name);
                Some(ContactInfo {
                    user: *user,
                    short: user.short(),
                    verified: state.verified,
                    introduced: state.introduced,
                    collides,
                    safety_number: node.safety_number_with(user).unwrap_or_default(),
                })
            });
            let devices = contact
                .as_ref()
                .and_then(|c| node.device_certs(&c.user).ok())
                .map(|certs| certs.iter().map(|c| c.body.device.short()).collect())
                .unwrap_or_default();
            let members = group.map(|(_, m)| m.into_iter().collect()).unwrap_or_default();
            s.open = Some(OpenChat { chat, title, subtitle, messages, contact, devices, members, earlier });
        }
        s.peers = Snapshot::peers_of(node, &s.contacts, net);
        s.nearby = net.nearby.clone();
        s.public_address = net.stun.as_ref().map(|(server, at, _)| (at.to_string(), server.clone()));
        if wanted.search.trim().chars().count() >= 2 {
            s.hits = search(node, &s, &wanted.search);
        }
        s.built_us = t.elapsed().as_micros();
        s
    }
    /// The peers view alone: what changes when a peer connects or disconnects.
    pub fn peers_of(node: &Node, contacts: &[(UserId, String)], net: &NetView) -> Vec<PeerRow> {
        let mut out = Vec::new();
        let Ok(owner) = node.device_owners() else { return out };
        for (key, r) in node.store.peers().unwrap_or_default() {
            let user = owner(&key);
            let link = net.links.get(&key);
            let path = link.map(|l| match l.path {
                PathKind::Relayed { via } => {
                    format!("relayed via {}", name_of(node, contacts, &owner(&via)))
                }
                PathKind::Lan => "LAN".into(),
                p => p.label().into(),
            });
            let why = match link {
                Some(_) => None,
                None => Some(Reach::explain(net.reach.get(&key), &r)),
            };
            out.push(PeerRow {
                name: name_of(node, contacts, &user),
                short: libra_engine::identity::DeviceId(libra_engine::codec::Bytes(key)).short(),
                online: link.is_some(),
                path,
                why,
                address: link.map(|l| l.addr.to_string()).or(r.address.clone()),
                sees_you_at: net.seen_as.get(&key).map(|(a, _)| a.to_string()),
                last_seen_ms: r.last_seen_ms,
                last_sync_ms: r.last_sync_ms,
                status: if link.is_some() {
                    if r.behind_by > 0 { format!("syncing, behind by {}", r.behind_by) } else { "in sync".into() }
                } else if r.behind_by > 0 {
                    format!("behind by {}", r.behind_by)
                } else if r.last_sync_ms > 0 {
                    "in sync at last contact".into()
                } else {
                    "never synced".into()
                },
            });
        }
        out
    }
}

/// The hits of a search over all chats, titled as the chat list titles them.
fn search(node: &Node, s: &Snapshot, needle: &str) -> Vec<Hit> {
    let me = node.user_id();
    node.store
        .search(needle, MAX_HITS)
        .unwrap_or_default()
        .into_iter()
        .map(|(chat, m)| {
            let direct = me.and_then(|me| s.contacts.iter().find(|(u, _)| ChatId::direct(&me, u) == chat));
            let title = s
                .chats
                .iter()
                .find(|c| c.chat == chat)
                .map(|c| c.title.clone())
                .or_else(|| direct.map(|(_, n)| n.clone()))
                .unwrap_or_else(|| "a chat".into());
            Hit {
                chat,
                key: direct.map_or_else(|| chat.to_hex(), |(u, _)| u.to_string()),
                title,
                id: m.id,
                ms: clock::physical_ms(m.timestamp),
                from: name_of(node, &s.contacts, &m.user),
                text: m.text.unwrap_or_default(),
            }
        })
        .collect()
}

impl Snapshot {
    /// Why messages in the open direct chat wait at one tick: none of the other person's
    /// devices is connected (then the first one's reason), else nothing.
    pub fn waiting(&self) -> Option<String> {
        let open = self.open.as_ref()?;
        let rows: Vec<&PeerRow> = self.peers.iter().filter(|p| open.devices.contains(&p.short)).collect();
        if open.devices.is_empty() || rows.iter().any(|p| p.online) {
            return None;
        }
        let why = rows.iter().find_map(|p| p.why.clone()).unwrap_or_else(|| "not connected".into());
        Some(format!("{} is offline: {why}. Messages wait here and go out when a path opens.", open.title))
    }
}
