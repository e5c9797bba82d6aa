//! Retrying one delivery with capped exponential backoff; each attempt is reported to the caller.

use std::future::Future;
use std::time::Duration;

use crate::error::DeliveryError;
use crate::notification::Notification;
use crate::{Channel, Destination, Receipt, deliver};

/// How often and how patiently a delivery is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1 is made).
    pub attempts: u32,
    /// Wait after the first failed attempt.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Each wait is the previous one times this (values below 1 count as 1).
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 1 s, 2 s, 4 s, 8 s between them (capped at 60 s).
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
        }
    }
}

/// The wait after failed attempt number `attempt` (1-based): `initial × multiplier^(attempt−1)`, at most `max_backoff`.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let seconds = policy.initial_backoff.as_secs_f64() * policy.multiplier.max(1.0).powi(exponent);
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(policy.max_backoff)
        .min(policy.max_backoff)
}

/// What happened in one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The error's message, or `None` when the attempt delivered.
    pub error: Option<String>,
    /// Whether the error may go away on its own (false when delivered).
    pub retryable: bool,
    /// How long the attempt took.
    pub elapsed: Duration,
    /// The wait before the next attempt, or `None` when this was the last one.
    pub next_attempt_in: Option<Duration>,
}

/// Delivers, retrying retryable errors per `policy` (waits use `tokio::time`, so paused test time works).
/// Returns the receipt, or the last error once it is final or the attempts are spent.
pub async fn deliver_with_retries(
    channel: &Channel,
    to: &Destination,
    notification: &Notification,
    policy: &RetryPolicy,
    on_attempt: impl FnMut(AttemptRecord),
) -> Result<Receipt, DeliveryError> {
    retry(policy, on_attempt, || deliver(channel, to, notification)).await
}

async fn retry<Attempt, Outcome>(
    policy: &RetryPolicy,
    mut on_attempt: impl FnMut(AttemptRecord),
    mut attempt_once: Attempt,
) -> Result<Receipt, DeliveryError>
where
    Attempt: FnMut() -> Outcome,
    Outcome: Future<Output = Result<Receipt, DeliveryError>>,
{
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        let started = tokio::time::Instant::now();
        let outcome = attempt_once().await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(receipt) => {
                on_attempt(AttemptRecord {
                    attempt,
                    error: None,
                    retryable: false,
                    elapsed,
                    next_attempt_in: None,
                });
                return Ok(receipt);
            }
            Err(error) => {
                let retryable = error.retryable();
                let wait = (retryable && attempt < attempts).then(|| {
                    backoff(policy, attempt)
                        .max(error.retry_after().unwrap_or_default())
                        .min(policy.max_backoff)
                });
                on_attempt(AttemptRecord {
                    attempt,
                    error: Some(error.to_string()),
                    retryable,
                    elapsed,
                    next_attempt_in: wait,
                });
                let Some(wait) = wait else {
                    return Err(error);
                };
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::error::ChannelKind;

    fn receipt() -> Receipt {
        Receipt {
            channel: ChannelKind::Webhook,
            response: "ok".into(),
            message_id: None,
            http_status: Some(200),
        }
    }

    fn http_error(status: u16, retry_after: Option<Duration>) -> DeliveryError {
        DeliveryError::HttpStatus {
            target: "webhook POST http://x".into(),
            status,
            body: "no".into(),
            retry_after,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=8)
            .map(|attempt| backoff(&policy, attempt).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(&policy, 0), Duration::from_secs(1));
        assert_eq!(backoff(&policy, u32::MAX), Duration::from_secs(60));
        let odd = RetryPolicy {
            multiplier: f64::NAN,
            ..RetryPolicy::default()
        };
        assert!(backoff(&odd, 3) <= Duration::from_secs(60));
        let flat = RetryPolicy {
            multiplier: 0.5,
            ..RetryPolicy::default()
        };
        assert_eq!(backoff(&flat, 4), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_in_paused_time() {
        let calls = Cell::new(0);
        let mut records = Vec::new();
        let started = tokio::time::Instant::now();
        let result = retry(
            &RetryPolicy::default(),
            |record| records.push(record),
            || {
                calls.set(calls.get() + 1);
                let call = calls.get();
                async move {
                    match call {
                        1 => Err(http_error(503, None)),
                        2 => Err(http_error(429, Some(Duration::from_secs(5)))),
                        _ => Ok(receipt()),
                    }
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), receipt());
        assert_eq!(calls.get(), 3);
        // 1 s after the first failure, then Retry-After's 5 s (longer than the 2 s backoff).
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        let waits: Vec<_> = records
            .iter()
            .map(|record| record.next_attempt_in)
            .collect();
        assert_eq!(
            waits,
            [
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(5)),
                None
            ]
        );
        assert_eq!(
            records[0].error.as_deref(),
            Some("webhook POST http://x: HTTP 503: no")
        );
        assert!(records[2].error.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn final_errors_stop_at_once_and_attempts_are_bounded() {
        let mut records = Vec::new();
        let result = retry(
            &RetryPolicy::default(),
            |record| records.push(record),
            || async { Err(http_error(400, None)) },
        )
        .await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "webhook POST http://x: HTTP 400: no"
        );
        assert_eq!(records.len(), 1);
        assert!(!records[0].retryable);

        let mut records = Vec::new();
        let started = tokio::time::Instant::now();
        let policy = RetryPolicy {
            attempts: 3,
            ..RetryPolicy::default()
        };
        let result = retry(
            &policy,
            |record| records.push(record),
            || async { Err(http_error(500, None)) },
        )
        .await;
        assert!(result.unwrap_err().retryable());
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].next_attempt_in, None);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
