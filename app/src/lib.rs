//! Libra's desktop client. The engine runs on its own tokio runtime ([`engine::Engine`]); the UI
//! renders a [`model::Snapshot`] the engine rebuilds off the UI thread whenever the logs change,
//! and sends actions back as closures run on a blocking thread. The UI never waits on the store.

pub mod app;
pub mod engine;
pub mod icon;
mod link;
pub mod model;
pub mod notify;
pub mod qr_import;
mod restore;
pub mod settings;
pub mod thumbs;
mod views;

pub use app::LibraApp;
