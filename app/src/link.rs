//! Linking this new device from the onboarding screen: the request, the new identity and the
//! content keys the other device hands over are done on a thread of their own (it dials the
//! other device and waits for its answer); the UI polls for the result.

use std::sync::{Arc, Mutex};

use libra_engine::link::LinkCode;
use libra_engine::net::link_protocol;
use libra_engine::node::Node;

/// What linking gave: the new device, and the linking device's key and address.
pub type Outcome = Result<(Node, ([u8; 32], String)), String>;

/// A link under way.
pub struct Linking(Arc<Mutex<Option<Outcome>>>);

impl Linking {
    /// The result, once there is one.
    pub fn take(&self) -> Option<Outcome> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }
}

/// Links into `dir` with `code`, on a thread of its own.
pub fn start(dir: std::path::PathBuf, code: String, ctx: eframe::egui::Context) -> Linking {
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    std::thread::spawn(move || {
        let result = (|| {
            let code = LinkCode::parse(&code, libra_engine::clock::wall_ms()).map_err(|e| e.to_string())?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            let name = format!("{} desktop", std::env::consts::OS);
            let linked = rt.block_on(link_protocol::request(&code, &name, &[])).map_err(|e| {
                format!("could not reach your other device ({e}); is Libra running there, on this network?")
            })?;
            let address = linked.address.to_string();
            let (node, _) = rt.block_on(link_protocol::create(&dir, linked)).map_err(|e| format!("{e:#}"))?;
            Ok((node, (*code.device.as_bytes(), address)))
        })();
        if let Ok(mut s) = out.lock() {
            *s = Some(result);
        }
        ctx.request_repaint();
    });
    Linking(slot)
}
