//! A hybrid logical clock: `timestamp = physical_ms << 16 | counter`.
//!
//! Timestamps of one log strictly increase even when the wall clock steps back; observing a
//! peer's timestamp moves the clock forward, but never more than [`MAX_DRIFT_MS`] ahead of our
//! own wall clock, so a peer with a broken clock cannot drag ours into the future.

/// How far ahead of the local wall clock an observed timestamp may move the clock.
pub const MAX_DRIFT_MS: u64 = 60_000;

/// How far past the local wall clock an entry from elsewhere may be stamped and still be
/// stored now (a day: a clock set to the wrong time zone is still let through).
pub const MAX_AHEAD_MS: u64 = 86_400_000;

const COUNTER_BITS: u32 = 16;

/// The physical part of a timestamp, in milliseconds since the Unix epoch.
pub fn physical_ms(ts: u64) -> u64 {
    ts >> COUNTER_BITS
}

/// How far `timestamp` is stamped past the wall-clock time `now_ms`, in ms (0 if not past).
pub fn ahead_ms(timestamp: u64, now_ms: u64) -> u64 {
    physical_ms(timestamp).saturating_sub(now_ms)
}

/// Whether an entry stamped `timestamp` is too far past `now_ms` to be stored yet (more than
/// [`MAX_AHEAD_MS`]; spec/log.md 7.2, `ahead`).
pub fn too_far_ahead(timestamp: u64, now_ms: u64) -> bool {
    ahead_ms(timestamp, now_ms) > MAX_AHEAD_MS
}

/// The wall-clock time from which an entry stamped `timestamp` is no longer too far ahead.
pub fn due_ms(timestamp: u64) -> u64 {
    physical_ms(timestamp).saturating_sub(MAX_AHEAD_MS)
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

/// The UTC calendar date `(year, month, day)` of a time in milliseconds since the epoch
/// (Howard Hinnant's civil-from-days).
pub fn civil_date(ms: u64) -> (i64, u32, u32) {
    let days = i64::try_from(ms / 86_400_000).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 UTC text of a time in milliseconds since the epoch.
pub fn rfc3339(ms: u64) -> String {
    let (y, m, d) = civil_date(ms);
    let rem = (ms / 1000) % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
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
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(civil_date(951_782_400_000), (2000, 2, 29));
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
