//! Linking this new device from the onboarding screen: the request runs on a thread of its
//! own (it dials the other device and waits for its answer), and the UI polls for the result.

use std::path::Path;
use std::sync::{Arc, Mutex};

use libra_engine::link::LinkCode;
use libra_engine::net::link_protocol::{self, Linked};
use libra_engine::node::Node;

/// What linking gave: the code used and the answer.
pub type Outcome = Result<(LinkCode, Linked), String>;

/// A link request under way.
pub struct Linking(Arc<Mutex<Option<Outcome>>>);

impl Linking {
    /// The result, once there is one.
    pub fn take(&self) -> Option<Outcome> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }
}

pub fn start(code: String, ctx: eframe::egui::Context) -> Linking {
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
            Ok((code, linked))
        })();
        if let Ok(mut s) = out.lock() {
            *s = Some(result);
        }
        ctx.request_repaint();
    });
    Linking(slot)
}

/// Creates the linked device in `dir`; returns it and the linking device's key and address.
pub fn finish(dir: &Path, (code, linked): (LinkCode, Linked)) -> Result<(Node, ([u8; 32], String)), String> {
    let address = linked.address.to_string();
    let node = Node::init_linked(dir, linked.keys, linked.history, linked.cert).map_err(|e| e.to_string())?;
    Ok((node, (*code.device.as_bytes(), address)))
}
