//! Test helpers of the network and plugin checks: a tiny HTTP/1.1 server, tool lookup that fails on CI, polling.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Sample;

/// Whether an external tool the test needs is there. On CI (`CI=true`) a missing tool fails the
/// test; elsewhere the test says so on stderr and returns early.
pub fn tool_available(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{path} is missing (install it, e.g. `apt-get install monitoring-plugins prometheus-node-exporter`)"
    );
    eprintln!("skipping: {path} is not installed");
    false
}

/// Poll `condition` every 20 ms until it holds or `deadline` passes; returns whether it held.
pub async fn wait_for(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if started.elapsed() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The options object of a check from a `json!({...})` literal.
pub fn options(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("options must be an object, got {other}"),
    }
}

/// The samples named `name`.
pub fn samples_named<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .collect()
}

/// The value of the one sample named `name` (panics when there is none or several).
pub fn single_value(samples: &[Sample], name: &str) -> f64 {
    let found = samples_named(samples, name);
    assert_eq!(found.len(), 1, "expected one {name} sample in {samples:?}");
    found[0].value
}

/// The value of label `key` of `sample`.
pub fn label<'a>(sample: &'a Sample, key: &str) -> Option<&'a str> {
    sample
        .labels
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

/// A request as the tiny server saw it.
#[derive(Debug, Clone)]
pub struct TestRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestRequest {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What the tiny server answers.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (for timeout tests).
    pub delay: Duration,
}

impl TestResponse {
    /// A `status` response with a text body.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }
}

/// How the tiny server answers a request.
pub type Handler = Arc<dyn Fn(&TestRequest) -> TestResponse + Send + Sync>;

/// A tiny HTTP/1.1 server on a free loopback port, one response per connection; stops when dropped.
pub struct TinyHttpServer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TinyHttpServer {
    /// Serve `handler` on `127.0.0.1:<free port>`.
    pub async fn start(
        handler: impl Fn(&TestRequest) -> TestResponse + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _ = serve_one_request(stream, &handler).await;
                });
            }
        });
        Self { port, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TinyHttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Read one request from `stream`, answer it with `handler` and close.
pub async fn serve_one_request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    handler: &Handler,
) -> std::io::Result<()> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        received.extend_from_slice(&buffer[..read]);
        if let Some(position) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut request_parts = request_line.split(' ');
    let method = request_parts.next().unwrap_or_default().to_owned();
    let path = request_parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let content_length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = received[head_end..].to_vec();
    while body.len() < content_length {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..read]);
    }
    let request = TestRequest {
        method,
        path,
        headers,
        body,
    };
    let response = handler(&request);
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    let mut head = format!("HTTP/1.1 {} Test\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    if request.method != "HEAD" {
        stream.write_all(&response.body).await?;
    }
    stream.flush().await?;
    stream.shutdown().await?;
    Ok(())
}

/// A loopback port nobody listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
