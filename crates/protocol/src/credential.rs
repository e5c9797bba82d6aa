//! Bearer credentials: `<kind>_<id>_<secret>`, so the server finds the row by id and compares a hash of the secret.
//!
//! Agent credentials carry the agent id the way a client certificate's subject will once mTLS lands.

use std::fmt;

/// What a credential authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A person's API token (`cku_`).
    User,
    /// An enrolled agent (`cka_`).
    Agent,
    /// A single-use join token (`ckj_`).
    Join,
}

impl CredentialKind {
    fn prefix(self) -> &'static str {
        match self {
            CredentialKind::User => "cku",
            CredentialKind::Agent => "cka",
            CredentialKind::Join => "ckj",
        }
    }
}

/// A parsed bearer credential. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub kind: CredentialKind,
    pub id: String,
    pub secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Credential {
    pub fn new(kind: CredentialKind, id: String, secret: String) -> Credential {
        Credential { kind, id, secret }
    }

    /// The string handed to the holder; shown once, never stored by the server.
    pub fn encode(&self) -> String {
        format!("{}_{}_{}", self.kind.prefix(), self.id, self.secret)
    }

    /// Parses `<kind>_<id>_<secret>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Credential> {
        let mut parts = text.trim().splitn(3, '_');
        let kind = match parts.next()? {
            "cku" => CredentialKind::User,
            "cka" => CredentialKind::Agent,
            "ckj" => CredentialKind::Join,
            _ => return None,
        };
        let id = parts.next()?;
        let secret = parts.next()?;
        let well_formed = |part: &str| {
            !part.is_empty() && part.len() <= 128 && part.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        if !well_formed(id) || !well_formed(secret) {
            return None;
        }
        Some(Credential {
            kind,
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let credential = Credential::new(CredentialKind::Agent, "a1b2".into(), "s3cr3t".into());
        let text = credential.encode();
        assert_eq!(text, "cka_a1b2_s3cr3t");
        assert_eq!(Credential::parse(&text), Some(credential));
        for bad in [
            "",
            "cka",
            "cka_x",
            "cka__s",
            "xxx_a_b",
            "cka_a_b c",
            "cka_a_b_c",
        ] {
            assert_eq!(Credential::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let credential = Credential::new(CredentialKind::User, "id".into(), "topsecret".into());
        assert!(!format!("{credential:?}").contains("topsecret"));
    }
}
