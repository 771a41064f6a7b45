//! A hybrid logical clock: `timestamp = physical_ms << 16 | counter`.
//!
//! Timestamps of one log strictly increase even when the wall clock steps back; observing a
//! peer's timestamp moves the clock forward, but never more than [`MAX_DRIFT_MS`] ahead of our
//! own wall clock, so a peer with a broken clock cannot drag ours into the future.

/// How far ahead of the local wall clock an observed timestamp may move the clock.
pub const MAX_DRIFT_MS: u64 = 60_000;

const COUNTER_BITS: u32 = 16;

/// The physical part of a timestamp, in milliseconds since the Unix epoch.
pub fn physical_ms(ts: u64) -> u64 {
    ts >> COUNTER_BITS
}

/// The timestamp of physical time `ms` with counter 0.
pub fn from_ms(ms: u64) -> u64 {
    ms.saturating_mul(1 << COUNTER_BITS)
}

/// The clock state: the greatest timestamp issued or accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hlc {
    last: u64,
}

impl Hlc {
    pub fn new(last: u64) -> Self {
        Hlc { last }
    }

    pub fn last(&self) -> u64 {
        self.last
    }

    /// A new timestamp greater than everything seen and than `floor` (the log's own head).
    pub fn tick(&mut self, now_ms: u64, floor: u64) -> u64 {
        let next = from_ms(now_ms).max(self.last.saturating_add(1)).max(floor.saturating_add(1));
        self.last = next;
        next
    }

    /// Takes note of a timestamp from elsewhere, bounded by the drift limit.
    pub fn observe(&mut self, ts: u64, now_ms: u64) {
        let bound = from_ms(now_ms.saturating_add(MAX_DRIFT_MS));
        self.last = self.last.max(ts.min(bound));
    }
}

/// Milliseconds since the Unix epoch from the system clock (0 if it is before 1970).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_through_clock_steps() {
        let mut c = Hlc::default();
        let a = c.tick(1000, 0);
        let b = c.tick(999, a); // wall clock stepped back
        let d = c.tick(1000, 0);
        assert!(a < b && b < d);
        assert_eq!(physical_ms(a), 1000);
    }

    #[test]
    fn observe_is_bounded() {
        let mut c = Hlc::default();
        c.observe(u64::MAX, 1000);
        assert_eq!(physical_ms(c.last()), 1000 + MAX_DRIFT_MS);
        c.observe(5, 1000);
        assert_eq!(physical_ms(c.last()), 1000 + MAX_DRIFT_MS);
    }
}
