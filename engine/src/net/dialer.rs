//! Dialers: one task per allowed peer that has an address, keeping a live session with it.
//! They start with the host and whenever the allow-list or an address changes (adding a contact
//! whose invite carries an address dials it at once), back off after failures (1 s doubling to
//! 60 s, reset after a session that got going), can be cancelled, and report their state as
//! engine events. Addresses may be names: they are resolved at every attempt.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Host, NetError};
use crate::engine::{DialState, Event};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a dialer looks whether a peer connected by another path is still connected.
const ONLINE_RECHECK: Duration = Duration::from_secs(5);

/// The running dial tasks, by peer device.
#[derive(Default)]
pub(crate) struct Dialers {
    pub(crate) tasks: Mutex<BTreeMap<[u8; 32], tokio::task::AbortHandle>>,
    /// When the machine's network last changed (`netwatch`; wall ms, 0: not since the start):
    /// back-offs start over, and a session from before is ending, its path likely dead.
    pub(crate) changed_ms: std::sync::atomic::AtomicU64,
}

impl Dialers {
    pub(crate) fn changed_ms(&self) -> u64 {
        self.changed_ms.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Checks that `s` looks like `HOST:PORT` (a name or an IP address and a port); it is resolved
/// only when dialled.
pub fn check_address(s: &str) -> Result<(), NetError> {
    let bad = || NetError::Address(s.to_owned());
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with('-');
    if name_ok { Ok(()) } else { Err(bad()) }
}

/// Resolves `HOST:PORT` (a name or an IP address) to socket addresses.
pub async fn resolve(s: &str) -> Result<Vec<SocketAddr>, NetError> {
    check_address(s)?;
    let found: Vec<SocketAddr> =
        tokio::net::lookup_host(s).await.map_err(|_| NetError::Address(s.to_owned()))?.collect();
    if found.is_empty() {
        return Err(NetError::Address(s.to_owned()));
    }
    Ok(found)
}

impl Host {
    /// Starts dialling every allowed peer with an address, and keeps the set of dialers in step
    /// with the allow-list for as long as the host lives.
    pub fn run_dialers(self: &Arc<Self>) {
        self.watch_network();
        let host = self.clone();
        let mut events = self.engine.subscribe();
        tokio::spawn(async move {
            loop {
                host.refresh_dialers();
                loop {
                    match events.recv().await {
                        Ok(Event::Interest) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
    }

    /// The allowed peers with an address, and their addresses, as the store has them now.
    fn dial_targets(&self) -> BTreeMap<[u8; 32], Vec<String>> {
        self.engine
            .read(|n| {
                n.store
                    .peers()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(_, r)| r.allowed)
                    .map(|(k, r)| (k, r.dial_addresses()))
                    .filter(|(_, a)| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts dialers for peers that gained an address and stops those no longer allowed. A
    /// running dialer is never restarted for a new address (that would end its live session):
    /// it reads the addresses afresh at every attempt.
    pub(crate) fn refresh_dialers(self: &Arc<Self>) {
        let targets = self.dial_targets();
        let Ok(mut tasks) = self.dialers.tasks.lock() else { return };
        tasks.retain(|device, handle| {
            let keep = targets.contains_key(device) && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        for device in targets.into_keys() {
            if tasks.contains_key(&device) {
                continue;
            }
            let h = self.clone();
            let task = tokio::spawn(async move { h.dial_loop(device).await });
            tasks.insert(device, task.abort_handle());
        }
    }

    /// Stops dialling `device` (until the allow-list or its addresses change again).
    pub fn cancel_dial(&self, device: &[u8; 32]) -> bool {
        let removed = self.dialers.tasks.lock().ok().and_then(|mut t| t.remove(device));
        match removed {
            Some(handle) => {
                handle.abort();
                self.engine.emit(Event::Dial { device: *device, state: DialState::Stopped });
                true
            }
            None => false,
        }
    }

    pub(crate) fn last_sync(&self, device: &[u8; 32]) -> u64 {
        self.engine.read(|n| n.store.peer(device).ok().flatten().map_or(0, |r| r.last_sync_ms)).unwrap_or(0)
    }

    async fn dial_loop(self: Arc<Self>, device: [u8; 32]) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let Some(addrs) = self.dial_targets().remove(&device) else { return };
            // Connected already on a path of our own (it dialled us, or LAN discovery found it):
            // look again later. A relayed session does not stop us trying a direct path.
            if self.engine.direct_since(&device, self.dialers.changed_ms()) {
                tokio::time::sleep(ONLINE_RECHECK).await;
                continue;
            }
            let mut reason = String::new();
            'addresses: for a in &addrs {
                let resolved = match resolve(a).await {
                    Ok(r) => r,
                    Err(e) => {
                        reason = e.to_string();
                        continue;
                    }
                };
                for addr in resolved {
                    self.engine.emit(Event::Dial { device, state: DialState::Connecting });
                    let synced_before = self.last_sync(&device);
                    let r = self.connect(addr, Some(device), true).await;
                    // A live session that got going and then lost its connection counts as
                    // good: dial again soon.
                    if self.last_sync(&device) > synced_before {
                        backoff = FIRST_BACKOFF;
                    }
                    match r {
                        Ok(_) => {
                            reason = "the session ended".into();
                            break 'addresses;
                        }
                        Err(e) => reason = e.to_string(),
                    }
                }
            }
            let retry_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
            self.engine.emit(Event::Dial { device, state: DialState::Waiting { retry_ms, reason } });
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
