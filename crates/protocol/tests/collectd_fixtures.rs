//! Datagrams and a write_http body captured from a real collectd 5.12 (see tests/fixtures/collectd/README.md) parse and map as expected.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cloudkeep_protocol::collectd::{
    CollectdError, MappedSample, Security, SecurityLevel, TypesDb, ValueList, map_value_list,
    map_write_http_value_list, parse_packet, parse_write_http,
};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/collectd")
        .join(name)
}

/// A capture file is a run of `[u32 big-endian length][datagram]` records.
fn datagrams(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(fixture_path(name)).unwrap();
    let mut rest = bytes.as_slice();
    let mut datagrams = Vec::new();
    while !rest.is_empty() {
        let (length, tail) = rest.split_at(4);
        let length = u32::from_be_bytes(length.try_into().unwrap()) as usize;
        let (datagram, tail) = tail.split_at(length);
        datagrams.push(datagram.to_vec());
        rest = tail;
    }
    assert!(
        datagrams.len() >= 3,
        "{name}: only {} datagrams",
        datagrams.len()
    );
    datagrams
}

fn users(password: &str) -> Security {
    Security::new(
        SecurityLevel::None,
        [("ck".to_owned(), password.to_owned())],
    )
}

fn with_level(level: SecurityLevel) -> Security {
    Security {
        level,
        ..users("secret")
    }
}

fn parse_all(name: &str, security: &Security) -> Vec<ValueList> {
    let mut lists = Vec::new();
    for (index, datagram) in datagrams(name).iter().enumerate() {
        let packet = parse_packet(datagram, security)
            .unwrap_or_else(|error| panic!("{name} datagram {index}: {error}"));
        assert!(packet.notifications.is_empty());
        let expected_user = (name != "plain.bin").then(|| "ck".to_owned());
        assert_eq!(packet.username, expected_user, "{name} datagram {index}");
        lists.extend(packet.value_lists);
    }
    lists
}

fn map_all(lists: &[ValueList]) -> Vec<MappedSample> {
    lists
        .iter()
        .flat_map(|list| map_value_list(list, TypesDb::builtin()).unwrap())
        .collect()
}

fn find<'sample>(
    samples: &'sample [MappedSample],
    name: &str,
    labels: &[(&str, &str)],
) -> &'sample MappedSample {
    samples
        .iter()
        .find(|sample| {
            sample.name == name
                && sample.labels.len() == labels.len()
                && sample
                    .labels
                    .iter()
                    .zip(labels)
                    .all(|((key, value), (want_key, want_value))| {
                        key == want_key && value == want_value
                    })
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

/// What collectd's cpu, memory, df and load plugins send, named the collectd_exporter way.
fn assert_host_metrics(source: &str, samples: &[MappedSample]) {
    let names: BTreeSet<&str> = samples.iter().map(|sample| sample.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "collectd_cpu_total",
            "collectd_df_df_complex",
            "collectd_load_longterm",
            "collectd_load_midterm",
            "collectd_load_shortterm",
            "collectd_memory",
        ]),
        "{source}"
    );
    for sample in samples {
        assert_eq!(sample.host, "fixture-host", "{source}");
        // Captured in 2026 or later, with a plausible clock.
        assert!(
            sample.timestamp_ms > 1_767_225_600_000,
            "{source}: {sample:?}"
        );
        assert!(
            sample.value.is_finite() && sample.value >= 0.0,
            "{source}: {sample:?}"
        );
    }
    // Every state of both CPUs of the capture machine, as cumulative jiffies.
    for cpu in ["0", "1"] {
        for state in [
            "user",
            "system",
            "idle",
            "wait",
            "nice",
            "interrupt",
            "softirq",
            "steal",
        ] {
            find(
                samples,
                "collectd_cpu_total",
                &[("cpu", cpu), ("type", state)],
            );
        }
        assert!(
            find(
                samples,
                "collectd_cpu_total",
                &[("cpu", cpu), ("type", "idle")]
            )
            .value
                > 0.0
        );
    }
    for state in [
        "used",
        "free",
        "buffered",
        "cached",
        "slab_recl",
        "slab_unrecl",
    ] {
        find(samples, "collectd_memory", &[("memory", state)]);
    }
    assert!(find(samples, "collectd_memory", &[("memory", "used")]).value > 1e6);
    for state in ["used", "free", "reserved"] {
        find(
            samples,
            "collectd_df_df_complex",
            &[("df", "root"), ("type", state)],
        );
    }
    assert!(
        find(
            samples,
            "collectd_df_df_complex",
            &[("df", "root"), ("type", "used")]
        )
        .value
            > 1e6
    );
    let load = find(samples, "collectd_load_shortterm", &[]);
    assert!(load.value < 5000.0, "{source}: {load:?}");
}

#[test]
fn plain_capture_parses_into_host_metrics() {
    let lists = parse_all("plain.bin", &Security::none());
    for list in &lists {
        assert_eq!(list.interval_ms, 1000, "Interval 1 in the capture config");
    }
    let first = lists.iter().map(|list| list.time_ms).min().unwrap();
    let last = lists.iter().map(|list| list.time_ms).max().unwrap();
    assert!(last - first < 60_000, "capture spans {} ms", last - first);
    assert_host_metrics("plain.bin", &map_all(&lists));
}

#[test]
fn plain_capture_is_refused_when_signing_is_required() {
    let datagram = &datagrams("plain.bin")[0];
    let error = parse_packet(datagram, &with_level(SecurityLevel::Sign)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "offset 0: host part is not signed or encrypted, but the security level requires signing"
    );
}

#[test]
fn signed_capture_verifies_with_the_password() {
    for level in [SecurityLevel::None, SecurityLevel::Sign] {
        let lists = parse_all("signed.bin", &with_level(level));
        assert_host_metrics("signed.bin", &map_all(&lists));
    }
}

#[test]
fn signed_capture_is_refused_with_a_wrong_password_or_user_or_level() {
    let datagram = &datagrams("signed.bin")[0];
    let wrong_password = Security {
        level: SecurityLevel::Sign,
        ..users("not-the-secret")
    };
    assert!(matches!(
        parse_packet(datagram, &wrong_password),
        Err(CollectdError::BadSignature { offset: 0, ref username }) if username == "ck"
    ));
    let other_user = Security::new(
        SecurityLevel::Sign,
        [("someone".to_owned(), "secret".to_owned())],
    );
    assert_eq!(
        parse_packet(datagram, &other_user).unwrap_err().to_string(),
        "offset 0: signature part names unknown user \"ck\""
    );
    assert!(matches!(
        parse_packet(datagram, &with_level(SecurityLevel::Encrypt)),
        Err(CollectdError::InsufficientSecurity {
            offset: 0,
            part: "signature",
            ..
        })
    ));
    // One flipped bit anywhere after the signature breaks it.
    let mut altered = datagram.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    assert!(matches!(
        parse_packet(&altered, &with_level(SecurityLevel::Sign)),
        Err(CollectdError::BadSignature { .. })
    ));
}

#[test]
fn encrypted_capture_decrypts_with_the_password() {
    for level in [
        SecurityLevel::None,
        SecurityLevel::Sign,
        SecurityLevel::Encrypt,
    ] {
        let lists = parse_all("encrypted.bin", &with_level(level));
        assert_host_metrics("encrypted.bin", &map_all(&lists));
    }
}

#[test]
fn encrypted_capture_is_refused_with_a_wrong_password() {
    let datagram = &datagrams("encrypted.bin")[0];
    let wrong_password = Security {
        level: SecurityLevel::Encrypt,
        ..users("not-the-secret")
    };
    assert_eq!(
        parse_packet(datagram, &wrong_password)
            .unwrap_err()
            .to_string(),
        "offset 0: encrypted part of user \"ck\" fails its SHA-1 checksum after decryption (wrong password or altered packet)"
    );
}

#[test]
fn write_http_capture_maps_like_the_binary_protocol() {
    let body = std::fs::read(fixture_path("write_http.json")).unwrap();
    let lists = parse_write_http(&body).unwrap();
    assert!(lists.len() >= 10, "only {} value lists", lists.len());
    let mut samples = Vec::new();
    for list in &lists {
        assert_eq!(list.value_list.interval_ms, 1000);
        let from_json_names = map_write_http_value_list(list).unwrap();
        // The JSON's dsnames agree with Debian's types.db, so both mappings give the same samples.
        assert_eq!(
            from_json_names,
            map_value_list(&list.value_list, TypesDb::builtin()).unwrap()
        );
        samples.extend(from_json_names);
    }
    let names: BTreeSet<&str> = samples.iter().map(|sample| sample.name.as_str()).collect();
    for expected in [
        "collectd_cpu_total",
        "collectd_memory",
        "collectd_df_df_complex",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    find(
        &samples,
        "collectd_cpu_total",
        &[("cpu", "0"), ("type", "softirq")],
    );
    find(&samples, "collectd_memory", &[("memory", "used")]);
    assert!(samples.iter().all(|sample| sample.host == "fixture-host"));
}
