//! An HTTP/1.1 request sink on 127.0.0.1: records every request and answers from a scripted status sequence.
//!
//! The one mock the project allows: an SMS provider's API or a webhook receiver cannot exist offline.
//! It runs on its own thread and runtime, so it serves while a test's runtime is blocked or paused.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head or body the sink reads; tests never come near it.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// One request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/hook?x=1`.
    pub target: String,
    /// Headers in order; names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.body_text()))
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct SinkResponse {
    /// HTTP status code.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

impl SinkResponse {
    /// A response with this status and a short text body.
    pub fn status(status: u16) -> SinkResponse {
        SinkResponse {
            status,
            headers: Vec::new(),
            body: if (200..300).contains(&status) {
                "ok".to_owned()
            } else {
                format!("status {status} from the test sink")
            },
        }
    }

    /// A JSON response with this status.
    pub fn json(status: u16, body: &serde_json::Value) -> SinkResponse {
        SinkResponse {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    script: Mutex<VecDeque<SinkResponse>>,
    then: SinkResponse,
}

impl Shared {
    fn next_response(&self) -> SinkResponse {
        self.script
            .lock()
            .expect("sink script lock")
            .pop_front()
            .unwrap_or_else(|| self.then.clone())
    }
}

/// A running sink owned by a test; stopped on drop.
#[derive(Debug)]
pub struct HttpSink {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpSink {
    /// A sink that answers every request `200 ok`.
    pub fn start() -> HttpSink {
        HttpSink::with_responses(Vec::new(), SinkResponse::status(200))
    }

    /// A sink that answers with these statuses in order, then `200` forever (e.g. `[500, 500, 200]`).
    pub fn with_statuses(statuses: &[u16]) -> HttpSink {
        HttpSink::with_responses(
            statuses.iter().copied().map(SinkResponse::status).collect(),
            SinkResponse::status(200),
        )
    }

    /// A sink that answers with `script` in order, then with `then` forever.
    pub fn with_responses(script: Vec<SinkResponse>, then: SinkResponse) -> HttpSink {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(script.into()),
            then,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        listener
            .set_nonblocking(true)
            .expect("make the sink listener non-blocking");
        let address = listener.local_addr().expect("sink address");
        let (shutdown, shutdown_signal) = tokio::sync::oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("http-sink".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("sink runtime");
                runtime.block_on(serve(listener, thread_shared, shutdown_signal));
            })
            .expect("start the sink thread");
        HttpSink {
            address,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .expect("sink requests lock")
            .clone()
    }

    /// Polls until at least `count` requests arrived; panics after `timeout`.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} requests within {timeout:?}, got {}",
                requests.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = TcpListener::from_std(listener).expect("register the sink listener");
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve_connection(stream, Arc::clone(&shared)));
                }
            }
        }
    }
}

/// Serves keep-alive requests on one connection until the client closes it or sends garbage.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await {
        let close = request
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        shared
            .requests
            .lock()
            .expect("sink requests lock")
            .push(request);
        let response = shared.next_response();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-length: {}\r\n",
            response.status,
            reason(response.status),
            response.body.len()
        );
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !response
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("content-type: text/plain; charset=utf-8\r\n");
        }
        head.push_str(if close {
            "connection: close\r\n\r\n"
        } else {
            "\r\n"
        });
        let stream = reader.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(response.body.as_bytes()).await.is_err()
            || stream.flush().await.is_err()
            || close
        {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    let read = reader.read_line(&mut line).await.ok()?;
    if read == 0 || line.len() > MAX_REQUEST_BYTES {
        return None;
    }
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads one request; `None` at end of stream or on anything malformed.
async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<RecordedRequest> {
    let request_line = read_line(reader).await?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader).await?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = RecordedRequest {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size_line = read_line(reader).await?;
            let size_text = size_line.split(';').next()?.trim();
            let size = usize::from_str_radix(size_text, 16).ok()?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while !read_line(reader).await?.is_empty() {}
                break;
            }
            if request.body.len() + size > MAX_REQUEST_BYTES {
                return None;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk).await.ok()?;
            request.body.extend_from_slice(&chunk);
            read_line(reader).await?;
        }
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length.parse().ok()?;
        if length > MAX_REQUEST_BYTES {
            return None;
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.ok()?;
        request.body = body;
    }
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn exchange(sink: &HttpSink, request: &str) -> String {
        let mut stream = std::net::TcpStream::connect(sink.address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn records_requests_and_follows_the_status_script() {
        let sink = HttpSink::with_statuses(&[500, 429]);
        let first = exchange(
            &sink,
            "POST /hook?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        );
        assert!(first.starts_with("HTTP/1.1 500 "), "{first}");
        let second = exchange(
            &sink,
            "PUT /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert!(second.starts_with("HTTP/1.1 429 "), "{second}");
        let third = exchange(&sink, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(third.starts_with("HTTP/1.1 200 "), "{third}");
        assert!(third.ends_with("ok"), "{third}");

        let requests = sink.wait_for_requests(3, Duration::from_secs(5));
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].target, "/hook?a=1");
        assert_eq!(requests[0].header("HOST"), Some("x"));
        assert_eq!(requests[0].body_text(), "hello");
        assert_eq!(requests[1].method, "PUT");
        assert_eq!(requests[1].body_text(), "abcde");
        assert_eq!(requests[2].target, "/");
        assert!(requests[2].body.is_empty());
    }
}
