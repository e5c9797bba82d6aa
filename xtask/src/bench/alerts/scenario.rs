//! The alert-latency scenario both contestants run: calm values for every host, then one crossing
//! sample per host at a fixed pace, then each host's email found on the SMTP server and timed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cloudkeep_protocol::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use cloudkeep_testkit::smtp::{ReceivedMail, TestSmtp};

use crate::http;

/// The metric every rule watches.
pub const METRIC: &str = "bench_value";
/// Host names are this prefix and a number; mails are matched to hosts by it.
pub const HOST_PREFIX: &str = "bench-host-";
/// Below every threshold (the rules raise at 100).
pub const CALM_VALUE: f64 = 10.0;
/// Above every threshold.
pub const CROSSING_VALUE: f64 = 200.0;

/// `bench-host-0001` … for `count` hosts.
pub fn host_names(count: usize) -> Vec<String> {
    (1..=count)
        .map(|i| format!("{HOST_PREFIX}{i:04}"))
        .collect()
}

/// A snappy remote_write body with one `bench_value{host=…}` sample per `(host, value)`.
pub fn write_body(samples: &[(&str, f64)], timestamp_ms: i64) -> Vec<u8> {
    remote_write::encode(&WriteRequest {
        timeseries: samples
            .iter()
            .map(|(host, value)| TimeSeries {
                // Sorted by name, as remote_write requires: `__name__` < `host`.
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: METRIC.into(),
                    },
                    Label {
                        name: "host".into(),
                        value: (*host).to_owned(),
                    },
                ],
                samples: vec![Sample {
                    value: *value,
                    timestamp: timestamp_ms,
                }],
            })
            .collect(),
    })
}

/// Where the samples go.
#[derive(Debug, Clone)]
pub struct WriteTarget {
    pub url: String,
    pub bearer: Option<String>,
}

impl WriteTarget {
    /// POSTs one body; returns how long the receiver took to acknowledge it.
    pub fn push(&self, agent: &ureq::Agent, body: &[u8]) -> Result<Duration> {
        let mut request = agent
            .post(&self.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        if let Some(token) = &self.bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let started = Instant::now();
        let mut response = request
            .send(body)
            .with_context(|| format!("POST {}", self.url))?;
        let took = started.elapsed();
        let status = response.status();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            bail!(
                "POST {}: HTTP {status}: {}",
                self.url,
                http::truncate(text.trim(), 300)
            );
        }
        Ok(took)
    }
}

/// One crossing sample as sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub host: String,
    /// Wall clock just before the request left, Unix ms (also the sample's timestamp).
    pub sent_ms: i64,
    /// Until the receiver answered 2xx.
    pub ack: Duration,
}

/// Sends one crossing sample per host, host `i` at `start + i × spacing` (not after the previous
/// answer, so a slow receiver does not slow the pace down).
pub fn send_crossings(
    agent: &ureq::Agent,
    target: &WriteTarget,
    hosts: &[String],
    spacing: Duration,
) -> Result<Vec<Sent>> {
    let start = Instant::now();
    let mut sent = Vec::with_capacity(hosts.len());
    for (index, host) in hosts.iter().enumerate() {
        let due = start + spacing * u32::try_from(index).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent_ms = super::wall_ms();
        let body = write_body(&[(host, CROSSING_VALUE)], sent_ms);
        let ack = target
            .push(agent, &body)
            .with_context(|| format!("sending the crossing sample of {host}"))?;
        sent.push(Sent {
            host: host.clone(),
            sent_ms,
            ack,
        });
    }
    Ok(sent)
}

/// The host names a mail is about (from its decoded subject and text body).
pub fn hosts_in(mail: &ReceivedMail) -> Vec<String> {
    let text = format!("{}\n{}", mail.subject, mail.body_text);
    let mut hosts: Vec<String> = text
        .match_indices(HOST_PREFIX)
        .map(|(at, _)| {
            let digits: String = text[at + HOST_PREFIX.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            format!("{HOST_PREFIX}{digits}")
        })
        .filter(|host| host.len() > HOST_PREFIX.len())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// What the SMTP server got, matched to what was sent.
#[derive(Debug, Default)]
pub struct Matched {
    /// Per alerted host: mail receive time − send time, ms.
    pub latencies_ms: Vec<i64>,
    /// Hosts whose mail never came.
    pub missing: Vec<String>,
    /// Mails received in all.
    pub mails: usize,
    /// Mails about a host already told, or about no sent host at all.
    pub extra_mails: usize,
    /// Mails that named more than one host (grouped alerts).
    pub grouped_mails: usize,
}

/// Polls the SMTP server until every sent host has a mail or `timeout` passes, then waits
/// `settle` more and counts any extra mail.
pub fn collect(smtp: &TestSmtp, sent: &[Sent], timeout: Duration, settle: Duration) -> Matched {
    let deadline = Instant::now() + timeout;
    loop {
        let mails = smtp.messages();
        let covered = covered_hosts(&mails);
        if sent.iter().all(|s| covered.contains_key(&s.host)) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(settle);
    match_mails(&smtp.messages(), sent)
}

/// Each host's first mail's receive time.
fn covered_hosts(mails: &[ReceivedMail]) -> BTreeMap<String, i64> {
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    for mail in mails {
        for host in hosts_in(mail) {
            let at = first.entry(host).or_insert(mail.received_at_ms);
            *at = (*at).min(mail.received_at_ms);
        }
    }
    first
}

fn match_mails(mails: &[ReceivedMail], sent: &[Sent]) -> Matched {
    let mut matched = Matched {
        mails: mails.len(),
        ..Matched::default()
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for mail in mails {
        let hosts = hosts_in(mail);
        if hosts.len() > 1 {
            matched.grouped_mails += 1;
        }
        let known: Vec<&String> = hosts
            .iter()
            .filter(|host| sent.iter().any(|s| &s.host == *host))
            .collect();
        let new = known
            .iter()
            .filter(|host| !seen.contains_key(host.as_str()))
            .count();
        if new == 0 {
            matched.extra_mails += 1;
        }
        for host in known {
            *seen.entry(host.clone()).or_default() += 1;
        }
    }
    let first = covered_hosts(mails);
    for s in sent {
        match first.get(&s.host) {
            Some(received_ms) => matched.latencies_ms.push(received_ms - s.sent_ms),
            None => matched.missing.push(s.host.clone()),
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(subject: &str, body: &str, at: i64) -> ReceivedMail {
        ReceivedMail {
            from: "a@b".into(),
            to: vec!["c@d".into()],
            raw: Vec::new(),
            subject: subject.into(),
            body_text: body.into(),
            received_at_ms: at,
        }
    }

    fn sent(host: &str, at: i64) -> Sent {
        Sent {
            host: host.into(),
            sent_ms: at,
            ack: Duration::ZERO,
        }
    }

    #[test]
    fn hosts_are_found_in_subject_and_body() {
        let m = mail(
            "[CRITICAL] alert-bench: bench-host-0007 bench high",
            "bench-host-0012 and bench-host-0007 again; bench-host- alone",
            0,
        );
        assert_eq!(hosts_in(&m), vec!["bench-host-0007", "bench-host-0012"]);
    }

    #[test]
    fn latency_is_first_mail_minus_send_and_extras_are_counted() {
        let sent = vec![
            sent("bench-host-0001", 1_000),
            sent("bench-host-0002", 1_150),
        ];
        let mails = vec![
            mail("x bench-host-0001", "", 1_040),
            mail("again bench-host-0001", "", 1_500),
            mail("nobody", "", 1_600),
        ];
        let m = match_mails(&mails, &sent);
        assert_eq!(m.latencies_ms, vec![40]);
        assert_eq!(m.missing, vec!["bench-host-0002"]);
        assert_eq!(m.mails, 3);
        assert_eq!(m.extra_mails, 2);
        assert_eq!(m.grouped_mails, 0);
    }

    #[test]
    fn a_grouped_mail_covers_each_of_its_hosts() {
        let sent = vec![
            sent("bench-host-0001", 1_000),
            sent("bench-host-0002", 1_150),
        ];
        let mails = vec![mail("2 alerts", "bench-host-0001\nbench-host-0002", 1_300)];
        let m = match_mails(&mails, &sent);
        assert_eq!(m.latencies_ms, vec![300, 150]);
        assert_eq!(m.extra_mails, 0);
        assert_eq!(m.grouped_mails, 1);
    }

    #[test]
    fn write_body_decodes_to_the_samples() {
        let body = write_body(&[("bench-host-0001", 200.0)], 1_700_000_000_000);
        let request = remote_write::decode(&body).unwrap();
        assert_eq!(request.timeseries.len(), 1);
        assert_eq!(request.timeseries[0].labels[1].value, "bench-host-0001");
        assert_eq!(request.timeseries[0].samples[0].value, 200.0);
    }
}
