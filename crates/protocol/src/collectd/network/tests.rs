//! Tests of the binary protocol parser, with a small encoder that writes datagrams the way collectd's network.c does.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};
use proptest::prelude::*;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::*;

/// Builds a datagram part by part.
#[derive(Default, Clone)]
struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    fn new() -> Encoder {
        Encoder::default()
    }

    fn raw(mut self, part_type: u16, payload: &[u8]) -> Encoder {
        self.bytes.extend_from_slice(&part_type.to_be_bytes());
        let length = u16::try_from(payload.len() + 4).unwrap();
        self.bytes.extend_from_slice(&length.to_be_bytes());
        self.bytes.extend_from_slice(payload);
        self
    }

    fn string(self, part_type: u16, text: &str) -> Encoder {
        let mut payload = text.as_bytes().to_vec();
        payload.push(0);
        self.raw(part_type, &payload)
    }

    fn number(self, part_type: u16, number: u64) -> Encoder {
        self.raw(part_type, &number.to_be_bytes())
    }

    fn values(self, values: &[Value]) -> Encoder {
        let mut payload = u16::try_from(values.len()).unwrap().to_be_bytes().to_vec();
        for value in values {
            payload.push(match value {
                Value::Counter(_) => 0,
                Value::Gauge(_) => 1,
                Value::Derive(_) => 2,
                Value::Absolute(_) => 3,
            });
        }
        for value in values {
            payload.extend_from_slice(&match *value {
                Value::Counter(number) | Value::Absolute(number) => number.to_be_bytes(),
                Value::Gauge(number) => number.to_le_bytes(),
                Value::Derive(number) => number.to_be_bytes(),
            });
        }
        self.raw(PART_VALUES, &payload)
    }

    /// Writes a whole value list the way collectd does: every identifier part, high-resolution times.
    fn value_list(self, list: &ValueList) -> Encoder {
        self.string(PART_HOST, &list.host)
            .number(
                PART_TIME_HR,
                ((list.time_ms as u128) << 30).div_ceil(1000) as u64,
            )
            .number(
                PART_INTERVAL_HR,
                ((list.interval_ms as u128) << 30).div_ceil(1000) as u64,
            )
            .string(PART_PLUGIN, &list.plugin)
            .string(PART_PLUGIN_INSTANCE, &list.plugin_instance)
            .string(PART_TYPE, &list.type_)
            .string(PART_TYPE_INSTANCE, &list.type_instance)
            .values(&list.values)
    }

    /// Host, time (seconds), plugin and type: the minimum a values part needs.
    fn identity(self) -> Encoder {
        self.string(PART_HOST, "h")
            .number(PART_TIME, 1_700_000_000)
            .string(PART_PLUGIN, "p")
            .string(PART_TYPE, "t")
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// `[signature part][payload]`, signed like collectd's `network_send_buffer_signed`.
fn sign(payload: &[u8], username: &str, password: &str) -> Vec<u8> {
    let mut hmac = hmac::Hmac::<Sha256>::new_from_slice(password.as_bytes()).unwrap();
    hmac.update(username.as_bytes());
    hmac.update(payload);
    let mut part_payload = hmac.finalize().into_bytes().to_vec();
    part_payload.extend_from_slice(username.as_bytes());
    let mut bytes = Encoder::new().raw(PART_SIGNATURE, &part_payload).finish();
    bytes.extend_from_slice(payload);
    bytes
}

/// One encryption part holding `payload`, like collectd's `network_send_buffer_encrypted`.
fn encrypt(payload: &[u8], username: &str, password: &str, iv: [u8; 16]) -> Vec<u8> {
    let mut plaintext = Sha1::digest(payload).to_vec();
    plaintext.extend_from_slice(payload);
    let key = Sha256::digest(password.as_bytes());
    let mut cipher = ofb::Ofb::<aes::Aes256>::new_from_slices(&key, &iv).unwrap();
    cipher.apply_keystream(&mut plaintext);
    let mut part_payload = u16::try_from(username.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    part_payload.extend_from_slice(username.as_bytes());
    part_payload.extend_from_slice(&iv);
    part_payload.extend_from_slice(&plaintext);
    Encoder::new().raw(PART_ENCRYPTION, &part_payload).finish()
}

fn security(level: SecurityLevel) -> Security {
    Security::new(level, [("ck".to_owned(), "secret".to_owned())])
}

fn parse_error(bytes: &[u8], security: &Security) -> String {
    parse_packet(bytes, security).unwrap_err().to_string()
}

fn sample_list() -> ValueList {
    ValueList {
        host: "web-1".to_owned(),
        time_ms: 1_700_000_000_250,
        interval_ms: 10_000,
        plugin: "interface".to_owned(),
        plugin_instance: "eth0".to_owned(),
        type_: "if_octets".to_owned(),
        type_instance: String::new(),
        values: vec![Value::Derive(1234), Value::Derive(-5)],
    }
}

#[test]
fn every_identifier_and_time_part_lands_in_the_value_list() {
    let bytes = Encoder::new()
        .string(PART_HOST, "web-1")
        .number(PART_TIME, 1_700_000_000)
        .number(PART_INTERVAL, 10)
        .string(PART_PLUGIN, "cpu")
        .string(PART_PLUGIN_INSTANCE, "0")
        .string(PART_TYPE, "cpu")
        .string(PART_TYPE_INSTANCE, "idle")
        .values(&[Value::Derive(42)])
        .finish();
    let packet = parse_packet(&bytes, &Security::none()).unwrap();
    assert_eq!(
        packet.value_lists,
        [ValueList {
            host: "web-1".to_owned(),
            time_ms: 1_700_000_000_000,
            interval_ms: 10_000,
            plugin: "cpu".to_owned(),
            plugin_instance: "0".to_owned(),
            type_: "cpu".to_owned(),
            type_instance: "idle".to_owned(),
            values: vec![Value::Derive(42)],
        }]
    );
    assert!(packet.notifications.is_empty());
    assert_eq!(packet.username, None);
}

#[test]
fn high_resolution_time_and_interval_are_2_to_the_minus_30_seconds() {
    let one_second = 1u64 << 30;
    let bytes = Encoder::new()
        .identity()
        .number(PART_TIME_HR, 1_700_000_000 * one_second + one_second / 2)
        .number(PART_INTERVAL_HR, one_second / 4)
        .values(&[Value::Gauge(1.0)])
        .finish();
    let list = &parse_packet(&bytes, &Security::none()).unwrap().value_lists[0];
    assert_eq!(list.time_ms, 1_700_000_000_500);
    assert_eq!(list.interval_ms, 250);
    // Rounded to the nearest millisecond like collectd's CDTIME_T_TO_MS.
    assert_eq!(high_resolution_to_ms(one_second / 1000 * 3 + 1), 3);
    assert_eq!(high_resolution_to_ms(u64::MAX), 17_179_869_184_000);
}

#[test]
fn every_value_kind_decodes_with_its_byte_order() {
    let values = [
        Value::Counter(u64::MAX),
        Value::Gauge(-0.125),
        Value::Derive(i64::MIN),
        Value::Absolute(7),
    ];
    let bytes = Encoder::new().identity().values(&values).finish();
    // Check one encoding by hand: the gauge's bytes are little-endian.
    let gauge_at = bytes.len() - 3 * 8;
    assert_eq!(&bytes[gauge_at..gauge_at + 8], &(-0.125f64).to_le_bytes());
    let packet = parse_packet(&bytes, &Security::none()).unwrap();
    assert_eq!(packet.value_lists[0].values, values);
    assert_eq!(packet.value_lists[0].interval_ms, 0);
}

#[test]
fn state_carries_forward_and_later_parts_override_it() {
    let bytes = Encoder::new()
        .string(PART_HOST, "web-1")
        .number(PART_TIME, 100)
        .string(PART_PLUGIN, "cpu")
        .string(PART_PLUGIN_INSTANCE, "0")
        .string(PART_TYPE, "cpu")
        .string(PART_TYPE_INSTANCE, "user")
        .values(&[Value::Derive(1)])
        .string(PART_TYPE_INSTANCE, "idle")
        .values(&[Value::Derive(2)])
        .string(PART_PLUGIN_INSTANCE, "1")
        .number(PART_TIME, 101)
        .values(&[Value::Derive(3)])
        .string(PART_PLUGIN, "load")
        .string(PART_PLUGIN_INSTANCE, "")
        .string(PART_TYPE, "load")
        .string(PART_TYPE_INSTANCE, "")
        .values(&[Value::Gauge(0.1), Value::Gauge(0.2), Value::Gauge(0.3)])
        .finish();
    let lists = parse_packet(&bytes, &Security::none()).unwrap().value_lists;
    let summary: Vec<(&str, i64, &str, &str, &str, &str, usize)> = lists
        .iter()
        .map(|list| {
            (
                list.host.as_str(),
                list.time_ms,
                list.plugin.as_str(),
                list.plugin_instance.as_str(),
                list.type_.as_str(),
                list.type_instance.as_str(),
                list.values.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("web-1", 100_000, "cpu", "0", "cpu", "user", 1),
            ("web-1", 100_000, "cpu", "0", "cpu", "idle", 1),
            ("web-1", 101_000, "cpu", "1", "cpu", "idle", 1),
            ("web-1", 101_000, "load", "", "load", "", 3),
        ]
    );
}

#[test]
fn unknown_part_types_are_skipped() {
    let bytes = Encoder::new()
        .identity()
        .raw(0x7777, b"whatever bytes")
        .raw(0x0300, b"")
        .values(&[Value::Gauge(1.0)])
        .finish();
    assert_eq!(
        parse_packet(&bytes, &Security::none())
            .unwrap()
            .value_lists
            .len(),
        1
    );
}

#[test]
fn empty_datagram_is_an_empty_packet() {
    assert_eq!(
        parse_packet(&[], &security(SecurityLevel::Encrypt)).unwrap(),
        Packet::default()
    );
}

#[test]
fn message_and_severity_parts_make_notifications() {
    let bytes = Encoder::new()
        .string(PART_HOST, "web-1")
        .number(PART_TIME_HR, 1_700_000_000u64 << 30)
        .string(PART_PLUGIN, "df")
        .string(PART_PLUGIN_INSTANCE, "root")
        .string(PART_TYPE, "percent_bytes")
        .string(PART_TYPE_INSTANCE, "free")
        .number(PART_SEVERITY, 2)
        .string(PART_MESSAGE, "disk almost full")
        .number(PART_SEVERITY, 4)
        .string(PART_MESSAGE, "ok again")
        .number(PART_SEVERITY, 1)
        .string(PART_MESSAGE, "failed")
        .finish();
    let packet = parse_packet(&bytes, &Security::none()).unwrap();
    assert!(packet.value_lists.is_empty());
    assert_eq!(
        packet.notifications[0],
        Notification {
            host: "web-1".to_owned(),
            time_ms: 1_700_000_000_000,
            severity: Severity::Warning,
            plugin: "df".to_owned(),
            plugin_instance: "root".to_owned(),
            type_: "percent_bytes".to_owned(),
            type_instance: "free".to_owned(),
            message: "disk almost full".to_owned(),
        }
    );
    let severities: Vec<Severity> = packet
        .notifications
        .iter()
        .map(|notification| notification.severity)
        .collect();
    assert_eq!(
        severities,
        [Severity::Warning, Severity::Okay, Severity::Failure]
    );
}

#[test]
fn signed_packets_verify_and_name_their_user() {
    let payload = Encoder::new().value_list(&sample_list()).finish();
    let bytes = sign(&payload, "ck", "secret");
    for level in [SecurityLevel::None, SecurityLevel::Sign] {
        let packet = parse_packet(&bytes, &security(level)).unwrap();
        assert_eq!(packet.value_lists, [sample_list()]);
        assert_eq!(packet.username.as_deref(), Some("ck"));
    }
}

#[test]
fn encrypted_packets_decrypt_at_every_level() {
    let payload = Encoder::new().value_list(&sample_list()).finish();
    let bytes = encrypt(&payload, "ck", "secret", [7; 16]);
    for level in [
        SecurityLevel::None,
        SecurityLevel::Sign,
        SecurityLevel::Encrypt,
    ] {
        let packet = parse_packet(&bytes, &security(level)).unwrap();
        assert_eq!(packet.value_lists, [sample_list()]);
        assert_eq!(packet.username.as_deref(), Some("ck"));
    }
}

#[test]
fn packet_username_needs_every_item_protected_by_one_user() {
    let list = Encoder::new().value_list(&sample_list()).finish();
    let mut mixed = list.clone();
    mixed.extend_from_slice(&sign(&list, "ck", "secret"));
    let packet = parse_packet(&mixed, &security(SecurityLevel::None)).unwrap();
    assert_eq!(packet.value_lists.len(), 2);
    assert_eq!(packet.username, None);

    let two_users = Security::new(
        SecurityLevel::Encrypt,
        [
            ("ck".to_owned(), "secret".to_owned()),
            ("other".to_owned(), "pw".to_owned()),
        ],
    );
    let mut bytes = encrypt(&list, "ck", "secret", [1; 16]);
    bytes.extend_from_slice(&encrypt(&list, "other", "pw", [2; 16]));
    let packet = parse_packet(&bytes, &two_users).unwrap();
    assert_eq!(packet.value_lists.len(), 2);
    assert_eq!(packet.username, None);

    let mut same_user = encrypt(&list, "ck", "secret", [1; 16]);
    same_user.extend_from_slice(&encrypt(&list, "ck", "secret", [3; 16]));
    let packet = parse_packet(&same_user, &two_users).unwrap();
    assert_eq!(packet.username.as_deref(), Some("ck"));
}

#[test]
fn signed_and_encrypted_regions_start_with_an_empty_state() {
    let outer = Encoder::new().identity().finish();
    let inner = Encoder::new().values(&[Value::Gauge(1.0)]).finish();
    let mut bytes = outer.clone();
    bytes.extend_from_slice(&sign(&inner, "ck", "secret"));
    let signature_len = 4 + 32 + 2;
    assert_eq!(
        parse_error(&bytes, &security(SecurityLevel::None)),
        format!(
            "offset {}: values part comes before any non-empty host part",
            outer.len() + signature_len
        )
    );
    // After an encrypted part, the outer state is as it was before it.
    let mut bytes = outer;
    bytes.extend_from_slice(&encrypt(
        &Encoder::new().string(PART_HOST, "inner").finish(),
        "ck",
        "secret",
        [0; 16],
    ));
    bytes.extend_from_slice(&inner);
    let packet = parse_packet(&bytes, &security(SecurityLevel::None)).unwrap();
    assert_eq!(packet.value_lists[0].host, "h");
}

#[test]
fn framing_errors_say_offset_and_what() {
    let valid = Encoder::new().identity().finish();
    let plain = Security::none();
    let with_tail = |tail: &[u8]| {
        let mut bytes = valid.clone();
        bytes.extend_from_slice(tail);
        bytes
    };
    let at = valid.len();
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            with_tail(&[0]),
            format!("offset {at}: 1 trailing bytes are too short for a part header (4 bytes)"),
        ),
        (
            with_tail(&[0, 6, 0]),
            format!("offset {at}: 3 trailing bytes are too short for a part header (4 bytes)"),
        ),
        (
            with_tail(&[0, 0, 0, 3]),
            format!(
                "offset {at}: host part (type 0x0000) declares length 3, less than its 4-byte header"
            ),
        ),
        (
            with_tail(&[0x12, 0x34, 0, 0]),
            format!(
                "offset {at}: unknown part (type 0x1234) declares length 0, less than its 4-byte header"
            ),
        ),
        (
            with_tail(&[0, 2, 0, 9, b'c', b'p', b'u', 0]),
            format!(
                "offset {at}: plugin part (type 0x0002) declares length 9 but only 8 bytes remain"
            ),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(parse_error(&bytes, &plain), expected);
    }
}

#[test]
fn values_part_errors() {
    let valid = Encoder::new().identity().finish();
    let at = valid.len();
    let with = |part: Vec<u8>| {
        let mut bytes = valid.clone();
        bytes.extend_from_slice(&part);
        bytes
    };
    let one_gauge = Encoder::new().values(&[Value::Gauge(1.0)]).finish();
    // Count says 3, but the part holds 2 values.
    let mut three_declared = Encoder::new()
        .values(&[Value::Gauge(1.0), Value::Gauge(2.0)])
        .finish();
    three_declared[5] = 3;
    let mut bad_code = Encoder::new()
        .values(&[Value::Gauge(1.0), Value::Gauge(2.0)])
        .finish();
    bad_code[7] = 9;
    let mut padded = one_gauge.clone();
    padded.extend_from_slice(&[0, 0]);
    padded[3] += 2;
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            with(three_declared),
            format!("offset {at}: values part declares 3 values but has room for 2"),
        ),
        (
            with(padded),
            format!("offset {at}: values part declares 1 values (15 bytes) but is 17 bytes long"),
        ),
        (
            with(Encoder::new().raw(PART_VALUES, &[0]).finish()),
            format!("offset {at}: values part length 5 is shorter than its 6-byte header"),
        ),
        (
            with(Encoder::new().raw(PART_VALUES, &[0, 0]).finish()),
            format!("offset {at}: values part declares no values"),
        ),
        (
            with(bad_code),
            format!(
                "offset {}: values part value 1 has unknown data source type code 9 (known: 0 counter, 1 gauge, 2 derive, 3 absolute)",
                at + 7
            ),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(parse_error(&bytes, &Security::none()), expected);
    }

    // Missing identity: each field in turn.
    let without = |skip: u16| {
        let mut encoder = Encoder::new();
        for (part_type, text) in [(PART_HOST, "h"), (PART_PLUGIN, "p"), (PART_TYPE, "t")] {
            if part_type != skip {
                encoder = encoder.string(part_type, text);
            }
        }
        if skip != PART_TIME {
            encoder = encoder.number(PART_TIME, 5);
        }
        let prefix = encoder.clone().finish().len();
        (encoder.values(&[Value::Gauge(1.0)]).finish(), prefix)
    };
    for (skip, what) in [
        (PART_HOST, "non-empty host part"),
        (PART_PLUGIN, "non-empty plugin part"),
        (PART_TYPE, "non-empty type part"),
        (PART_TIME, "non-zero time or time_hr part"),
    ] {
        let (bytes, at) = without(skip);
        assert_eq!(
            parse_error(&bytes, &Security::none()),
            format!("offset {at}: values part comes before any {what}")
        );
    }
}

#[test]
fn string_and_number_part_errors() {
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            Encoder::new().raw(PART_HOST, b"web").finish(),
            "offset 0: host part string is not NUL-terminated".to_owned(),
        ),
        (
            Encoder::new().raw(PART_PLUGIN, b"").finish(),
            "offset 0: plugin part is empty; a string part holds at least its NUL terminator"
                .to_owned(),
        ),
        (
            Encoder::new().raw(PART_TYPE, b"ab\xffcd\0").finish(),
            "offset 6: type part string is not valid UTF-8".to_owned(),
        ),
        (
            Encoder::new().raw(PART_TYPE_INSTANCE, b"ab\0cd\0").finish(),
            "offset 6: type_instance part string has a NUL byte before its end".to_owned(),
        ),
        (
            Encoder::new()
                .string(PART_PLUGIN_INSTANCE, &"x".repeat(128))
                .finish(),
            "offset 0: plugin_instance part string is 128 bytes long, more than collectd's limit of 127"
                .to_owned(),
        ),
        (
            Encoder::new().string(PART_MESSAGE, &"x".repeat(256)).finish(),
            "offset 0: message part string is 256 bytes long, more than collectd's limit of 255"
                .to_owned(),
        ),
        (
            Encoder::new().raw(PART_TIME, &[0; 4]).finish(),
            "offset 0: time part has length 8, expected 12".to_owned(),
        ),
        (
            Encoder::new().raw(PART_INTERVAL_HR, &[0; 9]).finish(),
            "offset 0: interval_hr part has length 13, expected 12".to_owned(),
        ),
        (
            Encoder::new().number(PART_TIME, u64::MAX / 10).finish(),
            format!("offset 0: time part value {} s is out of range", u64::MAX / 10),
        ),
        (
            Encoder::new().number(PART_INTERVAL, u64::MAX).finish(),
            format!("offset 0: interval part value {} s is out of range", u64::MAX),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(parse_error(&bytes, &Security::none()), expected);
    }
    // The longest names collectd allows are accepted.
    let longest = Encoder::new()
        .string(PART_HOST, &"h".repeat(127))
        .string(0x0400, "skipped unknown part")
        .finish();
    assert!(parse_packet(&longest, &Security::none()).is_ok());
}

#[test]
fn notification_errors() {
    let base = || Encoder::new().string(PART_HOST, "h").number(PART_TIME, 10);
    let at = base().finish().len();
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            base().string(PART_MESSAGE, "hi").finish(),
            format!("offset {at}: message part comes before any severity part"),
        ),
        (
            base()
                .number(PART_SEVERITY, 3)
                .string(PART_MESSAGE, "hi")
                .finish(),
            format!(
                "offset {}: message part follows severity 3, which is not 1 (failure), 2 (warning) or 4 (okay)",
                at + 12
            ),
        ),
        (
            base()
                .number(PART_SEVERITY, 1)
                .string(PART_MESSAGE, "")
                .finish(),
            format!("offset {}: message part is empty", at + 12),
        ),
        (
            Encoder::new()
                .number(PART_SEVERITY, 1)
                .string(PART_MESSAGE, "hi")
                .finish(),
            "offset 12: message part comes before any non-zero time or time_hr part".to_owned(),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(parse_error(&bytes, &Security::none()), expected);
    }
}

#[test]
fn security_level_errors() {
    let payload = Encoder::new().value_list(&sample_list()).finish();
    let signed = sign(&payload, "ck", "secret");
    let encrypted = encrypt(&payload, "ck", "secret", [9; 16]);
    let cases: Vec<(&[u8], SecurityLevel, &str)> = vec![
        (
            &payload,
            SecurityLevel::Sign,
            "offset 0: host part is not signed or encrypted, but the security level requires signing",
        ),
        (
            &payload,
            SecurityLevel::Encrypt,
            "offset 0: host part is not encrypted, but the security level requires encryption",
        ),
        (
            &signed,
            SecurityLevel::Encrypt,
            "offset 0: signature part is not encrypted, but the security level requires encryption",
        ),
    ];
    for (bytes, level, expected) in cases {
        assert_eq!(parse_error(bytes, &security(level)), expected);
    }
    // A plain part after an encrypted one is refused too.
    let mut tail_plain = encrypted.clone();
    tail_plain.extend_from_slice(&payload);
    assert_eq!(
        parse_error(&tail_plain, &security(SecurityLevel::Sign)),
        format!(
            "offset {}: host part is not signed or encrypted, but the security level requires signing",
            encrypted.len()
        )
    );
}

#[test]
fn signature_errors() {
    let payload = Encoder::new().value_list(&sample_list()).finish();
    let signed = sign(&payload, "ck", "secret");
    let sign_level = security(SecurityLevel::Sign);

    assert_eq!(
        parse_error(&sign(&payload, "ck", "wrong"), &sign_level),
        "offset 0: HMAC-SHA-256 signature of user \"ck\" does not match (wrong password or altered packet)"
    );
    let mut altered = signed.clone();
    *altered.last_mut().unwrap() ^= 1;
    assert_eq!(
        parse_error(&altered, &sign_level),
        "offset 0: HMAC-SHA-256 signature of user \"ck\" does not match (wrong password or altered packet)"
    );
    assert_eq!(
        parse_error(&sign(&payload, "eve", "secret"), &sign_level),
        "offset 0: signature part names unknown user \"eve\""
    );
    // Even at level None, a signature is checked (unlike collectd without an AuthFile).
    assert_eq!(
        parse_error(&sign(&payload, "eve", "secret"), &Security::none()),
        "offset 0: signature part names unknown user \"eve\""
    );
    assert_eq!(
        parse_error(
            &Encoder::new().raw(PART_SIGNATURE, &[0; 32]).finish(),
            &sign_level
        ),
        "offset 0: signature part length 36 leaves no room for a username (needs more than 36)"
    );
    let mut bad_name = vec![0u8; 32];
    bad_name.extend_from_slice(b"\xff");
    assert_eq!(
        parse_error(
            &Encoder::new().raw(PART_SIGNATURE, &bad_name).finish(),
            &sign_level
        ),
        "offset 0: signature part username is not valid UTF-8"
    );
    let mut nested = Encoder::new().string(PART_HOST, "h").finish();
    nested.extend_from_slice(&signed);
    let twice = sign(&nested, "ck", "secret");
    assert_eq!(
        parse_error(&twice, &sign_level),
        format!(
            "offset {}: signature part inside a signed or encrypted region is not supported",
            38 + 6
        )
    );
}

#[test]
fn encryption_errors() {
    let payload = Encoder::new().value_list(&sample_list()).finish();
    let level = security(SecurityLevel::Encrypt);
    assert_eq!(
        parse_error(&encrypt(&payload, "ck", "wrong", [3; 16]), &level),
        "offset 0: encrypted part of user \"ck\" fails its SHA-1 checksum after decryption (wrong password or altered packet)"
    );
    let mut altered = encrypt(&payload, "ck", "secret", [3; 16]);
    *altered.last_mut().unwrap() ^= 1;
    assert_eq!(
        parse_error(&altered, &level),
        "offset 0: encrypted part of user \"ck\" fails its SHA-1 checksum after decryption (wrong password or altered packet)"
    );
    assert_eq!(
        parse_error(&encrypt(&payload, "eve", "secret", [3; 16]), &level),
        "offset 0: encryption part names unknown user \"eve\""
    );
    assert_eq!(
        parse_error(
            &Encoder::new().raw(PART_ENCRYPTION, &[0; 38]).finish(),
            &level
        ),
        "offset 0: encryption part length 42 is too short (needs more than 42 bytes plus the username)"
    );
    let mut zero_name = vec![0u8, 0];
    zero_name.extend_from_slice(&[0; 40]);
    assert_eq!(
        parse_error(
            &Encoder::new().raw(PART_ENCRYPTION, &zero_name).finish(),
            &level
        ),
        "offset 0: encryption part username length 0 does not fit its part length 46"
    );
    let mut long_name = vec![0u8, 5, b'c', b'k'];
    long_name.extend_from_slice(&[0; 38]);
    assert_eq!(
        parse_error(
            &Encoder::new().raw(PART_ENCRYPTION, &long_name).finish(),
            &level
        ),
        "offset 0: encryption part username length 5 does not fit its part length 46"
    );
    let mut bad_name = vec![0u8, 1, 0xff];
    bad_name.extend_from_slice(&[0; 40]);
    assert_eq!(
        parse_error(
            &Encoder::new().raw(PART_ENCRYPTION, &bad_name).finish(),
            &level
        ),
        "offset 0: encryption part username is not valid UTF-8"
    );
    let inner = encrypt(&payload, "ck", "secret", [4; 16]);
    assert_eq!(
        parse_error(&encrypt(&inner, "ck", "secret", [5; 16]), &level),
        format!(
            "offset {}: encryption part inside a signed or encrypted region is not supported",
            4 + 2 + 2 + 16 + 20
        )
    );
    // Errors inside the plaintext carry their offset in the datagram.
    let broken = Encoder::new().raw(PART_HOST, b"x").finish();
    assert_eq!(
        parse_error(&encrypt(&broken, "ck", "secret", [6; 16]), &level),
        format!(
            "offset {}: host part string is not NUL-terminated",
            4 + 2 + 2 + 16 + 20
        )
    );
}

#[test]
fn security_debug_hides_passwords() {
    let text = format!("{:?}", security(SecurityLevel::Sign));
    assert!(text.contains("\"ck\""), "{text}");
    assert!(!text.contains("secret"), "{text}");
}

fn arbitrary_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::Counter),
        any::<f64>()
            .prop_filter("NaN never equals itself", |number| !number.is_nan())
            .prop_map(Value::Gauge),
        any::<i64>().prop_map(Value::Derive),
        any::<u64>().prop_map(Value::Absolute),
    ]
}

fn arbitrary_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_. -]{1,20}"
}

fn arbitrary_value_list() -> impl Strategy<Value = ValueList> {
    (
        arbitrary_name(),
        1i64..4_000_000_000_000,
        0i64..1_000_000,
        arbitrary_name(),
        "[a-z0-9]{0,8}",
        arbitrary_name(),
        "[a-z0-9]{0,8}",
        proptest::collection::vec(arbitrary_value(), 1..6),
    )
        .prop_map(
            |(
                host,
                time_ms,
                interval_ms,
                plugin,
                plugin_instance,
                type_,
                type_instance,
                values,
            )| {
                ValueList {
                    host,
                    time_ms,
                    interval_ms,
                    plugin,
                    plugin_instance,
                    type_,
                    type_instance,
                    values,
                }
            },
        )
}

/// Valid datagrams: plain, signed and encrypted encodings of a few value lists.
fn arbitrary_valid_datagram() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(arbitrary_value_list(), 1..4),
        0u8..3,
        any::<[u8; 16]>(),
    )
        .prop_map(|(lists, mode, iv)| {
            let payload = lists
                .iter()
                .fold(Encoder::new(), |encoder, list| encoder.value_list(list))
                .finish();
            match mode {
                0 => payload,
                1 => sign(&payload, "ck", "secret"),
                _ => encrypt(&payload, "ck", "secret", iv),
            }
        })
}

proptest! {
    #[test]
    fn round_trip_through_the_encoder(
        lists in proptest::collection::vec(arbitrary_value_list(), 1..5),
        mode in 0u8..3,
        iv in any::<[u8; 16]>(),
    ) {
        let payload = lists
            .iter()
            .fold(Encoder::new(), |encoder, list| encoder.value_list(list))
            .finish();
        let (bytes, level) = match mode {
            0 => (payload, SecurityLevel::None),
            1 => (sign(&payload, "ck", "secret"), SecurityLevel::Sign),
            _ => (encrypt(&payload, "ck", "secret", iv), SecurityLevel::Encrypt),
        };
        let packet = parse_packet(&bytes, &security(level)).unwrap();
        prop_assert_eq!(packet.value_lists, lists);
        prop_assert_eq!(packet.username.is_some(), mode != 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for level in [SecurityLevel::None, SecurityLevel::Sign, SecurityLevel::Encrypt] {
            let _ = parse_packet(&bytes, &security(level));
        }
    }

    #[test]
    fn part_shaped_bytes_never_panic(
        parts in proptest::collection::vec(
            (
                prop_oneof![0u16..0x000a, Just(0x0100u16), Just(0x0101), Just(0x0200), Just(0x0210), any::<u16>()],
                proptest::collection::vec(any::<u8>(), 0..80),
                0u16..8,
            ),
            0..8,
        ),
    ) {
        // Plausible types and lengths reach deeper than uniformly random bytes do.
        let mut bytes = Vec::new();
        for (part_type, payload, length_skew) in parts {
            bytes.extend_from_slice(&part_type.to_be_bytes());
            let exact = payload.len() as u16 + 4;
            let length = match length_skew {
                0..=4 => exact,
                5 => exact - 1,
                6 => exact + 1,
                _ => length_skew,
            };
            bytes.extend_from_slice(&length.to_be_bytes());
            bytes.extend_from_slice(&payload);
        }
        for level in [SecurityLevel::None, SecurityLevel::Sign, SecurityLevel::Encrypt] {
            let _ = parse_packet(&bytes, &security(level));
        }
    }

    #[test]
    fn mutated_valid_datagrams_never_panic(
        datagram in arbitrary_valid_datagram(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = datagram;
        for (index, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, byte),
            }
        }
        for level in [SecurityLevel::None, SecurityLevel::Sign, SecurityLevel::Encrypt] {
            let _ = parse_packet(&bytes, &security(level));
        }
    }
}
