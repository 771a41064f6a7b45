//! Stable codes for why a command failed, so scripts can tell failures apart (`--json` prints
//! `{"error": {"code": …, "message": …}}`). The message is for people and may change; the
//! code does not.

use crate::messenger::MessengerError;
use crate::node::NodeError;
use crate::store::StoreError;

/// The code of the first error in `e`'s chain that has one; `"failed"` otherwise.
pub fn error_code(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(m) = cause.downcast_ref::<MessengerError>() {
            return messenger(m);
        }
        if let Some(n) = cause.downcast_ref::<NodeError>() {
            return node(n);
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return store(s);
        }
        if cause.downcast_ref::<crate::net::NetError>().is_some() {
            return "network";
        }
        if let Some(d) = cause.downcast_ref::<crate::devices::DeviceError>() {
            return match d {
                crate::devices::DeviceError::Node(n) => node(n),
                crate::devices::DeviceError::NoUserKey => "no_user_key",
                crate::devices::DeviceError::WrongPhrase => "wrong_phrase",
                crate::devices::DeviceError::NotOurs(_) => "not_found",
                crate::devices::DeviceError::RevokeSelf(_) => "bad_argument",
            };
        }
        if cause.downcast_ref::<crate::phrase::PhraseError>().is_some() {
            return "bad_phrase";
        }
        if cause.downcast_ref::<crate::link::LinkError>().is_some() {
            return "bad_link_code";
        }
        if cause.downcast_ref::<crate::text::TextError>().is_some() {
            return "bad_id";
        }
    }
    "failed"
}

fn messenger(m: &MessengerError) -> &'static str {
    match m {
        MessengerError::BadInvite(_) => "bad_invite",
        MessengerError::OwnInvite => "own_invite",
        MessengerError::BadUses(_) | MessengerError::ShortIdTooShort(_) => "bad_argument",
        MessengerError::NoUserKey => "no_user_key",
        MessengerError::UnknownChat(_) | MessengerError::NotAContact(_) | MessengerError::UnknownMessage(_) => {
            "not_found"
        }
        MessengerError::TooLong { .. } | MessengerError::TooManyMembers { .. } => "too_large",
        MessengerError::Ambiguous { .. } => "ambiguous",
        MessengerError::NotYourMessage => "not_yours",
        MessengerError::Blocked(_) => "blocked",
        MessengerError::BadName(_) => "bad_name",
        MessengerError::Seal(_) => "crypto",
        MessengerError::Node(n) => node(n),
        MessengerError::Store(s) => store(s),
    }
}

fn node(n: &NodeError) -> &'static str {
    match n {
        NodeError::Keys(_) => "identity",
        NodeError::Store(s) => store(s),
        NodeError::BadName => "bad_name",
        NodeError::Incomplete(_) | NodeError::Unlinked(_) | NodeError::KeyMismatch { .. } => "identity",
    }
}

fn store(s: &StoreError) -> &'static str {
    match s {
        StoreError::Locked(_) => "store_locked",
        _ => "store",
    }
}
