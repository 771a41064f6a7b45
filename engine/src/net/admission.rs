//! Admission of incoming connections (spec/connectivity.md, "Limits on incoming
//! connections"): caps on handshakes in progress and on connections held, per source address
//! and in total, so one source (a stranger holding an invite, or anyone who can reach the
//! port) cannot exhaust the node. What is over a cap is refused before any cryptography.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Handshakes in progress from one address, and in all.
pub const MAX_HANDSHAKES_PER_IP: usize = 16;
pub const MAX_HANDSHAKES: usize = 256;
/// Connections held from one address, and in all.
pub const MAX_CONNECTIONS_PER_IP: usize = 64;
pub const MAX_CONNECTIONS: usize = 1024;

#[derive(Default)]
struct Counts {
    handshakes: BTreeMap<IpAddr, usize>,
    connections: BTreeMap<IpAddr, usize>,
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
        Some(Ticket { admission: self.clone(), ip, established: false })
    }
}

fn down(map: &mut BTreeMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&ip);
        }
    }
}

impl Ticket {
    /// The handshake completed: count a connection instead.
    pub(crate) fn established(&mut self) {
        if self.established {
            return;
        }
        self.established = true;
        if let Ok(mut c) = self.admission.counts.lock() {
            down(&mut c.handshakes, self.ip);
            c.handshakes_total = c.handshakes_total.saturating_sub(1);
            *c.connections.entry(self.ip).or_default() += 1;
            c.connections_total += 1;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut c) = self.admission.counts.lock() {
            if self.established {
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
        for t in &mut held {
            t.established();
        }
        let more: Vec<Ticket> = (0..MAX_CONNECTIONS_PER_IP - MAX_HANDSHAKES_PER_IP)
            .map(|_| {
                let mut t = a.admit(flood).expect("admitted");
                t.established();
                t
            })
            .collect();
        assert!(a.admit(flood).is_none(), "64 connections from one address are the most");
        drop(more);
        assert!(a.admit(flood).is_some(), "closing connections frees their slots");
    }
}
