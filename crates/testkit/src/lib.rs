//! Test harnesses for real peers: a throwaway PostgreSQL server, a real SMTP server (aiosmtpd), an
//! S3-compatible server (moto), an HTTP receiver standing in for SMS gateways and webhook endpoints,
//! and free loopback ports.
//!
//! Used only as a dev-dependency. When `CI=true` a missing tool is a test failure, never a skip.
#![forbid(unsafe_code)]

pub mod http_sink;
pub mod postgres;
pub mod s3;
pub mod smtp;

use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on loopback");
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// True when running under CI, where missing tools must fail tests.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}
