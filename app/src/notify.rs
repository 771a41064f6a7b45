//! Desktop notifications for new messages: which message deserves one, and showing it off
//! the UI thread (a D-Bus call on Linux). Where no notification service runs (a bare X
//! server, a CI machine), nothing is shown and nothing fails.

use libra_engine::log::EntryId;
use libra_engine::messaging::ChatId;

/// The newest message from someone else: its id, chat, chat title and preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub id: EntryId,
    pub chat: ChatId,
    pub title: String,
    pub preview: String,
}

/// What the app knows when a snapshot arrives.
pub struct Moment<'a> {
    pub newest: Option<&'a Incoming>,
    /// The newest message already considered (`None` before the first snapshot: what is
    /// there at start is not news).
    pub seen: Option<EntryId>,
    pub started: bool,
    pub focused: bool,
    pub open_chat: Option<ChatId>,
    pub enabled: bool,
    pub show_preview: bool,
}

/// The notification to show, `(summary, body)`, if any: a new message, notifications on, and
/// not in the chat the user is looking at.
pub fn decide(m: &Moment<'_>) -> Option<(String, String)> {
    let n = m.newest?;
    if !m.started || m.seen == Some(n.id) || !m.enabled {
        return None;
    }
    if m.focused && m.open_chat == Some(n.chat) {
        return None;
    }
    let body = if m.show_preview { n.preview.clone() } else { "New message".to_owned() };
    Some((n.title.clone(), body))
}

/// Shows a notification; errors (no service) are logged, never shown.
pub fn show(summary: String, body: String) {
    std::thread::spawn(move || {
        if let Err(e) = notify_rust::Notification::new().appname("Libra").summary(&summary).body(&body).show() {
            tracing::info!(error = %e, "no desktop notification service");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use libra_engine::codec::Bytes;

    #[test]
    fn only_news_outside_the_open_chat_is_notified_and_previews_can_be_hidden() {
        let msg = Incoming {
            id: EntryId(Bytes([1; 32])),
            chat: ChatId(Bytes([2; 16])),
            title: "Ben".into(),
            preview: "the tent".into(),
        };
        let base = Moment {
            newest: Some(&msg),
            seen: Some(EntryId(Bytes([0; 32]))),
            started: true,
            focused: false,
            open_chat: Some(msg.chat),
            enabled: true,
            show_preview: true,
        };
        assert_eq!(decide(&base), Some(("Ben".into(), "the tent".into())), "in the background, even the open chat");
        assert_eq!(decide(&Moment { focused: true, ..base }), None, "looking at that chat");
        assert!(decide(&Moment { focused: true, open_chat: None, ..base }).is_some(), "another chat");
        assert_eq!(decide(&Moment { show_preview: false, ..base }), Some(("Ben".into(), "New message".into())));
        assert_eq!(decide(&Moment { enabled: false, ..base }), None);
        assert_eq!(decide(&Moment { seen: Some(msg.id), ..base }), None, "already notified");
        assert_eq!(decide(&Moment { started: false, ..base }), None, "what is there at start is not news");
    }
}
