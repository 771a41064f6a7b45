//! The views. Each is a function of the app state drawing into a `Ui`; adding a view means
//! adding a `Tab` and one module here.

pub mod chats;
pub mod connect;
pub mod devices;
pub mod files;
pub mod identity;
pub mod links;
pub mod onboarding;
pub mod people;
pub mod settings;
pub mod trust;
pub mod widgets;

use chrono::{DateTime, Local, NaiveDate};

/// A millisecond timestamp in this machine's time zone.
fn local(ms: u64) -> DateTime<Local> {
    let utc = DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or_default();
    utc.with_timezone(&Local)
}

/// The local calendar day of a timestamp.
pub fn local_day(ms: u64) -> NaiveDate {
    local(ms).date_naive()
}

/// `HH:MM`, local time.
/// A duration for people: "40 s", "3 min", "2 h".
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{:.1} h", secs as f64 / 3600.0),
    }
}

pub fn clock_time(ms: u64) -> String {
    local(ms).format("%H:%M").to_string()
}

/// A day as people say it: "Today", "Yesterday", the weekday within a week, else the date.
pub fn day_label(ms: u64) -> String {
    day_label_at(ms, libra_engine::clock::wall_ms())
}

fn day_label_at(ms: u64, now_ms: u64) -> String {
    let (day, today) = (local_day(ms), local_day(now_ms));
    match (today - day).num_days() {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        2..=6 => local(ms).format("%A").to_string(),
        _ => local(ms).format("%-d %B %Y").to_string(),
    }
}

/// A short "when" for lists: the time today, "yesterday", else how long ago.
pub fn when(ms: u64, now_ms: u64) -> String {
    if ms == 0 {
        return "never".into();
    }
    match (local_day(now_ms) - local_day(ms)).num_days() {
        0 => clock_time(ms),
        1 => "yesterday".into(),
        d if d < 7 => format!("{d}d ago"),
        d => format!("{}w ago", d / 7),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_told_as_people_say_them() {
        let now = 1_796_000_000_000; // late November 2026
        let day = 86_400_000;
        assert_eq!(day_label_at(now, now), "Today");
        assert_eq!(day_label_at(now - day, now), "Yesterday");
        assert_eq!(when(now - day, now), "yesterday");
        assert_eq!(when(0, now), "never");
        assert!(day_label_at(now - 30 * day, now).ends_with("2026"));
    }
}
