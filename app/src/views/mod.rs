//! The views. Each is a function of the app state drawing into a `Ui`; adding a view means
//! adding a `Tab` and one module here.

pub mod chats;
pub mod connect;
pub mod identity;
pub mod onboarding;
pub mod settings;
pub mod trust;
pub mod widgets;

/// `HH:MM` (UTC) of a millisecond timestamp.
pub fn clock_time(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60)
}

/// A short "when" for lists: time today, else the date.
pub fn when(ms: u64, now_ms: u64) -> String {
    if ms == 0 {
        return "never".into();
    }
    if now_ms / 86_400_000 == ms / 86_400_000 {
        clock_time(ms)
    } else {
        let days = now_ms.saturating_sub(ms) / 86_400_000;
        if days < 7 { format!("{days}d ago") } else { format!("{}w ago", days / 7) }
    }
}
