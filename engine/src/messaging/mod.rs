//! Messaging: sealed payloads, the bodies inside them, and the chats projection as rows
//! (spec/messaging.md). Sans-IO: the store writes the rows, the node composes and reads.

pub mod body;
pub mod seal;
pub mod view;

pub use body::{Body, ChatId, ContactCard};
pub use seal::{SealError, SealRandom, Sealed, seal};
pub use view::{Reader, aad};
