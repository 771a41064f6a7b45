//! The chat list and the conversation: bubbles, delivery ticks, replies, edits, deletions,
//! search, and a composer where Enter sends and Shift+Enter starts a new line.

use eframe::egui::{self, Align, Color32, Layout, RichText};
use libra_engine::identity::UserId;
use libra_engine::log::EntryId;
use libra_engine::messaging::ChatId;
use libra_engine::store::Delivery;

use super::widgets::{avatar, badge};
use super::{clock_time, when};
use crate::model::{Msg, Snapshot};

/// What the user asked for in these views; the app carries it out.
pub enum ChatAction {
    Open {
        chat: ChatId,
        key: String,
    },
    Send {
        key: String,
        text: String,
        reply_to: Option<EntryId>,
    },
    Edit {
        key: String,
        id: EntryId,
        text: String,
    },
    Delete {
        key: String,
        id: EntryId,
    },
    MarkRead {
        key: String,
    },
    SendFile {
        key: String,
        path: std::path::PathBuf,
    },
    /// Download a file that does not download by itself.
    WantFile(libra_engine::blob::FileRef),
    /// Save a downloaded file to Downloads (and open it).
    SaveFile {
        file: libra_engine::blob::FileRef,
        open: bool,
    },
    /// The user compared the safety number (or takes that back).
    Verify {
        user: UserId,
        verified: bool,
    },
    /// The user accepts a contact that introduced itself.
    Accept {
        user: UserId,
    },
    CreateGroup {
        name: String,
        members: Vec<UserId>,
    },
    AddMembers {
        key: String,
        members: Vec<UserId>,
    },
    Leave {
        key: String,
    },
    RemoveMembers {
        key: String,
        members: Vec<UserId>,
    },
    RenameGroup {
        key: String,
        name: String,
    },
    RenameContact {
        user: UserId,
        name: String,
    },
    Block {
        user: UserId,
        blocked: bool,
    },
    /// Search every chat for this text (empty: stop searching).
    SearchAll(String),
    /// Open a chat at a message found by searching, filtered by the search.
    OpenAt {
        chat: ChatId,
        key: String,
        id: EntryId,
        needle: String,
    },
    /// Carry earlier messages of the open chat.
    Earlier,
}

#[derive(Default)]
pub struct ChatsState {
    /// The open chat and the name that resolves it (a user id or the chat id in hex).
    pub open: Option<(ChatId, String)>,
    pub composer: String,
    pub reply_to: Option<(EntryId, String)>,
    pub editing: Option<EntryId>,
    pub search: String,
    pub last_marked: Option<EntryId>,
    /// The safety number panel is open.
    pub verifying: bool,
    /// A form for groups and contacts, open in place.
    pub form: super::people::Form,
    /// A message of our own the user asked to delete, awaiting a yes.
    pub deleting: Option<EntryId>,
    /// The search over all chats, as typed.
    pub search_all: String,
    /// A message to scroll to once shown (opened from a search hit).
    pub jump_to: Option<EntryId>,
    /// The attach row is open, with the path typed so far.
    pub attaching: Option<String>,
    /// Thumbnails of pictures.
    pub thumbs: crate::thumbs::Thumbs,
}

pub fn list(ui: &mut egui::Ui, snap: &Snapshot, state: &mut ChatsState, now_ms: u64, actions: &mut Vec<ChatAction>) {
    let typed = ui.add(
        egui::TextEdit::singleline(&mut state.search_all).hint_text("Search all chats").desired_width(f32::INFINITY),
    );
    if typed.changed() {
        actions.push(ChatAction::SearchAll(state.search_all.trim().to_owned()));
    }
    if state.search_all.trim().chars().count() >= 2 {
        hits(ui, snap, state, now_ms, actions);
        return;
    }
    super::people::new_group(ui, snap, state, actions);
    if snap.chats.is_empty() && snap.contacts.is_empty() {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            ui.label(RichText::new("No chats yet").strong());
            ui.label(RichText::new("Add a contact under Connect, or share your invite from Identity.").weak().small());
        });
    }
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        for c in &snap.chats {
            let selected = state.open.as_ref().is_some_and(|(id, _)| *id == c.chat);
            let resp = row(ui, selected, |ui| {
                avatar(ui, &c.title, 36.0);
                ui.vertical(|ui| {
                    // Time and badge first, from the right: a long title is cut, never pushes them
                    // out. One row high (the horizontal), else the layout takes the whole height.
                    ui.horizontal(|ui| {
                        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                            badge(ui, c.unread);
                            ui.label(RichText::new(when(c.last_ms, now_ms)).small().weak());
                            if c.group {
                                ui.label(RichText::new("group").small().weak());
                            }
                            ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                                ui.add(egui::Label::new(RichText::new(&c.title).strong()).truncate());
                            });
                        });
                    });
                    ui.add(egui::Label::new(RichText::new(&c.preview).weak()).truncate());
                });
            });
            if resp.clicked() {
                actions.push(ChatAction::Open { chat: c.chat, key: c.chat.to_hex() });
            }
        }
        // Contacts without a conversation yet: one click starts one.
        let me: Option<UserId> = UserId::parse(&snap.me.user_id).ok();
        let fresh: Vec<&(UserId, String)> = snap
            .contacts
            .iter()
            .filter(|(u, _)| me.is_some_and(|m| !snap.chats.iter().any(|c| c.chat == ChatId::direct(&m, u))))
            .filter(|(u, _)| !snap.blocked.iter().any(|(b, _)| b == u))
            .collect();
        if !fresh.is_empty() {
            ui.add_space(8.0);
            ui.label(RichText::new("Contacts").small().weak());
            for (u, name) in fresh {
                let resp = row(ui, false, |ui| {
                    avatar(ui, name, 28.0);
                    ui.add(egui::Label::new(name.as_str()).truncate());
                });
                if resp.clicked()
                    && let Some(m) = me
                {
                    actions.push(ChatAction::Open { chat: ChatId::direct(&m, u), key: u.to_string() });
                }
            }
        }
    });
}

/// The messages found in every chat, newest first; one click opens the chat there.
fn hits(ui: &mut egui::Ui, snap: &Snapshot, state: &ChatsState, now_ms: u64, actions: &mut Vec<ChatAction>) {
    if snap.hits.is_empty() {
        ui.label(RichText::new("No messages found.").weak());
        return;
    }
    egui::ScrollArea::vertical().id_salt("hits").auto_shrink([false, false]).show(ui, |ui| {
        for h in &snap.hits {
            let resp = row(ui, false, |ui| {
                ui.vertical(|ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(&h.title).strong());
                        ui.label(RichText::new(when(h.ms, now_ms)).small().weak());
                    });
                    let snippet: String = h.text.lines().next().unwrap_or("").chars().take(80).collect();
                    ui.label(RichText::new(format!("{}: {snippet}", h.from)).weak());
                });
            });
            if resp.clicked() {
                actions.push(ChatAction::OpenAt {
                    chat: h.chat,
                    key: h.key.clone(),
                    id: h.id,
                    needle: state.search_all.trim().to_owned(),
                });
            }
        }
    });
}

fn row(ui: &mut egui::Ui, selected: bool, add: impl FnOnce(&mut egui::Ui)) -> egui::Response {
    let fill = if selected { ui.visuals().selection.bg_fill.gamma_multiply(0.35) } else { Color32::TRANSPARENT };
    let inner =
        egui::Frame::new().fill(fill).corner_radius(8.0).inner_margin(egui::Margin::symmetric(8, 6)).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(add);
        });
    let resp = inner.response.interact(egui::Sense::click());
    if resp.hovered() && !selected {
        ui.painter().rect_filled(resp.rect, 8.0, ui.visuals().widgets.hovered.bg_fill.gamma_multiply(0.25));
    }
    resp
}

fn bubble(ui: &mut egui::Ui, m: &Msg, state: &mut ChatsState, actions: &mut Vec<ChatAction>) {
    let jump = state.jump_to == Some(m.id);
    let own = m.mine;
    let max = (ui.available_width() * 0.72).max(160.0);
    // Size the bubble to its widest line (text wrapped at `max`, sender, quote, time).
    let measure = |t: &str, size: f32| {
        ui.painter().layout(t.to_owned(), egui::FontId::proportional(size), Color32::WHITE, max).size().x
    };
    let body = if m.undecryptable {
        "⚠ This message could not be decrypted.".to_owned()
    } else if m.deleted {
        "message deleted".to_owned()
    } else {
        m.text.clone().unwrap_or_default()
    };
    let mut width = measure(&body, 14.5).max(measure(&m.from, 11.0)).max(70.0);
    if let Some((_, q)) = &m.reply {
        width = width.max(measure(&format!("↳ {q}"), 11.0) + 8.0);
    }
    if m.file.is_some() {
        width = width.max(250.0);
    }
    let width = width.min(max);
    let layout = if own { Layout::right_to_left(Align::TOP) } else { Layout::left_to_right(Align::TOP) };
    ui.with_layout(layout, |ui| {
        let fill =
            if own { Color32::from_rgb(0x2b, 0x5a, 0x9e) } else { ui.visuals().faint_bg_color.gamma_multiply(1.6) };
        let resp = egui::Frame::new()
            .fill(fill)
            .corner_radius(12.0)
            .inner_margin(egui::Margin::symmetric(10, 6))
            .show(ui, |ui| {
                ui.set_width(width);
                ui.vertical(|ui| {
                    if !own {
                        ui.label(RichText::new(&m.from).small().strong().color(super::widgets::color_for(&m.from)));
                    }
                    if let Some((_, quoted)) = &m.reply {
                        egui::Frame::new().fill(Color32::from_black_alpha(40)).corner_radius(6.0).inner_margin(4).show(
                            ui,
                            |ui| {
                                ui.label(RichText::new(format!("↳ {quoted}")).small().italics());
                            },
                        );
                    }
                    let text_color = if own { Color32::WHITE } else { ui.visuals().text_color() };
                    if m.undecryptable {
                        ui.label(
                            RichText::new("⚠ This message could not be decrypted.")
                                .italics()
                                .color(ui.visuals().warn_fg_color),
                        );
                    } else if m.deleted {
                        ui.label(RichText::new("message deleted").italics().weak());
                    } else {
                        if let Some(f) = &m.file {
                            let thumb = state.thumbs.get(ui.ctx(), &f.file);
                            super::files::card(ui, f, thumb, text_color, actions);
                        }
                        let text = m.text.as_deref().unwrap_or("");
                        if m.file.is_none() || !text.is_empty() {
                            super::links::message_text(ui, text, text_color, 14.5);
                        }
                    }
                    ui.horizontal(|ui| {
                        let meta = format!("{}{}", if m.edited { "edited · " } else { "" }, clock_time(m.ms));
                        ui.label(RichText::new(meta).small().color(text_color.gamma_multiply(0.7)));
                        if let Some(d) = m.delivery {
                            super::widgets::ticks(ui, d);
                        }
                    });
                });
            })
            .response;
        let resp = resp.interact(egui::Sense::click());
        if jump {
            resp.scroll_to_me(Some(Align::Center));
            state.jump_to = None;
        }
        resp.context_menu(|ui| {
            if !m.deleted && !m.undecryptable {
                if ui.button("Reply").clicked() {
                    state.reply_to = Some((m.id, m.text.clone().unwrap_or_default()));
                    ui.close();
                }
                if ui.button("Copy").clicked() {
                    ui.ctx().copy_text(m.text.clone().unwrap_or_default());
                    ui.close();
                }
            }
            if own && !m.deleted {
                if ui.button("Edit").clicked() {
                    state.editing = Some(m.id);
                    state.composer = m.text.clone().unwrap_or_default();
                    ui.close();
                }
                if ui.button("Delete…").clicked() {
                    state.deleting = Some(m.id);
                    ui.close();
                }
            }
        });
    });
    ui.add_space(4.0);
}

/// The open chat: header (who, trust, tools), messages, composer; and why messages at one
/// tick have not gone out (the other person is offline).
pub fn conversation(ui: &mut egui::Ui, snap: &Snapshot, state: &mut ChatsState, actions: &mut Vec<ChatAction>) {
    let open = snap.open.as_ref();
    let waiting = snap.waiting();
    let waiting = waiting.as_deref();
    let Some((chat_id, key)) = state.open.clone() else {
        ui.centered_and_justified(|ui| {
            ui.label(RichText::new("Select a chat, or start one with a contact.").weak());
        });
        return;
    };
    let open = open.filter(|o| o.chat == chat_id);
    let title = open.map(|o| o.title.clone()).filter(|t| !t.is_empty()).unwrap_or_else(|| "New chat".into());
    // Header.
    egui::Panel::top("chat-header").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            avatar(ui, &title, 32.0);
            // The search field first, from the right: a long title is cut, never pushes it out.
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let w = (ui.available_width() * 0.35).clamp(90.0, 160.0);
                ui.add(egui::TextEdit::singleline(&mut state.search).hint_text("Search in chat").desired_width(w));
                ui.with_layout(Layout::top_down(Align::Min), |ui| {
                    ui.add(egui::Label::new(RichText::new(&title).strong().size(16.0)).truncate());
                    let sub = open.map_or("end-to-end encrypted", |o| o.subtitle.as_str());
                    ui.add(egui::Label::new(RichText::new(sub).small().weak()).truncate());
                });
            });
        });
        if let Some(c) = open.and_then(|o| o.contact.as_ref()) {
            super::trust::header(ui, c, state, actions);
        }
        if let Some(o) = open {
            super::people::chat_tools(ui, snap, o, &key, state, actions);
        }
        ui.add_space(4.0);
    });
    // Composer.
    egui::Panel::bottom("composer").show(ui, |ui| {
        ui.add_space(6.0);
        if let Some(id) = state.deleting {
            ui.horizontal(|ui| {
                ui.label("Delete this message for everyone in the chat?");
                if ui.button("Delete").clicked() {
                    actions.push(ChatAction::Delete { key: key.clone(), id });
                    state.deleting = None;
                }
                if ui.button("Keep").clicked() {
                    state.deleting = None;
                }
            });
        }
        let unsent = open.is_some_and(|o| o.messages.iter().any(|m| m.mine && m.delivery == Some(Delivery::Sent)));
        if let Some(why) = waiting.filter(|_| unsent) {
            ui.label(RichText::new(format!("Not sent yet: {why}")).small().weak());
        }
        // Connected or not, contacts hold what this device writes while its stamps are ahead.
        if let Some(ms) = snap.me.clock_ahead_ms {
            ui.colored_label(ui.visuals().warn_fg_color, libra_engine::control::clock_ahead_text(ms));
        }
        if let Some((_, quoted)) = state.reply_to.clone() {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(format!("Replying to: {}", quoted.chars().take(80).collect::<String>()))
                        .small()
                        .weak(),
                );
                if ui.small_button("✕").on_hover_text("Cancel reply").clicked() {
                    state.reply_to = None;
                }
            });
        }
        if state.editing.is_some() {
            ui.horizontal(|ui| {
                ui.label(RichText::new("Editing your message").small().weak());
                if ui.small_button("✕").on_hover_text("Cancel edit").clicked() {
                    state.editing = None;
                    state.composer.clear();
                }
            });
        }
        let id = egui::Id::unique("libra-composer");
        let focused = ui.memory(|m| m.has_focus(id));
        // Enter sends; Shift+Enter falls through to the text box as a new line.
        let send = focused && ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Enter));
        ui.horizontal(|ui| {
            if ui
                .add(egui::Button::new("📎").min_size(egui::vec2(28.0, 36.0)))
                .on_hover_text("Send a file (or drop files on the window)")
                .clicked()
            {
                state.attaching = if state.attaching.is_some() { None } else { Some(String::new()) };
            }
            let edit = egui::TextEdit::multiline(&mut state.composer)
                .id(id)
                .hint_text("Write a message…  (Enter sends, Shift+Enter for a new line)")
                .desired_rows(2)
                .desired_width(ui.available_width() - 70.0);
            ui.add(edit);
            let clicked = ui
                .add_enabled(
                    !state.composer.trim().is_empty(),
                    egui::Button::new("Send").min_size(egui::vec2(60.0, 36.0)),
                )
                .clicked();
            if (send || clicked) && !state.composer.trim().is_empty() {
                let text = state.composer.trim_end().to_owned();
                match state.editing.take() {
                    Some(mid) => actions.push(ChatAction::Edit { key: key.clone(), id: mid, text }),
                    None => actions.push(ChatAction::Send {
                        key: key.clone(),
                        text,
                        reply_to: state.reply_to.take().map(|(r, _)| r),
                    }),
                }
                state.composer.clear();
                ui.memory_mut(|m| m.request_focus(id));
            }
        });
        if let Some(path) = &mut state.attaching
            && super::files::attach_row(ui, path, &key, actions)
        {
            state.attaching = None;
        }
        ui.add_space(6.0);
    });
    // Messages.
    egui::CentralPanel::default().show(ui, |ui| {
        let Some(open) = open else {
            ui.centered_and_justified(|ui| ui.label(RichText::new("Say hello").weak()));
            return;
        };
        if open.messages.is_empty() {
            ui.centered_and_justified(|ui| ui.label(RichText::new("No messages yet. Say hello").weak()));
            return;
        }
        let needle = state.search.trim().to_lowercase();
        // Stays at the bottom while new messages arrive; stays put while reading history.
        egui::ScrollArea::vertical().stick_to_bottom(true).auto_shrink([false, false]).show(ui, |ui| {
            ui.add_space(8.0);
            if open.earlier && ui.vertical_centered(|ui| ui.button("Show earlier messages")).inner.clicked() {
                actions.push(ChatAction::Earlier);
            }
            let mut last_day = None;
            let mut shown = 0;
            for m in &open.messages {
                if !needle.is_empty() && !m.text.as_deref().unwrap_or("").to_lowercase().contains(&needle) {
                    continue;
                }
                shown += 1;
                let day = super::local_day(m.ms);
                if Some(day) != last_day {
                    last_day = Some(day);
                    ui.vertical_centered(|ui| ui.label(RichText::new(super::day_label(m.ms)).small().weak()));
                }
                bubble(ui, m, state, actions);
            }
            if shown == 0 {
                ui.label(RichText::new(format!("No messages match “{}”.", state.search.trim())).weak());
            }
        });
        // Reading the newest incoming message marks the chat read.
        if let Some(last) = open.messages.iter().rev().find(|m| !m.mine)
            && state.last_marked != Some(last.id)
            && ui.ctx().input(|i| i.focused)
        {
            state.last_marked = Some(last.id);
            actions.push(ChatAction::MarkRead { key: key.clone() });
        }
    });
}
