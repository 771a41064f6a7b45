//! `libra stun serve`: a plain STUN binding server (RFC 8489) for people who would rather ask
//! their own server than anyone else's. Each request is answered with the address it came
//! from; nothing is stored or logged.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libra_engine::stun;

/// Answers per second at most: an answer is a little larger than its request, so a spoofed
/// flood must not turn this server into an amplifier of any size.
const MAX_PER_SECOND: u32 = 2000;

pub fn serve(listen: &str) -> Result<u8> {
    let listen: SocketAddr = listen.parse().with_context(|| format!("'{listen}' is not HOST:PORT"))?;
    let socket = UdpSocket::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    println!("STUN server listening on {}", socket.local_addr()?);
    let mut buf = vec![0u8; stun::MAX_MESSAGE + 1];
    let (mut window, mut answered) = (Instant::now(), 0u32);
    loop {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            // A previous answer's ICMP "port unreachable" shows up here on some systems.
            Err(_) => continue,
        };
        let Ok(tx) = stun::parse_request(&buf[..n]) else { continue };
        if window.elapsed() >= Duration::from_secs(1) {
            (window, answered) = (Instant::now(), 0);
        }
        if answered >= MAX_PER_SECOND {
            continue;
        }
        answered += 1;
        let _ = socket.send_to(&stun::binding_success(&tx, from), from);
    }
}
