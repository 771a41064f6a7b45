//! Admission of incoming connections (spec/connectivity.md, "Limits on incoming
//! connections"): caps on handshakes in progress and on connections held, per source address,
//! per key and in total, so one source (a stranger holding an invite, or anyone who can reach
//! the port) cannot exhaust the node. What is over an address or total cap is refused before
//! any cryptography; what is over the key cap, as soon as the handshake shows the key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Handshakes in progress from one address, and in all.
pub const MAX_HANDSHAKES_PER_IP: usize = 16;
pub const MAX_HANDSHAKES: usize = 256;
/// Connections held from one address, and in all.
pub const MAX_CONNECTIONS_PER_IP: usize = 64;
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections held by one device key, from any address (a peer needs one for sync, one for
/// files and a few relayed ones).
pub const MAX_CONNECTIONS_PER_KEY: usize = 16;

#[derive(Default)]
struct Counts {
    handshakes: BTreeMap<IpAddr, usize>,
    connections: BTreeMap<IpAddr, usize>,
    keys: BTreeMap<[u8; 32], usize>,
    handshakes_total: usize,
    connections_total: usize,
}

/// The counts shared by the accept loop and its connection tasks.
#[derive(Clone, Default)]
pub(crate) struct Admission {
    counts: Arc<Mutex<Counts>>,
}

/// One admitted connection: a handshake until [`Ticket::established`], then a connection; its
/// count goes down when dropped.
pub(crate) struct Ticket {
    admission: Admission,
    ip: IpAddr,
    established: bool,
    key: Option<[u8; 32]>,
}

impl Admission {
    /// Admits a handshake from `ip`, or refuses it (`None`) when a cap is reached.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<Ticket> {
        let mut c = self.counts.lock().ok()?;
        let from_ip = c.handshakes.get(&ip).copied().unwrap_or(0);
        let held = c.connections.get(&ip).copied().unwrap_or(0);
        if from_ip >= MAX_HANDSHAKES_PER_IP
            || c.handshakes_total >= MAX_HANDSHAKES
            || held >= MAX_CONNECTIONS_PER_IP
            || c.connections_total >= MAX_CONNECTIONS
        {
            return None;
        }
        *c.handshakes.entry(ip).or_default() += 1;
        c.handshakes_total += 1;
        Some(Ticket { admission: self.clone(), ip, established: false, key: None })
    }
}

fn down<K: Ord>(map: &mut BTreeMap<K, usize>, k: K) {
    if let Some(n) = map.get_mut(&k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&k);
        }
    }
}

impl Ticket {
    /// The handshake completed with `key`: count a connection instead. False when the key
    /// already holds [`MAX_CONNECTIONS_PER_KEY`] (the caller closes this one; its handshake
    /// slot stays counted until the ticket is dropped).
    pub(crate) fn established(&mut self, key: [u8; 32]) -> bool {
        if self.established {
            return true;
        }
        let Ok(mut c) = self.admission.counts.lock() else { return false };
        let n = c.keys.entry(key).or_default();
        if *n >= MAX_CONNECTIONS_PER_KEY {
            return false;
        }
        *n += 1;
        self.established = true;
        self.key = Some(key);
        down(&mut c.handshakes, self.ip);
        c.handshakes_total = c.handshakes_total.saturating_sub(1);
        *c.connections.entry(self.ip).or_default() += 1;
        c.connections_total += 1;
        true
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut c) = self.admission.counts.lock() {
            if self.established {
                if let Some(k) = self.key {
                    down(&mut c.keys, k);
                }
                down(&mut c.connections, self.ip);
                c.connections_total = c.connections_total.saturating_sub(1);
            } else {
                down(&mut c.handshakes, self.ip);
                c.handshakes_total = c.handshakes_total.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_is_capped_and_others_still_get_in() {
        let a = Admission::default();
        let flood: IpAddr = "192.0.2.1".parse().expect("ip");
        let honest: IpAddr = "192.0.2.2".parse().expect("ip");
        let mut held: Vec<Ticket> = (0..MAX_HANDSHAKES_PER_IP).map(|_| a.admit(flood).expect("admitted")).collect();
        assert!(a.admit(flood).is_none(), "the 17th handshake from one address is refused");
        assert!(a.admit(honest).is_some(), "another address is not");
        // Established connections free handshake slots, up to the connection cap.
        for (i, t) in held.iter_mut().enumerate() {
            assert!(t.established([i as u8; 32]));
        }
        let more: Vec<Ticket> = (0..MAX_CONNECTIONS_PER_IP - MAX_HANDSHAKES_PER_IP)
            .map(|i| {
                let mut t = a.admit(flood).expect("admitted");
                assert!(t.established([100 + i as u8; 32]));
                t
            })
            .collect();
        assert!(a.admit(flood).is_none(), "64 connections from one address are the most");
        drop(more);
        assert!(a.admit(flood).is_some(), "closing connections frees their slots");
    }

    #[test]
    fn one_key_is_capped_from_any_address() {
        let a = Admission::default();
        let key = [7; 32];
        let mut held = Vec::new();
        for i in 0..MAX_CONNECTIONS_PER_KEY {
            let mut t = a.admit(IpAddr::from([192, 0, 2, i as u8])).expect("admitted");
            assert!(t.established(key));
            held.push(t);
        }
        let mut over = a.admit("198.51.100.1".parse().expect("ip")).expect("a new address is admitted");
        assert!(!over.established(key), "the 17th connection of one key is refused");
        assert!(over.established([8; 32]), "another key is not");
        held.pop();
        let mut t = a.admit("198.51.100.2".parse().expect("ip")).expect("admitted");
        assert!(t.established(key), "closing a connection frees its slot");
    }

    #[test]
    fn the_totals_cap_handshakes_and_connections_from_many_addresses() {
        let a = Admission::default();
        let ip = |i: usize| IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
        // Handshakes from many addresses, each under its own cap, meet the total.
        let mut pending: Vec<Ticket> = (0..MAX_HANDSHAKES).map(|i| a.admit(ip(i)).expect("admitted")).collect();
        assert!(a.admit(ip(MAX_HANDSHAKES)).is_none(), "handshake 257 is refused from a new address");
        // Completing them frees handshake slots and fills the connection total.
        for (i, t) in pending.iter_mut().enumerate() {
            assert!(t.established(*blake3::hash(&i.to_le_bytes()).as_bytes()));
        }
        let mut held = pending;
        for i in MAX_HANDSHAKES..MAX_CONNECTIONS {
            let mut t = a.admit(ip(i)).expect("admitted");
            assert!(t.established(*blake3::hash(&i.to_le_bytes()).as_bytes()));
            held.push(t);
        }
        assert!(a.admit(ip(MAX_CONNECTIONS)).is_none(), "with 1024 held, a new address is refused");
        held.truncate(MAX_CONNECTIONS - 1);
        assert!(a.admit(ip(MAX_CONNECTIONS)).is_some(), "a closed connection frees its slot");
    }
}
