//! Notices when the machine's network changes under a running node — one of its addresses gone
//! (another Wi-Fi, a cable pulled, a VPN down) or the machine back from sleep — and starts every
//! path afresh at once, instead of leaving each dead connection to its idle timeout (a minute)
//! while the NATs on the way have forgotten it. Local knowledge only: it logs the cause, never
//! an address.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::Host;

/// How often the addresses are looked at.
const EVERY: Duration = Duration::from_secs(2);
/// Wall-clock time beyond [`EVERY`] between two looks that means the machine slept (the
/// monotonic clock stands still during a suspend; the wall clock does not).
const SLEPT: Duration = Duration::from_secs(10);

/// The addresses paths can use: every interface's, but loopback.
fn addresses(bound: SocketAddr) -> BTreeSet<IpAddr> {
    super::lan::own_socket_addrs(bound).into_iter().map(|a| a.ip()).filter(|ip| !ip.is_loopback()).collect()
}

/// Why paths should start afresh, if they should: an address that was there is gone, or more
/// wall-clock time passed since the last look than a look takes (the machine slept). A new
/// address alone changes nothing: the paths in use still work.
fn changed(known: &BTreeSet<IpAddr>, seen: &BTreeSet<IpAddr>, wall_gap: Duration) -> Option<&'static str> {
    if known.iter().any(|a| !seen.contains(a)) {
        Some("an address of this machine is gone")
    } else if wall_gap > EVERY + SLEPT {
        Some("back from sleep")
    } else {
        None
    }
}

impl Host {
    /// Watches the network for as long as the host lives (started with the dialers).
    pub(crate) fn watch_network(self: &Arc<Self>) {
        let Ok(bound) = self.local_addr() else { return };
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut known = addresses(bound);
            let mut wall = SystemTime::now();
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(host) = host.upgrade() else { return };
                if host.closed.load(Ordering::Relaxed) {
                    return;
                }
                let now = SystemTime::now();
                let seen = addresses(bound);
                let change = changed(&known, &seen, now.duration_since(wall).unwrap_or_default());
                (wall, known) = (now, seen);
                if let Some(cause) = change {
                    tracing::info!(cause, "network changed: starting every path afresh");
                    host.network_changed();
                }
            }
        });
    }

    /// Ends every session (their paths may be dead; the peers' NATs may have forgotten them),
    /// restarts every dialer at its first back-off, and has the relay dialer forget its
    /// back-off: each peer is tried again at once, from where the machine is now.
    pub(crate) fn network_changed(self: &Arc<Self>) {
        self.dialers.changed_ms.store(crate::clock::wall_ms(), Ordering::Relaxed);
        self.engine.disconnect_all();
        if let Ok(mut tasks) = self.dialers.tasks.lock() {
            for (_, task) in std::mem::take(&mut *tasks) {
                task.abort();
            }
        }
        self.refresh_dialers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_address_or_a_sleep_starts_paths_afresh_and_a_new_address_does_not() {
        let set = |ips: &[&str]| ips.iter().map(|i| i.parse().expect("ip")).collect::<BTreeSet<IpAddr>>();
        let (home, cafe) = (set(&["192.168.1.5"]), set(&["10.0.0.7"]));
        let tick = EVERY;
        assert_eq!(changed(&home, &home, tick), None);
        assert_eq!(changed(&home, &cafe, tick), Some("an address of this machine is gone"));
        assert_eq!(changed(&home, &set(&[]), tick), Some("an address of this machine is gone"));
        assert_eq!(changed(&home, &set(&["192.168.1.5", "10.8.0.2"]), tick), None, "a VPN came up");
        assert_eq!(changed(&home, &home, EVERY + SLEPT + Duration::from_secs(1)), Some("back from sleep"));
        assert_eq!(changed(&home, &home, EVERY + SLEPT), None);
    }
}
