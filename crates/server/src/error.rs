//! The one closed error kind every service returns; the HTTP layer maps it to a status in one place.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A service failure: a kind, a message safe to show the caller, and itemised details.
///
/// Internal errors keep their cause for the log; the caller only sees a generic message.
#[derive(Debug, Clone)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    pub details: Vec<String>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)?;
        for detail in &self.details {
            write!(f, "\n  {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
        ServiceError {
            kind,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::NotFound, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Forbidden, message)
    }

    pub fn unauthenticated() -> ServiceError {
        ServiceError::new(
            ErrorKind::Unauthenticated,
            "missing, unknown, expired or revoked credential",
        )
    }

    pub fn with_details(mut self, details: Vec<String>) -> ServiceError {
        self.details = details;
        self
    }

    /// Logs the cause with its chain and returns a generic internal error.
    pub fn internal(context: &str, cause: &dyn std::error::Error) -> ServiceError {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(next) = source {
            chain.push_str(": ");
            chain.push_str(&next.to_string());
            source = next.source();
        }
        tracing::error!(error = %chain, "{context}");
        ServiceError::new(ErrorKind::Internal, "internal error; see the server log")
    }
}

impl From<cloudkeep_store::StoreError> for ServiceError {
    fn from(err: cloudkeep_store::StoreError) -> ServiceError {
        match err {
            cloudkeep_store::StoreError::Conflict(message) => {
                ServiceError::new(ErrorKind::Conflict, message)
            }
            other => ServiceError::internal("state store failed", &other),
        }
    }
}
