//! A real SMTP server (Debian's python3-aiosmtpd) on a free port, with optional TLS and AUTH; stopped on drop.
//!
//! The server writes every accepted message to `<dir>/mail/NNNN.eml` with a `NNNN.json` sidecar
//! (envelope sender and recipients, and when the message's data had arrived), both atomically, sidecar
//! first, so a visible `.eml` is complete.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// Debian's interpreter: `python3` on PATH may be a pyenv build without the Debian modules.
const DEFAULT_PYTHON: &str = "/usr/bin/python3";

/// The server program. It reads its settings from the JSON file named by its only argument.
const SERVER_SCRIPT: &str = r#"
import json, os, ssl, sys, threading, time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

with open(sys.argv[1], encoding="utf-8") as settings_file:
    settings = json.load(settings_file)

mail_dir = settings["mail_dir"]
lock = threading.Lock()
state = {"accepted": 0, "transient_left": settings["transient_failures"]}


def write_atomically(path, data):
    temporary = path + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.rename(temporary, path)


class RecordingHandler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in settings["reject_recipients"]:
            return "550 5.1.1 <%s>: recipient rejected by the test server" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        # Taken first: the whole message has arrived, the files below are bookkeeping.
        received_at_ms = int(time.time() * 1000.0)
        with lock:
            if state["transient_left"] > 0:
                state["transient_left"] -= 1
                return "451 4.3.0 temporary failure in the test server, try again later"
            state["accepted"] += 1
            number = state["accepted"]
        base = os.path.join(mail_dir, "%04d" % number)
        sidecar = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "received_at_ms": received_at_ms,
        }
        write_atomically(base + ".json", json.dumps(sidecar).encode("utf-8"))
        write_atomically(base + ".eml", envelope.original_content or envelope.content)
        return "250 2.0.0 OK queued as %04d" % number


def authenticator(server, session, envelope, mechanism, auth_data):
    expected = settings["auth"]
    valid = (
        expected is not None
        and isinstance(auth_data, LoginPassword)
        and auth_data.login == expected["username"].encode("utf-8")
        and auth_data.password == expected["password"].encode("utf-8")
    )
    return AuthResult(success=valid, handled=False)


tls_context = None
if settings["tls"] != "none":
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(settings["cert_file"], settings["key_file"])

options = {}
if settings["auth"] is not None:
    options["authenticator"] = authenticator
    options["auth_required"] = True
    # aiosmtpd only counts STARTTLS as TLS: under implicit TLS the session is encrypted anyway.
    options["auth_require_tls"] = settings["tls"] == "starttls"
if settings["tls"] == "starttls":
    options["tls_context"] = tls_context
    options["require_starttls"] = True

controller = Controller(
    RecordingHandler(),
    hostname="127.0.0.1",
    port=settings["port"],
    ssl_context=tls_context if settings["tls"] == "implicit" else None,
    **options,
)
controller.start()
# The controller has accepted its own probe connection: tell the harness.
write_atomically(settings["ready_file"], b"ready")
threading.Event().wait()
"#;

/// How the server protects the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP.
    #[default]
    None,
    /// STARTTLS offered and required before any mail command.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// What the test server does.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Transport security.
    pub tls: SmtpTls,
    /// When set, AUTH PLAIN/LOGIN with exactly this username and password is required (over TLS when TLS is on).
    pub auth: Option<(String, String)>,
    /// RCPT TO for these addresses is answered `550`.
    pub reject_recipients: Vec<String>,
    /// The first N messages are answered `451` after DATA (for retry tests).
    pub transient_failures: u32,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// Envelope sender (MAIL FROM).
    pub from: String,
    /// Envelope recipients (RCPT TO).
    pub to: Vec<String>,
    /// The message exactly as received.
    pub raw: Vec<u8>,
    /// Decoded `Subject` header, empty when absent.
    pub subject: String,
    /// Decoded first text body, empty when absent.
    pub body_text: String,
    /// When the server had the whole message (end of DATA), Unix milliseconds on this machine's wall
    /// clock, read before the message is written out (for latency measurements).
    pub received_at_ms: i64,
}

impl ReceivedMail {
    /// The decoded value of a header, if present (e.g. `"Message-ID"`, `"Date"`, `"From"`).
    pub fn header(&self, name: &str) -> Option<String> {
        let message = mail_parser::MessageParser::default().parse(&self.raw)?;
        message
            .header_raw(name)
            .map(|value| value.trim().to_owned())
    }
}

/// A running aiosmtpd server owned by a test.
#[derive(Debug)]
pub struct TestSmtp {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    ca_cert_pem: String,
}

fn python() -> PathBuf {
    std::env::var_os("CLOUDKEEP_SMTP_PYTHON")
        .map_or_else(|| PathBuf::from(DEFAULT_PYTHON), PathBuf::from)
}

/// Whether the interpreter exists and can import aiosmtpd.
fn aiosmtpd_available(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`: (ca pem, cert pem, key pem).
fn generate_certificates() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cloudkeep test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().expect("generate the CA key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-sign the CA");

    let mut server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let server_key = rcgen::KeyPair::generate().expect("generate the server key");
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .expect("sign the server certificate");
    (ca.pem(), server_cert.pem(), server_key.serialize_pem())
}

impl TestSmtp {
    /// Starts a server, or returns `None` (outside CI only) when /usr/bin/python3 or aiosmtpd is missing.
    pub fn start(options: SmtpOptions) -> Option<TestSmtp> {
        let python = python();
        if !aiosmtpd_available(&python) {
            assert!(
                !crate::in_ci(),
                "{} cannot import aiosmtpd (CI=true): apt-get install python3-aiosmtpd",
                python.display()
            );
            eprintln!(
                "skipping: {} cannot import aiosmtpd (apt-get install python3-aiosmtpd)",
                python.display()
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("cloudkeep-smtp-")
            .tempdir()
            .expect("create temp dir");
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).expect("create the mail dir");
        let (ca_cert_pem, cert_pem, key_pem) = generate_certificates();
        let cert_file = dir.path().join("server.crt");
        let key_file = dir.path().join("server.key");
        std::fs::write(&cert_file, cert_pem).expect("write the server certificate");
        std::fs::write(&key_file, key_pem).expect("write the server key");
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, SERVER_SCRIPT).expect("write the server script");

        let port = free_port();
        let tls = match options.tls {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Implicit => "implicit",
        };
        let settings = serde_json::json!({
            "port": port,
            "mail_dir": mail_dir,
            "tls": tls,
            "cert_file": cert_file,
            "key_file": key_file,
            "auth": options.auth.as_ref().map(|(username, password)| {
                serde_json::json!({ "username": username, "password": password })
            }),
            "reject_recipients": options.reject_recipients,
            "transient_failures": options.transient_failures,
            "ready_file": dir.path().join("ready"),
        });
        let settings_file = dir.path().join("settings.json");
        std::fs::write(&settings_file, settings.to_string()).expect("write the server settings");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("create the log");
        let child = Command::new(&python)
            .arg(&script)
            .arg(&settings_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start the aiosmtpd server");
        let mut server = TestSmtp {
            child,
            dir,
            port,
            ca_cert_pem,
        };
        server.wait_ready();
        Some(server)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Ready once the script wrote its ready file (after the controller accepted its own probe) and the port accepts.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("aiosmtpd exited early ({status}):\n{}", self.log());
            }
            if self.dir.path().join("ready").exists()
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "aiosmtpd on port {} did not become ready in 30 s:\n{}",
            self.port,
            self.log()
        );
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PEM of the CA that signed the server certificate (valid for `localhost` and `127.0.0.1`).
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// Every accepted message so far, in order of acceptance.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mail_dir = self.dir.path().join("mail");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&mail_dir)
            .expect("read the mail dir")
            .map(|entry| entry.expect("mail dir entry").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let raw = std::fs::read(&eml).expect("read a received message");
                let sidecar: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(eml.with_extension("json")).expect("read a message sidecar"),
                )
                .expect("parse a message sidecar");
                let parsed = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .expect("parse a received message");
                let subject = parsed.subject().unwrap_or_default().to_owned();
                let body_text = parsed
                    .body_text(0)
                    .map(|body| body.into_owned())
                    .unwrap_or_default();
                ReceivedMail {
                    from: sidecar["mail_from"].as_str().unwrap_or_default().to_owned(),
                    to: sidecar["rcpt_tos"]
                        .as_array()
                        .map(|list| {
                            list.iter()
                                .filter_map(|value| value.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    raw,
                    subject,
                    body_text,
                    received_at_ms: sidecar["received_at_ms"].as_i64().unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Polls until at least `count` messages were accepted; panics after `timeout`.
    pub fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} messages within {timeout:?}, got {}; server log:\n{}",
                messages.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// This machine's wall clock in Unix milliseconds, as the server script reads it.
    fn unix_ms() -> i64 {
        i64::try_from(
            std::time::UNIX_EPOCH
                .elapsed()
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX)
    }

    /// Speaks just enough SMTP by hand to prove the harness records a message and its envelope.
    #[test]
    fn plain_server_records_a_message() {
        let Some(server) = TestSmtp::start(SmtpOptions::default()) else {
            return;
        };
        let stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut expect_reply = |code: &str| {
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert!(line.starts_with(code), "expected {code}, got {line:?}");
                if line.as_bytes().get(3) == Some(&b' ') {
                    break;
                }
            }
        };
        expect_reply("220");
        let before_ms = unix_ms();
        for (command, code) in [
            ("EHLO test\r\n", "250"),
            ("MAIL FROM:<a@example.org>\r\n", "250"),
            ("RCPT TO:<b@example.org>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: hello\r\n\r\nbody line\r\n.\r\n", "250"),
        ] {
            writer.write_all(command.as_bytes()).unwrap();
            expect_reply(code);
        }
        let after_ms = unix_ms();
        let messages = server.wait_for_messages(1, Duration::from_secs(10));
        assert_eq!(messages.len(), 1);
        assert!(
            (before_ms..=after_ms).contains(&messages[0].received_at_ms),
            "received at {} ms, expected between {before_ms} and {after_ms}",
            messages[0].received_at_ms
        );
        assert_eq!(messages[0].from, "a@example.org");
        assert_eq!(messages[0].to, vec!["b@example.org".to_owned()]);
        assert_eq!(messages[0].subject, "hello");
        assert_eq!(messages[0].body_text.trim_end(), "body line");
    }
}
