//! Managing people: a new group (name and members), adding people to a group or leaving it,
//! and giving a contact a name of your own. Each is a small form opened in place.

use std::collections::BTreeSet;

use eframe::egui::{self, RichText};
use libra_engine::identity::UserId;

use super::chats::{ChatAction, ChatsState};
use crate::model::{OpenChat, Snapshot};

/// Which form is open, with what was typed or picked so far.
#[derive(Default)]
pub enum Form {
    #[default]
    None,
    NewGroup {
        name: String,
        picked: BTreeSet<UserId>,
    },
    AddMembers {
        picked: BTreeSet<UserId>,
    },
    Rename {
        name: String,
    },
    RemoveMembers {
        picked: BTreeSet<UserId>,
    },
    RenameGroup {
        name: String,
    },
    /// "Leave this group?" awaiting a yes.
    Leave,
    /// "Block this contact?" awaiting a yes.
    Block,
}

/// Contacts to tick, each with the name shown for it.
fn pick(ui: &mut egui::Ui, people: &[(UserId, String)], picked: &mut BTreeSet<UserId>) {
    egui::ScrollArea::vertical().id_salt("pick-people").max_height(160.0).show(ui, |ui| {
        for (u, name) in people {
            let mut on = picked.contains(u);
            if ui.checkbox(&mut on, name).changed() {
                if on {
                    picked.insert(*u);
                } else {
                    picked.remove(u);
                }
            }
        }
    });
}

/// "New group" under the chat list.
pub fn new_group(ui: &mut egui::Ui, snap: &Snapshot, state: &mut ChatsState, actions: &mut Vec<ChatAction>) {
    match &mut state.form {
        Form::NewGroup { name, picked } => {
            let mut done = false;
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(RichText::new("New group").strong());
                ui.add(egui::TextEdit::singleline(name).hint_text("Group name").desired_width(f32::INFINITY));
                if snap.contacts.is_empty() {
                    ui.label(RichText::new("Add contacts first (Connect).").weak());
                }
                pick(ui, &snap.contacts, picked);
                ui.horizontal(|ui| {
                    let ready = !name.trim().is_empty() && !picked.is_empty();
                    if ui.add_enabled(ready, egui::Button::new("Create group")).clicked() {
                        actions.push(ChatAction::CreateGroup {
                            name: name.trim().to_owned(),
                            members: picked.iter().copied().collect(),
                        });
                        done = true;
                    }
                    if ui.button("Cancel").clicked() {
                        done = true;
                    }
                });
            });
            if done {
                state.form = Form::None;
            }
        }
        _ => {
            if ui.small_button("New group…").clicked() {
                state.form = Form::NewGroup { name: String::new(), picked: BTreeSet::new() };
            }
        }
    }
}

/// The buttons and forms of an open chat's header: rename a contact, or add people to and
/// leave a group.
pub fn chat_tools(
    ui: &mut egui::Ui,
    snap: &Snapshot,
    open: &OpenChat,
    key: &str,
    state: &mut ChatsState,
    actions: &mut Vec<ChatAction>,
) {
    let group = open.contact.is_none() && !open.members.is_empty();
    ui.horizontal(|ui| {
        if let Some(c) = &open.contact
            && ui
                .small_button("Rename…")
                .on_hover_text("A name of your own for this contact; they never see it")
                .clicked()
        {
            state.form = Form::Rename { name: open.title.split(" (").next().unwrap_or_default().to_owned() };
            let _ = c;
        }
        if open.contact.is_some() && ui.small_button("Block…").clicked() {
            state.form = Form::Block;
        }
        if group {
            if ui.small_button("Add people…").clicked() {
                state.form = Form::AddMembers { picked: BTreeSet::new() };
            }
            if ui.small_button("Remove people…").clicked() {
                state.form = Form::RemoveMembers { picked: BTreeSet::new() };
            }
            if ui.small_button("Rename group…").clicked() {
                state.form = Form::RenameGroup { name: open.title.clone() };
            }
            if ui.small_button("Leave group…").clicked() {
                state.form = Form::Leave;
            }
        }
    });
    let mut done = false;
    match &mut state.form {
        Form::Rename { name } => {
            if let Some(c) = &open.contact {
                ui.horizontal(|ui| {
                    ui.add(egui::TextEdit::singleline(name).hint_text("Your name for them").desired_width(200.0));
                    if ui.add_enabled(!name.trim().is_empty(), egui::Button::new("Save")).clicked() {
                        actions.push(ChatAction::RenameContact { user: c.user, name: name.trim().to_owned() });
                        done = true;
                    }
                    if ui.button("Cancel").clicked() {
                        done = true;
                    }
                });
            }
        }
        Form::AddMembers { picked } if group => {
            let outside: Vec<(UserId, String)> =
                snap.contacts.iter().filter(|(u, _)| !open.members.contains(u)).cloned().collect();
            if outside.is_empty() {
                ui.label(RichText::new("Every contact is in this group already.").weak());
            }
            pick(ui, &outside, picked);
            ui.horizontal(|ui| {
                if ui.add_enabled(!picked.is_empty(), egui::Button::new("Add to group")).clicked() {
                    actions.push(ChatAction::AddMembers {
                        key: key.to_owned(),
                        members: picked.iter().copied().collect(),
                    });
                    done = true;
                }
                if ui.button("Cancel").clicked() {
                    done = true;
                }
            });
        }
        Form::RemoveMembers { picked } if group => {
            let me = UserId::parse(&snap.me.user_id).ok();
            let inside: Vec<(UserId, String)> = open
                .members
                .iter()
                .filter(|u| Some(**u) != me)
                .map(|u| {
                    let name = snap.contacts.iter().find(|(c, _)| c == u).map_or_else(|| u.short(), |(_, n)| n.clone());
                    (*u, name)
                })
                .collect();
            pick(ui, &inside, picked);
            ui.horizontal(|ui| {
                if ui.add_enabled(!picked.is_empty(), egui::Button::new("Remove from group")).clicked() {
                    actions.push(ChatAction::RemoveMembers {
                        key: key.to_owned(),
                        members: picked.iter().copied().collect(),
                    });
                    done = true;
                }
                if ui.button("Cancel").clicked() {
                    done = true;
                }
            });
        }
        Form::RenameGroup { name } if group => {
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(name).hint_text("Group name").desired_width(200.0));
                if ui.add_enabled(!name.trim().is_empty(), egui::Button::new("Rename")).clicked() {
                    actions.push(ChatAction::RenameGroup { key: key.to_owned(), name: name.trim().to_owned() });
                    done = true;
                }
                if ui.button("Cancel").clicked() {
                    done = true;
                }
            });
        }
        Form::Block => {
            if let Some(c) = &open.contact {
                ui.horizontal_wrapped(|ui| {
                    ui.label("Block them? Their devices can no longer connect, you can no longer write to them, and this chat is hidden (unblock under Settings).");
                    if ui.button("Block").clicked() {
                        actions.push(ChatAction::Block { user: c.user, blocked: true });
                        done = true;
                    }
                    if ui.button("Cancel").clicked() {
                        done = true;
                    }
                });
            }
        }
        Form::Leave if group => {
            ui.horizontal(|ui| {
                ui.label("Leave this group? You will no longer receive its messages.");
                if ui.button("Leave").clicked() {
                    actions.push(ChatAction::Leave { key: key.to_owned() });
                    done = true;
                }
                if ui.button("Stay").clicked() {
                    done = true;
                }
            });
        }
        _ => {}
    }
    if done {
        state.form = Form::None;
    }
}
