//! The LAN discovery driver: sends this node's beacons ([`crate::discovery`]) by UDP broadcast
//! on every IPv4 interface (and to the IPv6 all-nodes group on every link), listens for
//! others', and connects to the peers it recognises, authenticated by QUIC as usual. The
//! address a peer was found at is remembered (source LAN, never passed on); nothing about it
//! is logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{Host, NetError};
use crate::discovery::{self, Beacon, MAX_BEACON, Pairs, Tag};
use crate::engine::{Engine, PathKind};
use crate::nearby;
use crate::short_invite;
use crate::store::AddressSource;

/// How LAN discovery runs.
#[derive(Debug, Clone, Copy)]
pub struct LanConfig {
    /// The UDP port beacons are sent to and received on.
    pub port: u16,
    /// Time between two rounds of beacons.
    pub interval: Duration,
    /// Length of a tag epoch (spec: 300 s; tests shorten it).
    pub epoch_secs: u64,
}

impl Default for LanConfig {
    fn default() -> LanConfig {
        LanConfig { port: discovery::DEFAULT_PORT, interval: Duration::from_secs(5), epoch_secs: discovery::EPOCH_SECS }
    }
}

/// The IPv6 all-nodes link-local group.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// What the receiver matches beacons against: the tags expected around the current epoch.
#[derive(Default)]
struct Expected {
    epoch: u32,
    tags: HashMap<(u32, Tag), [u8; 32]>,
}

fn socket(domain: Domain, port: u16) -> std::io::Result<UdpSocket> {
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Several nodes on one machine (and other programs) may listen for beacons too; every
    // socket bound with SO_REUSEADDR gets each broadcast (SO_REUSEPORT would hand each
    // datagram to one of them only).
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    let addr: SocketAddr = match domain {
        Domain::IPV6 => {
            s.set_only_v6(true)?;
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))
        }
        _ => {
            s.set_broadcast(true)?;
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
        }
    };
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// The peers this node would talk to, with their pair secrets: allowed peer devices and our
/// own other devices whose agreement keys we know (from contact cards and our user's
/// certificates). Secrets already derived are reused (`cache`).
fn pairs(engine: &Engine, cache: &mut BTreeMap<[u8; 32], ([u8; 32], [u8; 32])>) -> Pairs {
    let own_device = engine.device();
    let wanted = engine
        .read(|n| {
            let allowed: BTreeSet<[u8; 32]> = n.store.allowed_peers().unwrap_or_default().into_iter().collect();
            let mut certs: Vec<crate::identity::DeviceCert> =
                n.store.contacts().unwrap_or_default().into_iter().flat_map(|(_, c)| c.certs).collect();
            if let Some(u) = n.user_id() {
                certs.extend(n.device_certs(&u).unwrap_or_default());
            }
            let agreements: BTreeMap<[u8; 32], [u8; 32]> = certs
                .into_iter()
                .map(|c| (*c.body.device.as_bytes(), c.body.agreement.0))
                .filter(|(d, _)| {
                    *d != own_device
                        && (allowed.contains(d)
                            || n.store.trust().owner_of(&crate::identity::DeviceId(crate::codec::Bytes(*d)))
                                == n.user_id())
                })
                .collect();
            // Beacons use the certificates' agreement keys on both sides, which never rotate
            // (spec/devices.md): our own is kept among our past secrets after a rotation.
            let secret = n
                .own_cert()
                .and_then(|c| n.secrets.agreement_for(&c.body.agreement.0))
                .unwrap_or_else(|| n.secrets.device.agreement().clone());
            (agreements, secret)
        })
        .ok();
    let Some((agreements, secret)) = wanted else { return Pairs { own_device, ..Pairs::default() } };
    cache.retain(|d, (a, _)| agreements.get(d) == Some(a));
    for (d, a) in &agreements {
        cache.entry(*d).or_insert_with(|| (*a, discovery::pair_secret(&secret, &own_device, d, a)));
    }
    let mut peers: Vec<PeerSecret> = cache.iter().map(|(d, (_, s))| (*d, *s)).collect();
    let (awaiting, invites) = invite_pairs(engine);
    peers.extend(awaiting);
    Pairs { own_device, peers, invites }
}

/// A peer device and the secret its tags are keyed by.
type PeerSecret = ([u8; 32], [u8; 32]);

/// Most open invites our beacons carry a tag for (the newest).
const MAX_INVITE_TAGS: usize = 16;

/// The LAN side of short invites (spec/connectivity.md): the devices of short invites we
/// added, each with the secret of its token (we recognise its beacons), and the secrets of
/// our own newest open invites (our beacons carry their tags).
fn invite_pairs(engine: &Engine) -> (Vec<PeerSecret>, Vec<[u8; 32]>) {
    engine
        .read(|n| {
            let awaiting = n
                .awaiting_cards()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|d| {
                    let token = n.store.peer(&d.0.0).ok().flatten()?.intro_token?;
                    Some((d.0.0, short_invite::beacon_secret(&token.0)))
                })
                .collect();
            let open = n.store.open_invite_tokens(crate::clock::wall_ms()).unwrap_or_default();
            let invites =
                open.iter().rev().take(MAX_INVITE_TAGS).map(|(t, _)| short_invite::beacon_secret(t)).collect();
            (awaiting, invites)
        })
        .unwrap_or_default()
}

/// Where beacons go: every IPv4 interface's broadcast address, and the IPv6 all-nodes group
/// on every interface with a link-local address.
fn destinations(port: u16) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let mut v4 = Vec::new();
    for i in if_addrs::get_if_addrs().unwrap_or_default() {
        if i.is_loopback() {
            continue;
        }
        if let if_addrs::IfAddr::V4(a) = &i.addr {
            // The subnet's broadcast address, from the netmask: what getifaddrs reports for an
            // address added without one is 0.0.0.0 or the address itself.
            let b = Ipv4Addr::from(u32::from(a.ip) | !u32::from(a.netmask));
            if b == a.ip {
                continue; // a /32: nobody else on that link
            }
            v4.push(SocketAddr::from((b, port)));
        }
    }
    let mut v6: Vec<SocketAddr> =
        ipv6_links().into_iter().map(|index| SocketAddr::V6(SocketAddrV6::new(ALL_NODES, port, 0, index))).collect();
    v4.sort();
    v4.dedup();
    v6.sort();
    v6.dedup();
    (v4, v6)
}

/// The indexes of the links with an IPv6 link-local address (not loopback): where the
/// all-nodes group reaches neighbours. `if_addrs` leaves every fe80:: address out, so Linux's
/// own list is read; elsewhere, every non-loopback interface `if_addrs` knows is tried.
fn ipv6_links() -> Vec<u32> {
    if let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") {
        return parse_if_inet6(&text);
    }
    let mut out: Vec<u32> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .filter_map(|i| i.index)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `/proc/net/if_inet6`: one address a line — hex address, hex interface index, prefix
/// length, scope (0x20: link), flags, interface name.
fn parse_if_inet6(text: &str) -> Vec<u32> {
    let mut out: Vec<u32> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, index, scope, name) = (f.first()?, f.get(1)?, f.get(3)?, f.get(5)?);
            let link_local = addr.len() == 32 && addr.starts_with("fe80") && *scope == "20" && *name != "lo";
            link_local.then(|| u32::from_str_radix(index, 16).ok()).flatten()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Host {
    /// Starts LAN discovery: beacons out every `interval`, and a connection to each recognised
    /// peer that is not already connected. Runs until the host's runtime ends.
    pub fn run_lan(self: &Arc<Self>, cfg: LanConfig) -> Result<(), NetError> {
        let v4 = Arc::new(socket(Domain::IPV4, cfg.port)?);
        // IPv6 is best effort: a machine without it still discovers over IPv4.
        let v6 = socket(Domain::IPV6, cfg.port).ok().map(Arc::new);
        self.lan_on.store(true, std::sync::atomic::Ordering::Relaxed);
        let expected: Arc<Mutex<Expected>> = Arc::default();
        let (host, sender_v4, sender_v6, exp) = (self.clone(), v4.clone(), v6.clone(), expected.clone());
        tokio::spawn(async move {
            let mut cache = BTreeMap::new();
            let mut joined = BTreeSet::new();
            let mut events = host.engine.subscribe();
            loop {
                let pairs = pairs(&host.engine, &mut cache);
                let epoch = discovery::epoch_of(crate::clock::wall_ms(), cfg.epoch_secs);
                if let Ok(mut e) = exp.lock() {
                    *e = Expected { epoch, tags: pairs.expected(epoch) };
                }
                let port = host.local_addr().map_or(0, |a| a.port());
                let (to4, to6) = destinations(cfg.port);
                // The all-nodes group is joined per link (index 0 would be the default route's
                // link only, and a link without IPv4 often has none); links that appear later
                // are joined as they come.
                if let Some(s) = &sender_v6 {
                    for d in &to6 {
                        if let SocketAddr::V6(d) = d
                            && joined.insert(d.scope_id())
                        {
                            let _ = s.join_multicast_v6(&ALL_NODES, d.scope_id());
                        }
                    }
                }
                let mut datagrams: Vec<Vec<u8>> = pairs.beacons(port, epoch).iter().map(Beacon::encode).collect();
                if let Ok(n) = host.nearby.lock()
                    && let Some(d) = n.as_ref().and_then(|n| n.datagram(crate::clock::wall_ms()))
                {
                    datagrams.push(d.to_vec());
                }
                for bytes in datagrams {
                    for d in &to4 {
                        let _ = sender_v4.send_to(&bytes, d).await;
                    }
                    if let Some(s) = &sender_v6 {
                        for d in &to6 {
                            let _ = s.send_to(&bytes, d).await;
                        }
                    }
                }
                // Next round after the interval, or at once when contacts change.
                let wait = tokio::time::sleep(cfg.interval);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        () = &mut wait => break,
                        ev = events.recv() => match ev {
                            Ok(crate::engine::Event::Interest) => break,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                            _ => {}
                        },
                    }
                }
            }
        });
        let dialing: Arc<Mutex<BTreeSet<[u8; 32]>>> = Arc::default();
        for sock in std::iter::once(v4).chain(v6) {
            let (host, exp, dialing) = (self.clone(), expected.clone(), dialing.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; MAX_BEACON.max(crate::nearby::MAX_ANNOUNCEMENT) + 1];
                loop {
                    let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    if buf[..n].starts_with(&crate::nearby::MAGIC) {
                        host.nearby_received(&buf[..n], from);
                        continue;
                    }
                    let Ok(beacon) = Beacon::decode(&buf[..n]) else { continue };
                    let found = match exp.lock() {
                        Ok(e) if e.epoch.abs_diff(beacon.epoch) <= 1 => discovery::recognise(&beacon, &e.tags),
                        _ => continue,
                    };
                    // The sender's address with its node's port; a link-local IPv6 sender keeps
                    // its scope (reachable only through the interface its beacon came in on).
                    let mut at = from;
                    at.set_port(beacon.port);
                    for device in found {
                        host.lan_found(device, at, &dialing);
                    }
                }
            });
        }
        Ok(())
    }

    /// Becomes visible nearby for `minutes`: a fresh invite (up to [`nearby::INVITE_USES`]
    /// introductions, valid as long as the window) is announced to the LAN with every round
    /// of beacons, and announcements of others who are visible are listed. Returns when it
    /// ends (wall-clock ms). Blocks on a store write: call it off the async threads.
    pub fn nearby_start(&self, minutes: u32) -> Result<u64, NetError> {
        let minutes = nearby::check_minutes(minutes).map_err(|e| NetError::Nearby(e.to_string()))?;
        if !self.lan_on.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(NetError::Nearby("LAN discovery is off (`serve --no-lan` or the app's setting)".into()));
        }
        self.nearby_stop();
        let window = u64::from(minutes) * 60_000;
        let port = self.local_addr()?.port();
        let made = self
            .engine
            .write(move |n| -> Result<_, NetError> {
                let inv =
                    n.invite_for(None, nearby::INVITE_USES, window).map_err(|e| NetError::Nearby(e.to_string()))?;
                let ann = nearby::Announcement::new(port, &inv).map_err(|e| NetError::Nearby(e.to_string()))?;
                let id = inv.token.map(|t| crate::store::invite_id(&t.0)).unwrap_or_default();
                Ok((inv.user(), ann, id))
            })
            .map_err(|e| NetError::Nearby(e.to_string()))??;
        let until = crate::clock::wall_ms().saturating_add(window);
        if let Ok(mut n) = self.nearby.lock() {
            *n = Some(nearby::Nearby::new(made.0, &made.1, made.2, until));
        }
        // The next round of beacons carries it at once.
        self.engine.emit(crate::engine::Event::Interest);
        Ok(until)
    }

    /// Stops being visible nearby and revokes the invite it announced.
    pub fn nearby_stop(&self) -> bool {
        let Some(old) = self.nearby.lock().ok().and_then(|mut n| n.take()) else { return false };
        let id = old.invite_id.clone();
        let _ = self.engine.write(move |n| n.store.revoke_invites(Some(&id), crate::clock::wall_ms()));
        true
    }

    /// Who is visible nearby now (empty when we are not), and until when we are.
    pub fn nearby_people(&self) -> (Option<u64>, Vec<nearby::Person>) {
        let now = crate::clock::wall_ms();
        match self.nearby.lock().ok().as_ref().and_then(|n| n.as_ref().filter(|n| n.active(now)).cloned()) {
            Some(n) => (Some(n.until_ms), n.people()),
            None => (None, Vec::new()),
        }
    }

    fn nearby_received(&self, bytes: &[u8], from: SocketAddr) {
        // As for beacons: an endpoint on IPv4 could not dial back an IPv6 sender.
        if !self.reaches(from) {
            return;
        }
        let now = crate::clock::wall_ms();
        let new = match self.nearby.lock() {
            Ok(mut n) => match n.as_mut() {
                Some(n) => n.receive(bytes, from, now).ok().flatten().is_some(),
                None => false,
            },
            Err(_) => false,
        };
        if new {
            self.engine.emit(crate::engine::Event::Nearby);
        }
    }

    /// A peer's beacon came from `addr`: remember the address and connect, unless a session
    /// with it runs already or a LAN dial is under way.
    fn lan_found(self: &Arc<Self>, device: [u8; 32], addr: SocketAddr, dialing: &Arc<Mutex<BTreeSet<[u8; 32]>>>) {
        // Connected on a path of our own already (a relayed session is replaced by this one).
        if self.engine.direct(&device) {
            return;
        }
        // An endpoint on IPv4 cannot dial an IPv6 address (one on [::] reaches both).
        if !self.reaches(addr) {
            return;
        }
        if !dialing.lock().is_ok_and(|mut d| d.insert(device)) {
            return;
        }
        let (host, dialing) = (self.clone(), dialing.clone());
        tokio::spawn(async move {
            // A beacon is easy to replay from elsewhere: only an address where the peer proved
            // its key in the handshake is remembered.
            if let Ok(conn) = host.dial(addr, Some(device), crate::sync::ALPN).await {
                host.remember_lan(device, addr).await;
                let _ = super::sync_protocol::session(&host.engine, conn, true, true, host.limits, PathKind::Lan).await;
            }
            if let Ok(mut d) = dialing.lock() {
                d.remove(&device);
            }
        });
    }

    async fn remember_lan(&self, device: [u8; 32], addr: SocketAddr) {
        let text = addr.to_string();
        let remembered = self
            .engine
            .write_async(move |n| {
                let mut rec = n.store.peer(&device)?.unwrap_or_default();
                if !rec.addresses.iter().any(|a| a.addr == text && a.source == AddressSource::Lan) {
                    rec.remember_address(&text, AddressSource::Lan);
                    // Not a change of who may connect: no Interest event, no dialer restart.
                    n.store.set_peer(&device, &rec, false)?;
                }
                Ok::<(), crate::store::StoreError>(())
            })
            .await;
        match remembered {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not remember a LAN address"),
            Err(e) => tracing::warn!(error = %e, "could not remember a LAN address"),
        }
    }
}

/// The addresses this host can be dialled at from the same network: its bound address, or,
/// when bound to every interface, each interface's address with the bound port (loopback last).
/// For codes a user shows their own devices and for punching (spec/connectivity.md, section
/// 4), never for beacons or logs.
pub(crate) fn own_addresses(bound: SocketAddr) -> Vec<String> {
    own_socket_addrs(bound).into_iter().map(|a| a.to_string()).collect()
}

/// [`own_addresses`], as addresses.
pub(crate) fn own_socket_addrs(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut loopback = Vec::new();
    for i in if_addrs::get_if_addrs().unwrap_or_default() {
        let ip = i.ip();
        if ip.is_ipv6()
            && (bound.is_ipv4() || matches!(&i.addr, if_addrs::IfAddr::V6(a) if a.ip.is_unicast_link_local()))
        {
            continue;
        }
        if ip.is_ipv4() && bound.is_ipv6() {
            continue;
        }
        let a = SocketAddr::new(ip, bound.port());
        if i.is_loopback() { loopback.push(a) } else { out.push(a) }
    }
    out.sort();
    out.dedup();
    out.extend(loopback);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipv6_links_are_read_from_linux_list() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    fe80000000000000a830bffffed70f3e 848 40 20 80     v6xa\n\
                    fd000000000000000000000000000002 02 40 00 80     eth0\n\
                    fe8000000000000000fcfffffe000001 02 40 20 80     eth0\n\
                    garbage\n";
        assert_eq!(parse_if_inet6(text), vec![2, 0x848]);
        assert_eq!(parse_if_inet6(""), Vec::<u32>::new());
    }
}
