//! collectd's binary network protocol (the "network" plugin): parse one datagram into value lists and notifications.
//!
//! A datagram is a sequence of parts, each `[type u16 BE][length u16 BE][length - 4 bytes]`.
//! String and number parts set fields of a running state (host, time, plugin, ...) that carries
//! forward to every later values part of the same datagram, exactly as collectd's `parse_packet`
//! does; each values part emits one [`ValueList`] from that state.
//!
//! Security, as in collectd 5's network.c:
//! - A signature part (0x0200) is `[hash 32 bytes][username]`; the HMAC-SHA-256, keyed with the
//!   user's password, covers `username || every byte after the signature part`. The rest of the
//!   datagram is the signed region.
//! - An encryption part (0x0210) is `[username length u16][username][IV 16 bytes][encrypted:
//!   SHA-1 of the plaintext (20 bytes), plaintext]`, AES-256 in OFB mode keyed with
//!   SHA-256(password). The plaintext is a sequence of parts, parsed as its own region.
//! - Each signed or encrypted region starts with an empty state, like collectd's recursive call.
//!
//! Where this parser is stricter than collectd (on purpose, so that bad input is reported and
//! never half-accepted):
//! - collectd stops silently at a malformed part and keeps what it had parsed; here the whole
//!   datagram is an error naming the byte offset.
//! - collectd *skips* parts below the configured security level; here they reject the datagram.
//! - collectd accepts signed packets unverified when it has no user database; here a signature is
//!   always verified, so a signed datagram needs its user in [`Security::users`] even at
//!   [`SecurityLevel::None`].
//! - A signature or encryption part inside a signed or encrypted region (which collectd's sender
//!   never produces) is rejected rather than recursed into.
//! - A values part needs host, plugin, type and time set before it (collectd drops such value
//!   lists silently).
//!
//! Notifications (parts 0x0100 message and 0x0101 severity) are returned as [`Notification`]s:
//! a message part emits one from the running state, as collectd dispatches one.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{KeyInit, Mac};
use ofb::cipher::{KeyIvInit, StreamCipher};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{CollectdError, Value, ValueList};

#[cfg(test)]
mod tests;

/// The UDP port collectd's network plugin sends to by default.
pub const DEFAULT_PORT: u16 = 25826;

const PART_HOST: u16 = 0x0000;
const PART_TIME: u16 = 0x0001;
const PART_PLUGIN: u16 = 0x0002;
const PART_PLUGIN_INSTANCE: u16 = 0x0003;
const PART_TYPE: u16 = 0x0004;
const PART_TYPE_INSTANCE: u16 = 0x0005;
const PART_VALUES: u16 = 0x0006;
const PART_INTERVAL: u16 = 0x0007;
const PART_TIME_HR: u16 = 0x0008;
const PART_INTERVAL_HR: u16 = 0x0009;
const PART_MESSAGE: u16 = 0x0100;
const PART_SEVERITY: u16 = 0x0101;
const PART_SIGNATURE: u16 = 0x0200;
const PART_ENCRYPTION: u16 = 0x0210;

/// Every part starts with a 2-byte type and a 2-byte length that counts these 4 bytes too.
const PART_HEADER_LEN: usize = 4;
/// A number part (time, interval, severity) is its header and one 8-byte big-endian integer.
const NUMBER_PART_LEN: usize = PART_HEADER_LEN + 8;
/// A values part starts with its header and a 2-byte count; each value is 1 type byte + 8 bytes.
const VALUES_HEADER_LEN: usize = PART_HEADER_LEN + 2;
const VALUE_ENCODED_LEN: usize = 9;
/// collectd's `DATA_MAX_NAME_LEN`: host, plugin, type and instances are at most 127 bytes + NUL.
const MAX_NAME_BYTES_WITH_NUL: usize = 128;
/// collectd's `NOTIF_MAX_MSG_LEN`: a notification message is at most 255 bytes + NUL.
const MAX_MESSAGE_BYTES_WITH_NUL: usize = 256;
/// A signature part is its header and the 32-byte HMAC, then the username (at least 1 byte).
const SIGNATURE_FIXED_LEN: usize = PART_HEADER_LEN + 32;
const IV_LEN: usize = 16;
const SHA1_LEN: usize = 20;
/// An encryption part's fixed bytes: header, username length, IV and the encrypted SHA-1.
const ENCRYPTION_FIXED_LEN: usize = PART_HEADER_LEN + 2 + IV_LEN + SHA1_LEN;
/// TIME_HR and INTERVAL_HR count 2^-30 seconds.
const HIGH_RESOLUTION_SHIFT: u32 = 30;

type HmacSha256 = hmac::Hmac<Sha256>;
type Aes256Ofb = ofb::Ofb<aes::Aes256>;

/// The lowest protection a datagram must have to be accepted (collectd's `SecurityLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum SecurityLevel {
    /// Plain, signed and encrypted parts are all accepted (signatures are still verified).
    #[default]
    None,
    /// Every part must be inside a signed or an encrypted region.
    Sign,
    /// Every part must be inside an encrypted region.
    Encrypt,
}

/// What a receiver accepts: the minimum level and the users' passwords (collectd's `AuthFile`).
#[derive(Clone, Default)]
pub struct Security {
    /// The minimum protection accepted.
    pub level: SecurityLevel,
    /// Username → password, used to verify signatures and derive decryption keys.
    pub users: BTreeMap<String, String>,
}

impl Security {
    /// Accepts plain datagrams and knows no users (signed or encrypted datagrams are then rejected).
    pub fn none() -> Security {
        Security::default()
    }

    /// A level and a set of `(username, password)` pairs.
    pub fn new(
        level: SecurityLevel,
        users: impl IntoIterator<Item = (String, String)>,
    ) -> Security {
        Security {
            level,
            users: users.into_iter().collect(),
        }
    }
}

impl fmt::Debug for Security {
    // Passwords are secrets: only the usernames are shown.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Security")
            .field("level", &self.level)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How urgent a notification is (collectd's `NOTIF_FAILURE`, `NOTIF_WARNING`, `NOTIF_OKAY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Code 1.
    Failure,
    /// Code 2.
    Warning,
    /// Code 4.
    Okay,
}

/// A collectd notification (threshold crossed, plugin state change, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The host it is about; may be empty if the sender set none.
    pub host: String,
    /// When it happened, Unix milliseconds.
    pub time_ms: i64,
    /// How urgent it is.
    pub severity: Severity,
    /// The plugin that raised it; may be empty.
    pub plugin: String,
    /// May be empty.
    pub plugin_instance: String,
    /// May be empty.
    pub type_: String,
    /// May be empty.
    pub type_instance: String,
    /// The human-readable text; never empty.
    pub message: String,
}

/// Everything one datagram carried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Packet {
    /// The value lists, in datagram order.
    pub value_lists: Vec<ValueList>,
    /// The notifications, in datagram order.
    pub notifications: Vec<Notification>,
    /// The user whose valid signature or encryption covered *every* value list and notification;
    /// `None` when any of them was unprotected, when two users were involved, or when the
    /// datagram carried nothing.
    pub username: Option<String>,
}

/// Parses one datagram of collectd's network plugin, enforcing `security`.
///
/// Errors name the byte offset in `bytes` and what is wrong there; nothing in `bytes` can make
/// this panic or allocate more than a small multiple of `bytes.len()`.
pub fn parse_packet(bytes: &[u8], security: &Security) -> Result<Packet, CollectdError> {
    let mut collector = Collector::default();
    parse_region(
        bytes,
        Region {
            base_offset: 0,
            protection: Protection::None,
            username: None,
        },
        security,
        &mut collector,
    )?;
    Ok(collector.finish())
}

/// What covers the bytes being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protection {
    None,
    Signed,
    Encrypted,
}

/// Where a run of parts sits in the datagram and what protects it.
#[derive(Debug, Clone, Copy)]
struct Region<'user> {
    /// Offset of the region's first byte in the datagram (decrypted bytes keep their positions).
    base_offset: usize,
    protection: Protection,
    /// The authenticated user of a signed or encrypted region.
    username: Option<&'user str>,
}

/// Who protected the items seen so far, to decide [`Packet::username`].
#[derive(Debug, Default)]
enum ItemUsers {
    #[default]
    NoItems,
    Single(String),
    Mixed,
}

#[derive(Debug, Default)]
struct Collector {
    packet: Packet,
    item_users: ItemUsers,
}

impl Collector {
    fn note_item(&mut self, username: Option<&str>) {
        self.item_users = match (std::mem::take(&mut self.item_users), username) {
            (ItemUsers::NoItems, Some(user)) => ItemUsers::Single(user.to_owned()),
            (ItemUsers::Single(seen), Some(user)) if seen == user => ItemUsers::Single(seen),
            _ => ItemUsers::Mixed,
        };
    }

    fn finish(mut self) -> Packet {
        if let ItemUsers::Single(user) = self.item_users {
            self.packet.username = Some(user);
        }
        self.packet
    }
}

/// The fields that parts set and later values and message parts read.
#[derive(Debug, Default)]
struct PartState {
    host: String,
    plugin: String,
    plugin_instance: String,
    type_: String,
    type_instance: String,
    time_ms: Option<i64>,
    interval_ms: i64,
    severity: Option<u64>,
}

fn malformed(offset: usize, detail: impl Into<String>) -> CollectdError {
    CollectdError::Malformed {
        offset,
        detail: detail.into(),
    }
}

/// The name used for a part type in error messages.
fn part_name(part_type: u16) -> &'static str {
    match part_type {
        PART_HOST => "host",
        PART_TIME => "time",
        PART_PLUGIN => "plugin",
        PART_PLUGIN_INSTANCE => "plugin_instance",
        PART_TYPE => "type",
        PART_TYPE_INSTANCE => "type_instance",
        PART_VALUES => "values",
        PART_INTERVAL => "interval",
        PART_TIME_HR => "time_hr",
        PART_INTERVAL_HR => "interval_hr",
        PART_MESSAGE => "message",
        PART_SEVERITY => "severity",
        PART_SIGNATURE => "signature",
        PART_ENCRYPTION => "encryption",
        _ => "unknown",
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*pair.first()?, *pair.get(1)?]))
}

fn read_8_bytes(bytes: &[u8], at: usize) -> Option<[u8; 8]> {
    bytes.get(at..at.checked_add(8)?)?.try_into().ok()
}

/// Refuses a part that the region's protection does not satisfy for the configured level.
fn check_protection(
    level: SecurityLevel,
    protection: Protection,
    part_type: u16,
    offset: usize,
) -> Result<(), CollectdError> {
    let (required, level_name) = match level {
        SecurityLevel::None => return Ok(()),
        SecurityLevel::Sign if protection != Protection::None => return Ok(()),
        SecurityLevel::Sign => ("signed or encrypted", "signing"),
        SecurityLevel::Encrypt if protection == Protection::Encrypted => return Ok(()),
        SecurityLevel::Encrypt => ("encrypted", "encryption"),
    };
    Err(CollectdError::InsufficientSecurity {
        offset,
        part: part_name(part_type),
        required,
        level: level_name,
    })
}

fn parse_region(
    bytes: &[u8],
    region: Region<'_>,
    security: &Security,
    collector: &mut Collector,
) -> Result<(), CollectdError> {
    let mut state = PartState::default();
    let mut position = 0usize;
    while let Some(rest) = bytes.get(position..).filter(|rest| !rest.is_empty()) {
        let offset = region.base_offset + position;
        let (Some(part_type), Some(declared_length)) = (read_u16(rest, 0), read_u16(rest, 2))
        else {
            return Err(malformed(
                offset,
                format!(
                    "{} trailing bytes are too short for a part header ({PART_HEADER_LEN} bytes)",
                    rest.len()
                ),
            ));
        };
        let length = usize::from(declared_length);
        let name = part_name(part_type);
        if length < PART_HEADER_LEN {
            return Err(malformed(
                offset,
                format!(
                    "{name} part (type 0x{part_type:04x}) declares length {length}, less than its {PART_HEADER_LEN}-byte header"
                ),
            ));
        }
        let Some(part) = rest.get(..length) else {
            return Err(malformed(
                offset,
                format!(
                    "{name} part (type 0x{part_type:04x}) declares length {length} but only {} bytes remain",
                    rest.len()
                ),
            ));
        };
        match part_type {
            PART_SIGNATURE => {
                // The signature covers everything after it, so it ends this region.
                let after = rest.get(length..).unwrap_or_default();
                return parse_signed(part, after, offset, region, security, collector);
            }
            PART_ENCRYPTION => parse_encrypted(part, offset, region, security, collector)?,
            _ => {
                check_protection(security.level, region.protection, part_type, offset)?;
                parse_plain_part(part_type, part, offset, region, &mut state, collector)?;
            }
        }
        position += length;
    }
    Ok(())
}

/// Applies one part that is neither a signature nor an encryption part.
fn parse_plain_part(
    part_type: u16,
    part: &[u8],
    offset: usize,
    region: Region<'_>,
    state: &mut PartState,
    collector: &mut Collector,
) -> Result<(), CollectdError> {
    let max_name = MAX_NAME_BYTES_WITH_NUL;
    match part_type {
        PART_HOST => state.host = parse_string(part_type, part, offset, max_name)?,
        PART_PLUGIN => state.plugin = parse_string(part_type, part, offset, max_name)?,
        PART_PLUGIN_INSTANCE => {
            state.plugin_instance = parse_string(part_type, part, offset, max_name)?;
        }
        PART_TYPE => state.type_ = parse_string(part_type, part, offset, max_name)?,
        PART_TYPE_INSTANCE => {
            state.type_instance = parse_string(part_type, part, offset, max_name)?;
        }
        PART_TIME => {
            let seconds = parse_number(part_type, part, offset)?;
            state.time_ms = Some(seconds_to_ms(part_type, seconds, offset)?);
        }
        PART_TIME_HR => {
            state.time_ms = Some(high_resolution_to_ms(parse_number(
                part_type, part, offset,
            )?));
        }
        PART_INTERVAL => {
            let seconds = parse_number(part_type, part, offset)?;
            state.interval_ms = seconds_to_ms(part_type, seconds, offset)?;
        }
        PART_INTERVAL_HR => {
            state.interval_ms = high_resolution_to_ms(parse_number(part_type, part, offset)?);
        }
        PART_SEVERITY => state.severity = Some(parse_number(part_type, part, offset)?),
        PART_VALUES => {
            let values = parse_values(part, offset)?;
            let value_list = value_list_from_state(state, values, offset)?;
            collector.note_item(region.username);
            collector.packet.value_lists.push(value_list);
        }
        PART_MESSAGE => {
            let message = parse_string(part_type, part, offset, MAX_MESSAGE_BYTES_WITH_NUL)?;
            let notification = notification_from_state(state, message, offset)?;
            collector.note_item(region.username);
            collector.packet.notifications.push(notification);
        }
        // Unknown part types are skipped, as collectd does, so newer senders stay readable.
        _ => {}
    }
    Ok(())
}

/// A string part: UTF-8 bytes, exactly one NUL at the end, at most `max_with_nul` bytes in all.
fn parse_string(
    part_type: u16,
    part: &[u8],
    offset: usize,
    max_with_nul: usize,
) -> Result<String, CollectdError> {
    let name = part_name(part_type);
    let payload = part.get(PART_HEADER_LEN..).unwrap_or_default();
    let Some((&last, text)) = payload.split_last() else {
        return Err(malformed(
            offset,
            format!("{name} part is empty; a string part holds at least its NUL terminator"),
        ));
    };
    if last != 0 {
        return Err(malformed(
            offset,
            format!("{name} part string is not NUL-terminated"),
        ));
    }
    if payload.len() > max_with_nul {
        return Err(malformed(
            offset,
            format!(
                "{name} part string is {} bytes long, more than collectd's limit of {}",
                text.len(),
                max_with_nul - 1
            ),
        ));
    }
    if let Some(position) = text.iter().position(|&byte| byte == 0) {
        return Err(malformed(
            offset + PART_HEADER_LEN + position,
            format!("{name} part string has a NUL byte before its end"),
        ));
    }
    match std::str::from_utf8(text) {
        Ok(text) => Ok(text.to_owned()),
        Err(error) => Err(malformed(
            offset + PART_HEADER_LEN + error.valid_up_to(),
            format!("{name} part string is not valid UTF-8"),
        )),
    }
}

/// A number part: exactly one big-endian u64 after the header.
fn parse_number(part_type: u16, part: &[u8], offset: usize) -> Result<u64, CollectdError> {
    if part.len() != NUMBER_PART_LEN {
        return Err(malformed(
            offset,
            format!(
                "{} part has length {}, expected {NUMBER_PART_LEN}",
                part_name(part_type),
                part.len()
            ),
        ));
    }
    match read_8_bytes(part, PART_HEADER_LEN) {
        Some(bytes) => Ok(u64::from_be_bytes(bytes)),
        None => Err(malformed(offset, "number part is truncated")),
    }
}

fn seconds_to_ms(part_type: u16, seconds: u64, offset: usize) -> Result<i64, CollectdError> {
    seconds
        .checked_mul(1000)
        .and_then(|ms| i64::try_from(ms).ok())
        .ok_or_else(|| {
            malformed(
                offset,
                format!(
                    "{} part value {seconds} s is out of range",
                    part_name(part_type)
                ),
            )
        })
}

/// 2^-30 s units to milliseconds, rounded to nearest like collectd's `CDTIME_T_TO_MS`.
fn high_resolution_to_ms(units: u64) -> i64 {
    let ms = (u128::from(units) * 1000 + (1u128 << (HIGH_RESOLUTION_SHIFT - 1)))
        >> HIGH_RESOLUTION_SHIFT;
    // u64::MAX * 1000 / 2^30 is about 1.7e13, far below i64::MAX.
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn parse_values(part: &[u8], offset: usize) -> Result<Vec<Value>, CollectdError> {
    let length = part.len();
    let Some(count) = read_u16(part, PART_HEADER_LEN).map(usize::from) else {
        return Err(malformed(
            offset,
            format!(
                "values part length {length} is shorter than its {VALUES_HEADER_LEN}-byte header"
            ),
        ));
    };
    if count == 0 {
        return Err(malformed(offset, "values part declares no values"));
    }
    let room = (length - VALUES_HEADER_LEN) / VALUE_ENCODED_LEN;
    let needed = VALUES_HEADER_LEN + count * VALUE_ENCODED_LEN;
    if room != count {
        return Err(malformed(
            offset,
            format!("values part declares {count} values but has room for {room}"),
        ));
    }
    if needed != length {
        return Err(malformed(
            offset,
            format!(
                "values part declares {count} values ({needed} bytes) but is {length} bytes long"
            ),
        ));
    }
    // `count` is now bounded by the part length, itself bounded by the datagram.
    let mut values = Vec::with_capacity(count);
    for index in 0..count {
        let type_at = VALUES_HEADER_LEN + index;
        let value_at = VALUES_HEADER_LEN + count + index * 8;
        let (Some(&code), Some(raw)) = (part.get(type_at), read_8_bytes(part, value_at)) else {
            return Err(malformed(offset, "values part is truncated"));
        };
        let value = match code {
            0 => Value::Counter(u64::from_be_bytes(raw)),
            // Gauges are the one little-endian field: collectd writes doubles in x86 byte order.
            1 => Value::Gauge(f64::from_le_bytes(raw)),
            2 => Value::Derive(i64::from_be_bytes(raw)),
            3 => Value::Absolute(u64::from_be_bytes(raw)),
            _ => {
                return Err(malformed(
                    offset + type_at,
                    format!(
                        "values part value {index} has unknown data source type code {code} (known: 0 counter, 1 gauge, 2 derive, 3 absolute)"
                    ),
                ));
            }
        };
        values.push(value);
    }
    Ok(values)
}

fn value_list_from_state(
    state: &PartState,
    values: Vec<Value>,
    offset: usize,
) -> Result<ValueList, CollectdError> {
    for (field, value) in [
        ("host", &state.host),
        ("plugin", &state.plugin),
        ("type", &state.type_),
    ] {
        if value.is_empty() {
            return Err(malformed(
                offset,
                format!("values part comes before any non-empty {field} part"),
            ));
        }
    }
    let Some(time_ms) = state.time_ms.filter(|&time| time > 0) else {
        return Err(malformed(
            offset,
            "values part comes before any non-zero time or time_hr part",
        ));
    };
    Ok(ValueList {
        host: state.host.clone(),
        time_ms,
        interval_ms: state.interval_ms,
        plugin: state.plugin.clone(),
        plugin_instance: state.plugin_instance.clone(),
        type_: state.type_.clone(),
        type_instance: state.type_instance.clone(),
        values,
    })
}

fn notification_from_state(
    state: &PartState,
    message: String,
    offset: usize,
) -> Result<Notification, CollectdError> {
    let severity = match state.severity {
        Some(1) => Severity::Failure,
        Some(2) => Severity::Warning,
        Some(4) => Severity::Okay,
        Some(other) => {
            return Err(malformed(
                offset,
                format!(
                    "message part follows severity {other}, which is not 1 (failure), 2 (warning) or 4 (okay)"
                ),
            ));
        }
        None => {
            return Err(malformed(
                offset,
                "message part comes before any severity part",
            ));
        }
    };
    let Some(time_ms) = state.time_ms.filter(|&time| time > 0) else {
        return Err(malformed(
            offset,
            "message part comes before any non-zero time or time_hr part",
        ));
    };
    if message.is_empty() {
        return Err(malformed(offset, "message part is empty"));
    }
    Ok(Notification {
        host: state.host.clone(),
        time_ms,
        severity,
        plugin: state.plugin.clone(),
        plugin_instance: state.plugin_instance.clone(),
        type_: state.type_.clone(),
        type_instance: state.type_instance.clone(),
        message,
    })
}

/// Security parts are only read at the top of the datagram; collectd's sender never nests them.
fn refuse_nesting(region: Region<'_>, part_type: u16, offset: usize) -> Result<(), CollectdError> {
    if region.protection == Protection::None {
        return Ok(());
    }
    Err(malformed(
        offset,
        format!(
            "{} part inside a signed or encrypted region is not supported",
            part_name(part_type)
        ),
    ))
}

fn username_from(bytes: &[u8], part_type: u16, offset: usize) -> Result<&str, CollectdError> {
    std::str::from_utf8(bytes).map_err(|_| {
        malformed(
            offset,
            format!("{} part username is not valid UTF-8", part_name(part_type)),
        )
    })
}

fn password_of<'security>(
    security: &'security Security,
    username: &str,
    part_type: u16,
    offset: usize,
) -> Result<&'security str, CollectdError> {
    security
        .users
        .get(username)
        .map(String::as_str)
        .ok_or_else(|| CollectdError::UnknownUser {
            offset,
            part: part_name(part_type),
            username: username.to_owned(),
        })
}

/// Verifies a signature part and parses the rest of the datagram (`after`) as a signed region.
fn parse_signed(
    part: &[u8],
    after: &[u8],
    offset: usize,
    region: Region<'_>,
    security: &Security,
    collector: &mut Collector,
) -> Result<(), CollectdError> {
    refuse_nesting(region, PART_SIGNATURE, offset)?;
    if security.level == SecurityLevel::Encrypt {
        return Err(CollectdError::InsufficientSecurity {
            offset,
            part: "signature",
            required: "encrypted",
            level: "encryption",
        });
    }
    let (Some(mac), Some(username_bytes)) = (
        part.get(PART_HEADER_LEN..SIGNATURE_FIXED_LEN),
        part.get(SIGNATURE_FIXED_LEN..)
            .filter(|name| !name.is_empty()),
    ) else {
        return Err(malformed(
            offset,
            format!(
                "signature part length {} leaves no room for a username (needs more than {SIGNATURE_FIXED_LEN})",
                part.len()
            ),
        ));
    };
    let username = username_from(username_bytes, PART_SIGNATURE, offset)?;
    let password = password_of(security, username, PART_SIGNATURE, offset)?;
    let Ok(mut hmac) = HmacSha256::new_from_slice(password.as_bytes()) else {
        // HMAC takes keys of any length; this arm only exists because the API is fallible.
        return Err(malformed(offset, "signature key cannot be used"));
    };
    hmac.update(username_bytes);
    hmac.update(after);
    // `verify_slice` compares in constant time.
    if hmac.verify_slice(mac).is_err() {
        return Err(CollectdError::BadSignature {
            offset,
            username: username.to_owned(),
        });
    }
    parse_region(
        after,
        Region {
            base_offset: offset + part.len(),
            protection: Protection::Signed,
            username: Some(username),
        },
        security,
        collector,
    )
}

/// Decrypts an encryption part, checks its SHA-1 and parses the plaintext as an encrypted region.
fn parse_encrypted(
    part: &[u8],
    offset: usize,
    region: Region<'_>,
    security: &Security,
    collector: &mut Collector,
) -> Result<(), CollectdError> {
    refuse_nesting(region, PART_ENCRYPTION, offset)?;
    let too_short = || {
        malformed(
            offset,
            format!(
                "encryption part length {} is too short (needs more than {ENCRYPTION_FIXED_LEN} bytes plus the username)",
                part.len()
            ),
        )
    };
    if part.len() <= ENCRYPTION_FIXED_LEN {
        return Err(too_short());
    }
    let username_length = read_u16(part, PART_HEADER_LEN)
        .map(usize::from)
        .ok_or_else(too_short)?;
    let username_start = PART_HEADER_LEN + 2;
    let iv_start = username_start + username_length;
    let encrypted_start = iv_start + IV_LEN;
    // At least one byte of payload must follow the encrypted SHA-1, as collectd requires.
    if username_length == 0 || encrypted_start + SHA1_LEN >= part.len() {
        return Err(malformed(
            offset,
            format!(
                "encryption part username length {username_length} does not fit its part length {}",
                part.len()
            ),
        ));
    }
    let (Some(username_bytes), Some(iv), Some(encrypted)) = (
        part.get(username_start..iv_start),
        part.get(iv_start..encrypted_start),
        part.get(encrypted_start..),
    ) else {
        return Err(too_short());
    };
    let username = username_from(username_bytes, PART_ENCRYPTION, offset)?;
    let password = password_of(security, username, PART_ENCRYPTION, offset)?;
    let key = Sha256::digest(password.as_bytes());
    let Ok(mut cipher) = Aes256Ofb::new_from_slices(key.as_slice(), iv) else {
        // The key is a SHA-256 digest (32 bytes) and the IV slice is IV_LEN bytes by construction.
        return Err(malformed(offset, "encryption key or IV has the wrong size"));
    };
    // A copy bounded by the part length (at most 65535 bytes).
    let mut plaintext = encrypted.to_vec();
    cipher.apply_keystream(&mut plaintext);
    let (checksum, payload) = plaintext.split_at(SHA1_LEN.min(plaintext.len()));
    if !digests_equal(Sha1::digest(payload).as_slice(), checksum) {
        return Err(CollectdError::DecryptionFailed {
            offset,
            username: username.to_owned(),
        });
    }
    parse_region(
        payload,
        Region {
            base_offset: offset + encrypted_start + SHA1_LEN,
            protection: Protection::Encrypted,
            username: Some(username),
        },
        security,
        collector,
    )
}

/// Constant-time equality, so a forged checksum cannot be found byte by byte through timing.
fn digests_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
