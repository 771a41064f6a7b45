//! The control socket: while a node runs (`libra serve`, later the app), other `libra`
//! commands on the same data directory are forwarded to it instead of failing on the locked
//! store. `<data>/control.sock` is a Unix domain socket, mode 0600 inside the 0700 data
//! directory, so only the owner can use it. One request per connection: a JSON line
//! `{"argv": [...]}`, answered by `{"stdout": "...", "stderr": "...", "code": n}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use libra_engine::engine::Engine;
use libra_engine::net::Host;
use serde::{Deserialize, Serialize};

use crate::cli::Cli;
use crate::commands::{self, Access};

pub const SOCKET: &str = "control.sock";
/// Largest request accepted: an argv line.
const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Request {
    argv: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Response {
    stdout: String,
    stderr: String,
    code: u8,
}

fn execute(engine: Engine, host: Option<Arc<Host>>, argv: Vec<String>) -> Response {
    let mut out = String::new();
    let (code, stderr) = match Cli::try_parse_from(&argv) {
        Err(e) => (2, e.to_string()),
        Ok(cli) => match commands::run(&cli, &Access::Remote { engine, host }, &mut out) {
            Ok(code) => (code, String::new()),
            Err(e) => (2, format!("error: {e:#}\n")),
        },
    };
    Response { stdout: out, stderr, code }
}

#[cfg(unix)]
pub async fn serve(engine: Engine, host: Option<Arc<Host>>, dir: PathBuf) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let path = dir.join(SOCKET);
    // We hold the store lock, so a socket file left here is stale from a crash.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let (engine, host) = (engine.clone(), host.clone());
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(r.take(MAX_REQUEST)).read_line(&mut line).await.is_err() {
                return;
            }
            let response = match serde_json::from_str::<Request>(&line) {
                Ok(req) => tokio::task::spawn_blocking(move || execute(engine, host, req.argv))
                    .await
                    .unwrap_or_else(|e| Response { stdout: String::new(), stderr: format!("error: {e}\n"), code: 2 }),
                Err(e) => Response { stdout: String::new(), stderr: format!("error: bad request: {e}\n"), code: 2 },
            };
            let mut text = serde_json::to_string(&response).unwrap_or_default();
            text.push('\n');
            let _ = w.write_all(text.as_bytes()).await;
        });
    }
}

#[cfg(not(unix))]
pub async fn serve(_engine: Engine, _host: Option<Arc<Host>>, _dir: PathBuf) -> Result<()> {
    // Windows: a named pipe with an owner-only ACL is the planned equivalent.
    std::future::pending::<()>().await;
    Ok(())
}

/// A connection to the node running on `dir`, if one answers there.
#[cfg(unix)]
pub fn connect(dir: &Path) -> Option<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(dir.join(SOCKET)).ok()
}

#[cfg(not(unix))]
pub fn connect(_dir: &Path) -> Option<std::convert::Infallible> {
    None
}

/// Sends this invocation to the node running on `dir`; prints its stderr and returns its stdout
/// and exit code.
#[cfg(unix)]
pub fn forward(dir: &Path, argv: Vec<String>) -> Result<(String, u8)> {
    let path = dir.join(SOCKET);
    let stream = std::os::unix::net::UnixStream::connect(&path)
        .with_context(|| format!("the store is in use, and no running node answers at {}", path.display()))?;
    forward_on(stream, argv)
}

/// [`forward`] on a connection already made.
#[cfg(unix)]
pub fn forward_on(mut stream: std::os::unix::net::UnixStream, argv: Vec<String>) -> Result<(String, u8)> {
    use std::io::{BufRead, BufReader, Write};
    stream.set_read_timeout(Some(std::time::Duration::from_secs(180)))?;
    let mut req = serde_json::to_string(&Request { argv })?;
    req.push('\n');
    stream.write_all(req.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).context("reading the running node's answer")?;
    let resp: Response = serde_json::from_str(&line).context("the running node's answer is not valid")?;
    eprint!("{}", resp.stderr);
    Ok((resp.stdout, resp.code))
}

#[cfg(not(unix))]
pub fn forward_on(never: std::convert::Infallible, _argv: Vec<String>) -> Result<(String, u8)> {
    match never {}
}

#[cfg(not(unix))]
pub fn forward(dir: &Path, _argv: Vec<String>) -> Result<(String, u8)> {
    anyhow::bail!(
        "the store at {} is in use by a running node (forwarding is not available on this platform yet)",
        dir.display()
    )
}
