//! The local socket `cloudkeep wal-push` talks to: PostgreSQL's `archive_command` hands the agent a
//! WAL file's path and waits until the agent says it is safely in the repository. One JSON line
//! each way. Only root and the owner of a backed-up data directory may connect (peer credentials).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// How long `wal-push` waits for the agent (PostgreSQL retries a failed archive command).
pub const WAL_PUSH_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest request line accepted.
const MAX_LINE: usize = 8192;

/// `wal-push` → agent.
#[derive(Debug, Serialize, Deserialize)]
pub struct WalPushRequest {
    /// Absolute path of the WAL file (`<pgdata>/pg_wal/<name>`).
    pub path: PathBuf,
}

/// Agent → `wal-push`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WalPushReply {
    /// `None` once the file is archived, else why not.
    pub error: Option<String>,
}

/// A request handed to the job of the data directory it belongs to.
#[derive(Debug)]
pub struct WalRequest {
    /// The WAL file's name.
    pub name: String,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// Where each data directory's requests go, with the uid allowed to send them.
#[derive(Debug, Clone)]
pub struct Route {
    /// The data directory, canonical.
    pub pgdata: PathBuf,
    /// The uid owning it.
    pub owner_uid: u32,
    /// The job's request queue.
    pub sender: mpsc::Sender<WalRequest>,
}

/// Binds the socket at `path` (replacing a stale one), mode 0666: access is checked per peer.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Answers one connection.
pub async fn serve(stream: UnixStream, routes: Vec<Route>) {
    let peer_uid = stream.peer_cred().map(|credential| credential.uid()).ok();
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let answer = match reader.read_line(&mut line).await {
        Ok(_) => handle(&line, peer_uid, &routes).await,
        Err(error) => Err(format!("reading the request: {error}")),
    };
    let reply = WalPushReply {
        error: answer.err(),
    };
    if let Ok(mut bytes) = serde_json::to_vec(&reply) {
        bytes.push(b'\n');
        let _ = write.write_all(&bytes).await;
    }
}

async fn handle(line: &str, peer_uid: Option<u32>, routes: &[Route]) -> Result<(), String> {
    let request: WalPushRequest =
        serde_json::from_str(line.trim()).map_err(|error| format!("malformed request: {error}"))?;
    let canonical = std::fs::canonicalize(&request.path)
        .map_err(|error| format!("{}: {error}", request.path.display()))?;
    let (Some(directory), Some(name)) = (canonical.parent(), canonical.file_name()) else {
        return Err(format!("{}: not a WAL file path", canonical.display()));
    };
    let route = routes
        .iter()
        .find(|route| directory == route.pgdata.join("pg_wal"))
        .ok_or_else(|| {
            format!(
                "{}: not in the pg_wal of a data directory this agent backs up",
                canonical.display()
            )
        })?;
    match peer_uid {
        Some(0) => {}
        Some(uid) if uid == route.owner_uid => {}
        _ => {
            return Err(format!(
                "refused: only root and the owner of {} may push its WAL",
                route.pgdata.display()
            ));
        }
    }
    let (reply, answer) = oneshot::channel();
    route
        .sender
        .send(WalRequest {
            name: name.to_string_lossy().into_owned(),
            reply,
        })
        .await
        .map_err(|_| "the backup job of this database is stopping".to_owned())?;
    match tokio::time::timeout(WAL_PUSH_TIMEOUT, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("the backup job of this database stopped".to_owned()),
        Err(_) => Err(format!(
            "not archived within {} s",
            WAL_PUSH_TIMEOUT.as_secs()
        )),
    }
}

/// What `cloudkeep wal-push` does: asks the agent behind `socket` to archive `path` and waits.
pub async fn wal_push(socket: &Path, path: &Path) -> Result<(), String> {
    let absolute =
        std::path::absolute(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut stream = UnixStream::connect(socket).await.map_err(|error| {
        format!(
            "cannot reach the cloudkeep agent at {}: {error} (is the agent running?)",
            socket.display()
        )
    })?;
    let mut request = serde_json::to_vec(&WalPushRequest { path: absolute })
        .map_err(|error| error.to_string())?;
    request.push(b'\n');
    stream
        .write_all(&request)
        .await
        .map_err(|error| format!("sending to the agent: {error}"))?;
    let mut line = String::new();
    let read = tokio::time::timeout(
        WAL_PUSH_TIMEOUT + Duration::from_secs(5),
        BufReader::new(stream).read_line(&mut line),
    )
    .await
    .map_err(|_| "the agent did not answer in time".to_owned())?
    .map_err(|error| format!("reading the agent's answer: {error}"))?;
    if read == 0 {
        return Err("the agent closed the connection without answering".to_owned());
    }
    let reply: WalPushReply = serde_json::from_str(line.trim())
        .map_err(|error| format!("malformed answer from the agent: {error}"))?;
    match reply.error {
        None => Ok(()),
        Some(error) => Err(error),
    }
}
