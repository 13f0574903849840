//! The local control socket: how `boxidr status` asks the running service (redb locks the
//! database file to one process, so a second process cannot read it while the service runs).
//!
//! Protocol: the client writes one command line, the service answers one JSON document and
//! closes. Commands: `status`; `setup-code` (issues a new one-time setup code while the
//! appliance is unclaimed, with the certificate fingerprint and the page's URL);
//! `factory-reset`. The socket lives in the data directory (mode 0700, service user), so only
//! root and the service user can connect: that is what makes `setup-code` root-only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::status::StatusCache;

/// Longest command line accepted.
const MAX_COMMAND: u64 = 256;
/// A client that does not send its command in time is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a command that the supervisor carries out (a factory reset revokes the Box token
/// over the network) may take before the client gives up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A command the supervisor carries out; the answer goes back on the oneshot.
#[derive(Debug)]
pub enum Request {
    SetupCode(oneshot::Sender<Value>),
    FactoryReset(oneshot::Sender<Value>),
}

/// The socket path in `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// Binds the socket (replacing a stale one) and serves it on a task.
pub fn listen(
    data_dir: &Path,
    status: Arc<StatusCache>,
    requests: mpsc::UnboundedSender<Request>,
) -> std::io::Result<JoinHandle<()>> {
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (status, requests) = (status.clone(), requests.clone());
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(COMMAND_TIMEOUT, answer(stream, &status, &requests)).await;
            });
        }
    }))
}

/// Serves one client on `stream`: reads one command line (at most 256 bytes, 5 s), writes one
/// JSON document on one line, and shuts the stream down. Public over any byte stream so the
/// protocol can be fuzzed without a socket (`tests/fuzz`, target `control_socket`).
pub async fn answer<S: AsyncRead + AsyncWrite>(
    stream: S,
    status: &StatusCache,
    requests: &mpsc::UnboundedSender<Request>,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut line = String::new();
    tokio::time::timeout(
        CLIENT_TIMEOUT,
        BufReader::new(read.take(MAX_COMMAND)).read_line(&mut line),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no command"))??;
    let reply = match line.trim() {
        "status" => status.json(),
        "setup-code" => ask_supervisor(requests, Request::SetupCode).await,
        "factory-reset" => ask_supervisor(requests, Request::FactoryReset).await,
        other => {
            let other: String = other.chars().take(32).collect();
            json!({ "error": format!("unknown command {other:?}; try status, setup-code or factory-reset") })
        }
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

async fn ask_supervisor(
    requests: &mpsc::UnboundedSender<Request>,
    request: fn(oneshot::Sender<Value>) -> Request,
) -> Value {
    let (tx, rx) = oneshot::channel();
    if requests.send(request(tx)).is_err() {
        return json!({ "error": "the service is stopping" });
    }
    rx.await
        .unwrap_or_else(|_| json!({ "error": "the service dropped the command" }))
}

/// Asks the service at `data_dir` for its status; `Ok(None)` when no service is listening.
pub async fn ask_status(data_dir: &Path) -> std::io::Result<Option<Value>> {
    ask(data_dir, "status").await
}

/// Sends `command` to the service at `data_dir`; `Ok(None)` when no service is listening.
pub async fn ask(data_dir: &Path, command: &str) -> std::io::Result<Option<Value>> {
    let stream = match UnixStream::connect(socket_path(data_dir)).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let (read, mut write) = stream.into_split();
    write.write_all(format!("{command}\n").as_bytes()).await?;
    let mut text = String::new();
    tokio::time::timeout(COMMAND_TIMEOUT, BufReader::new(read).read_line(&mut text))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer from the service")
        })??;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
