//! age X25519 keys: generating a key pair, parsing recipients (`age1…`) and identities
//! (`AGE-SECRET-KEY-1…`, alone or in an `age-keygen` key file), with errors that never repeat a secret.

use std::fmt;
use std::str::FromStr;

use age::secrecy::ExposeSecret;

/// Why a recipient or an identity was refused. Messages never contain the secret key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The recipient text is empty or blank.
    #[error("recipient: empty, expected an age X25519 public key \"age1…\"")]
    EmptyRecipient,
    /// A secret key was given where a public key belongs (the secret is not repeated).
    #[error(
        "recipient: this is a secret key (AGE-SECRET-KEY-1…), not a recipient; give its public key \"age1…\" (age-keygen -y prints it) and keep the secret off this machine"
    )]
    SecretKeyAsRecipient,
    /// An SSH public key was given: only native age X25519 recipients are supported.
    #[error(
        "recipient {shown:?}: SSH keys are not supported, use an age X25519 public key \"age1…\""
    )]
    SshRecipient {
        /// The start of the given text.
        shown: String,
    },
    /// The text is not an age X25519 public key.
    #[error("recipient {shown:?}: not an age X25519 public key \"age1…\": {reason}")]
    InvalidRecipient {
        /// The given text (public keys are not secret), shortened when long.
        shown: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The identity text is empty, or a key file holds no key.
    #[error("identity: no AGE-SECRET-KEY-1… line found")]
    EmptyIdentity,
    /// A public key was given where a secret key belongs.
    #[error(
        "identity{at}: this is a public key (recipient \"age1…\"), decryption needs the secret key \"AGE-SECRET-KEY-1…\""
    )]
    PublicKeyAsIdentity {
        /// Where it was found (" line N" in a key file, empty for a single key).
        at: String,
    },
    /// The text is not an age X25519 secret key; the text itself is not shown.
    #[error("identity{at}: not an age X25519 secret key \"AGE-SECRET-KEY-1…\": {reason}")]
    InvalidIdentity {
        /// Where it was found (" line N" in a key file, empty for a single key).
        at: String,
        /// What is wrong, never including the text.
        reason: String,
    },
}

/// The longest part of a rejected public text repeated in an error message.
const SHOWN_CHARS: usize = 72;

fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        text.to_owned()
    } else {
        let start: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{start}…")
    }
}

/// A public key objects are encrypted to (`age1…`, as printed by `age-keygen`).
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(age::x25519::Recipient);

impl Recipient {
    /// Parses one `age1…` public key; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Recipient, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::EmptyRecipient);
        }
        if text
            .get(..15)
            .is_some_and(|start| start.eq_ignore_ascii_case("AGE-SECRET-KEY-"))
        {
            return Err(KeyError::SecretKeyAsRecipient);
        }
        if text.starts_with("ssh-") || text.starts_with("ecdsa-") {
            return Err(KeyError::SshRecipient {
                shown: shown(text.split_whitespace().next().unwrap_or_default()),
            });
        }
        age::x25519::Recipient::from_str(text)
            .map(Recipient)
            .map_err(|reason| KeyError::InvalidRecipient {
                shown: shown(text),
                reason: if reason == "incorrect HRP" {
                    "it does not start with \"age1\"".to_owned()
                } else {
                    reason.to_owned()
                },
            })
    }

    pub(crate) fn as_age(&self) -> &age::x25519::Recipient {
        &self.0
    }
}

impl FromStr for Recipient {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Recipient, KeyError> {
        Recipient::parse(text)
    }
}

impl fmt::Display for Recipient {
    /// The `age1…` form.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Recipient({})", self.0)
    }
}

/// Parses a list of `age1…` public keys, one per entry; the error names the entry's position.
pub fn parse_recipients<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Recipient>, (usize, KeyError)> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| Recipient::parse(text.as_ref()).map_err(|error| (index, error)))
        .collect()
}

/// A secret key that decrypts objects (`AGE-SECRET-KEY-1…`). `Debug` never shows it.
#[derive(Clone)]
pub struct Identity(age::x25519::Identity);

impl Identity {
    /// Parses one `AGE-SECRET-KEY-1…` secret key; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Identity, KeyError> {
        parse_identity_at(text.trim(), "")
    }

    /// Parses a key file as `age-keygen` writes it: `#` comment lines, blank lines and one or more
    /// `AGE-SECRET-KEY-1…` lines (stock `age -d -i FILE` reads the same file).
    pub fn parse_key_file(text: &str) -> Result<Vec<Identity>, KeyError> {
        let identities = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
            .map(|(number, line)| parse_identity_at(line, &format!(" line {number}")))
            .collect::<Result<Vec<Identity>, KeyError>>()?;
        if identities.is_empty() {
            return Err(KeyError::EmptyIdentity);
        }
        Ok(identities)
    }

    /// The public key objects for this identity are encrypted to.
    pub fn to_recipient(&self) -> Recipient {
        Recipient(self.0.to_public())
    }

    /// The secret key as `AGE-SECRET-KEY-1…`. A plain `String` the caller must keep secret (it is
    /// not wiped from memory when dropped).
    pub fn to_secret_string(&self) -> String {
        self.0.to_string().expose_secret().to_owned()
    }

    /// A key file in `age-keygen`'s layout (`# public key: age1…` then the secret key line), which
    /// stock `age -d -i FILE` reads. Callers that want a `# created:` line prepend it.
    pub fn to_key_file(&self) -> String {
        format!(
            "# public key: {}\n{}\n",
            self.to_recipient(),
            self.to_secret_string()
        )
    }

    pub(crate) fn as_age(&self) -> &age::x25519::Identity {
        &self.0
    }
}

fn parse_identity_at(text: &str, at: &str) -> Result<Identity, KeyError> {
    if text.is_empty() {
        return Err(KeyError::EmptyIdentity);
    }
    if text.starts_with("age1") {
        return Err(KeyError::PublicKeyAsIdentity { at: at.to_owned() });
    }
    if !text
        .get(..16)
        .is_some_and(|start| start.eq_ignore_ascii_case("AGE-SECRET-KEY-1"))
    {
        return Err(KeyError::InvalidIdentity {
            at: at.to_owned(),
            reason: "it does not start with \"AGE-SECRET-KEY-1\"".to_owned(),
        });
    }
    age::x25519::Identity::from_str(text)
        .map(Identity)
        .map_err(|reason| KeyError::InvalidIdentity {
            at: at.to_owned(),
            // age's reasons are fixed phrases ("invalid Bech32 encoding", "incorrect identity
            // length"), never the input.
            reason: reason.to_owned(),
        })
}

impl fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "Identity(secret redacted, recipient {})",
            self.0.to_public()
        )
    }
}

/// A freshly generated key pair: the recipient goes into the ISV's configuration, the identity to
/// whoever may restore (and to an offline safe).
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The public key (`age1…`).
    pub recipient: Recipient,
    /// The secret key (`AGE-SECRET-KEY-1…`).
    pub identity: Identity,
}

/// Generates a new X25519 key pair from the operating system's random source.
pub fn generate_keypair() -> KeyPair {
    let identity = age::x25519::Identity::generate();
    KeyPair {
        recipient: Recipient(identity.to_public()),
        identity: Identity(identity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_round_trip_through_their_text_forms() {
        let pair = generate_keypair();
        let recipient_text = pair.recipient.to_string();
        let secret_text = pair.identity.to_secret_string();
        assert!(recipient_text.starts_with("age1"), "{recipient_text}");
        assert!(secret_text.starts_with("AGE-SECRET-KEY-1"));
        assert_eq!(Recipient::parse(&recipient_text).unwrap(), pair.recipient);
        let parsed = Identity::parse(&secret_text).unwrap();
        assert_eq!(parsed.to_recipient(), pair.recipient);
        let from_file = Identity::parse_key_file(&pair.identity.to_key_file()).unwrap();
        assert_eq!(from_file.len(), 1);
        assert_eq!(from_file[0].to_recipient(), pair.recipient);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let pair = generate_keypair();
        let secret_text = pair.identity.to_secret_string();
        for debug in [format!("{pair:?}"), format!("{:?}", pair.identity)] {
            assert!(!debug.contains(&secret_text), "{debug}");
            assert!(!debug.contains("AGE-SECRET-KEY"), "{debug}");
            assert!(debug.contains("redacted"), "{debug}");
        }
    }

    /// Each bad input and a phrase its message must contain.
    #[test]
    fn recipient_errors_say_what_is_wrong() {
        let secret = generate_keypair().identity.to_secret_string();
        let public = generate_keypair().recipient.to_string();
        let mut wrong_checksum = public.clone();
        let last = wrong_checksum.pop().unwrap();
        wrong_checksum.push(if last == 'q' { 'p' } else { 'q' });
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "recipient: empty"),
            ("   ".to_owned(), "recipient: empty"),
            (secret.clone(), "this is a secret key"),
            (secret.to_lowercase(), "this is a secret key"),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA user@host".to_owned(),
                "SSH keys are not supported",
            ),
            ("hello".to_owned(), "not an age X25519 public key"),
            (wrong_checksum, "invalid Bech32 encoding"),
            (
                "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq".to_owned(),
                "not an age X25519 public key",
            ),
        ];
        for (input, expected) in cases {
            let message = Recipient::parse(&input).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "{input:?}: {message:?} lacks {expected:?}"
            );
            assert!(!message.contains(&secret), "{message} repeats the secret");
        }
    }

    #[test]
    fn identity_errors_say_what_is_wrong_without_the_text() {
        let pair = generate_keypair();
        let secret = pair.identity.to_secret_string();
        let mut damaged = secret.clone();
        damaged.replace_range(20..21, if &secret[20..21] == "Q" { "P" } else { "Q" });
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "no AGE-SECRET-KEY-1… line"),
            (pair.recipient.to_string(), "this is a public key"),
            ("hunter2".to_owned(), "does not start with"),
            (damaged.clone(), "invalid Bech32 encoding"),
            (secret[..40].to_owned(), "invalid Bech32 encoding"),
        ];
        for (input, expected) in cases {
            let message = Identity::parse(&input).unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(input.is_empty() || !message.contains(&input), "{message}");
        }
        let key_file = format!("# created: now\n\n{secret}\n{damaged}\n");
        let message = Identity::parse_key_file(&key_file).unwrap_err().to_string();
        assert!(message.starts_with("identity line 4: "), "{message}");
        assert!(!message.contains(&damaged), "{message}");
        assert_eq!(
            Identity::parse_key_file("# only comments\n").unwrap_err(),
            KeyError::EmptyIdentity
        );
    }

    #[test]
    fn a_list_error_names_the_entry() {
        let good = generate_keypair().recipient.to_string();
        let (index, error) = parse_recipients(&[good.as_str(), "nope"]).unwrap_err();
        assert_eq!(index, 1);
        assert!(matches!(error, KeyError::InvalidRecipient { .. }));
        assert_eq!(parse_recipients(&[good.as_str()]).unwrap().len(), 1);
    }

    proptest! {
        /// No input makes parsing panic, and an identity error never repeats its input.
        #[test]
        fn parsing_any_text_is_safe(text in ".{0,120}") {
            let _ = Recipient::parse(&text);
            if let Err(error) = Identity::parse(&text) {
                let trimmed = text.trim();
                prop_assert!(trimmed.len() < 4 || !error.to_string().contains(trimmed));
            }
            let _ = Identity::parse_key_file(&text);
        }

        /// Mangling one character of a real secret key is always refused, and never echoed.
        #[test]
        fn a_mangled_secret_key_is_refused(position in 16usize..74, replacement in "[A-Z0-9]") {
            let secret = generate_keypair().identity.to_secret_string();
            let mut mangled = secret.clone();
            let position = position.min(mangled.len() - 1);
            mangled.replace_range(position..position + 1, &replacement);
            prop_assume!(mangled != secret);
            let error = Identity::parse(&mangled).unwrap_err().to_string();
            prop_assert!(!error.contains(&mangled));
            prop_assert!(!error.contains(&secret));
        }
    }
}
