//! Tests of the `[notify]` schema and its validation.

use expect_test::{Expect, expect};

use super::*;

/// The server's file, reduced to the `[notify]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File<Webhook = IgnoredAny> {
    notify: RawNotifyConfig<Webhook>,
}

fn parse(text: &str) -> RawNotifyConfig {
    toml::from_str::<File>(text).unwrap().notify
}

fn check_errors(text: &str, known_webhooks: &[&str], expected: Expect) {
    let errors = parse(text).validate(known_webhooks).unwrap_err();
    expected.assert_eq(&errors.to_string());
}

const EXAMPLE: &str = r#"
[[notify.webhooks]]
name = "ops-slack"
url = "https://hooks.example.net/x"

[[notify.contacts]]
name = "alice"
email = "alice@example.net"
phone = "+441234567890"
webhooks = ["ops-slack"]
max_per_hour = 20

[[notify.contacts]]
name = "bob"
email = "bob@example.net"

[[notify.groups]]
name = "noc-l1"
members = ["alice", "bob"]
escalate_after = "15m"
escalate_to = "noc-l2"

[[notify.groups]]
name = "noc-l2"
members = ["bob"]

[[notify.routes]]
isv = "acme"
min_severity = "warning"
hours = "08:00-18:00"
days = ["mon","tue","wed","thu","fri"]
timezone = "Europe/London"
to = ["noc-l1"]
continue = false
group_wait = "500ms"

[[notify.routes]]
to = ["bob", "noc-l2"]
min_severity = "critical"
continue = true
group_wait = "1m"
"#;

#[test]
fn the_documented_example_validates() {
    let policy = parse(EXAMPLE).validate(&["ops-slack"]).unwrap();
    let alice = policy.contact("alice").unwrap();
    assert_eq!(alice.email(), Some("alice@example.net"));
    assert_eq!(alice.phone(), Some("+441234567890"));
    assert_eq!(alice.webhooks(), ["ops-slack".to_owned()]);
    assert_eq!(alice.max_per_hour().get(), 20);
    assert_eq!(
        policy.contact("bob").unwrap().max_per_hour().get(),
        DEFAULT_MAX_PER_HOUR
    );

    let l1 = policy.group("noc-l1").unwrap();
    assert_eq!(l1.members(), ["alice".to_owned(), "bob".to_owned()]);
    assert_eq!(
        l1.escalation(),
        &Escalation::EscalateTo {
            after_ms: 15 * 60_000,
            group: "noc-l2".into()
        }
    );
    assert_eq!(
        policy.group("noc-l2").unwrap().escalation(),
        &Escalation::Never
    );

    let [first, second] = policy.routes() else {
        panic!("two routes expected")
    };
    assert_eq!(first.to(), [Target::Group("noc-l1".into())]);
    assert_eq!(first.group_wait_ms(), 500);
    assert!(!first.continue_matching());
    assert_eq!(first.min_severity(), MinSeverity::Warning);
    assert_eq!(
        second.to(),
        [
            Target::Contact("bob".into()),
            Target::Group("noc-l2".into())
        ]
    );
    assert_eq!(second.group_wait_ms(), 60_000);
    assert!(second.continue_matching());
    assert_eq!(second.min_severity(), MinSeverity::Critical);
    assert_eq!(policy.known_recipients(), "alice, bob, noc-l1, noc-l2");
}

#[test]
fn an_absent_or_empty_table_is_an_empty_policy() {
    let empty: RawNotifyConfig = toml::from_str("").unwrap();
    let policy = empty.validate(&[]).unwrap();
    assert_eq!(policy.routes().len(), 0);
    assert_eq!(policy.known_recipients(), "(none)");
}

#[test]
fn defaults_apply() {
    let policy = parse(
        r#"
[[notify.contacts]]
name = "alice"
email = "a@example.net"
[[notify.groups]]
name = "nag"
members = ["alice"]
escalate_after = "10m"
[[notify.routes]]
to = ["alice"]
"#,
    )
    .validate(&[])
    .unwrap();
    let route = policy.routes().first().unwrap();
    assert_eq!(route.group_wait_ms(), DEFAULT_GROUP_WAIT_MS);
    assert_eq!(route.min_severity(), MinSeverity::Warning);
    assert!(!route.continue_matching());
    assert_eq!(route.timezone, TimeZone::UTC);
    assert!(route.hours.is_none() && route.days.is_none());
    assert_eq!(
        policy.group("nag").unwrap().escalation(),
        &Escalation::Repeat { every_ms: 600_000 }
    );
}

#[test]
fn min_severity_follows_the_state_order() {
    let admits = |min: MinSeverity| -> Vec<State> {
        State::ALL.into_iter().filter(|s| min.admits(*s)).collect()
    };
    assert_eq!(
        admits(MinSeverity::Unknown),
        [State::Unknown, State::Warning, State::Critical]
    );
    assert_eq!(
        admits(MinSeverity::Warning),
        [State::Warning, State::Critical]
    );
    assert_eq!(admits(MinSeverity::Critical), [State::Critical]);
}

#[test]
fn unknown_fields_are_rejected_by_the_parser() {
    let error = toml::from_str::<File>(
        r#"
[[notify.contacts]]
name = "alice"
emial = "a@example.net"
"#,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown field `emial`"), "{error}");
    let error = toml::from_str::<File>("[notify]\nroute = []\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `route`"), "{error}");
}

#[test]
fn the_server_can_plug_in_its_webhook_type() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Webhook {
        name: String,
        url: String,
    }
    let file: File<Webhook> = toml::from_str(EXAMPLE).unwrap();
    let names: Vec<&str> = file
        .notify
        .webhooks
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(names, ["ops-slack"]);
    assert_eq!(
        file.notify.webhooks.first().map(|w| w.url.as_str()),
        Some("https://hooks.example.net/x")
    );
    file.notify.validate(&names).unwrap();
}

#[test]
fn unknown_route_recipient_names_the_path_and_the_known_names() {
    check_errors(
        r#"
[[notify.contacts]]
name = "alice"
email = "alice@example.net"
[[notify.contacts]]
name = "bob"
email = "bob@example.net"
[[notify.groups]]
name = "noc-l1"
members = ["alice", "bob"]
[[notify.routes]]
to = ["alice"]
[[notify.routes]]
to = ["bob"]
[[notify.routes]]
to = ["noc-l3"]
"#,
        &[],
        expect![[
            r#"notify.routes[2].to[0]: unknown contact or group "noc-l3"; known: alice, bob, noc-l1"#
        ]],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    check_errors(
        r#"
[[notify.contacts]]
name = "alice"
email = "not-an-email"
phone = "01234 567890"
webhooks = ["ops-slack", "pagerduty"]
max_per_hour = 0
[[notify.contacts]]
name = "bob"
[[notify.contacts]]
name = "alice"
email = "alice2@example.net"
[[notify.contacts]]
name = "carol smith"
email = "carol@example.net"
[[notify.contacts]]
name = "dave"
email = "dave@example.net"
max_per_hour = 100000

[[notify.groups]]
name = "noc-l1"
members = ["alice", "noc-l2", "zed", "alice"]
escalate_after = "15 minutes"
escalate_to = "noc-l9"
[[notify.groups]]
name = "noc-l2"
members = []
escalate_to = "alice"
[[notify.groups]]
name = "bob"
members = ["alice"]
[[notify.groups]]
name = "quick"
members = ["dave"]
escalate_after = "10s"
[[notify.groups]]
name = "slow"
members = ["dave"]
escalate_to = "quick"

[[notify.routes]]
isv = ""
min_severity = "ok"
hours = "8-18"
days = ["mon", "funday"]
timezone = "Europe/Londn"
to = ["noc-l1", "nobody", "noc-l1"]
group_wait = "2m"
[[notify.routes]]
hours = "22:00-22:00"
days = []
to = []
group_wait = "soon"
[[notify.routes]]
hours = "24:00-06:00"
min_severity = "warn"
to = ["dave"]
[[notify.routes]]
hours = "00:00-24:00"
to = ["dave"]
"#,
        &["ops-slack"],
        expect![[r#"
            notify.contacts[0].email: invalid email address "not-an-email"
            notify.contacts[0].phone: invalid phone number "01234 567890": use + and 8 to 15 digits, e.g. +441234567890
            notify.contacts[0].webhooks[1]: unknown webhook "pagerduty"; known: ops-slack
            notify.contacts[0].max_per_hour: 0 is out of range: use 1 to 3600
            notify.contacts[1]: contact "bob" has no channel: set email, phone or webhooks
            notify.contacts[2].name: "alice" is already defined at notify.contacts[0].name
            notify.contacts[3].name: invalid name "carol smith": use 1 to 64 letters, digits, '.', '_' or '-'
            notify.contacts[4].max_per_hour: 100000 is out of range: use 1 to 3600
            notify.groups[0].members[1]: "noc-l2" is a group; groups cannot contain groups
            notify.groups[0].members[2]: unknown contact "zed"; known contacts: alice, bob, dave
            notify.groups[0].members[3]: "alice" is listed twice
            notify.groups[0].escalate_after: invalid duration "15 minutes": use a whole number followed by ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h, 7d)
            notify.groups[0].escalate_to: unknown group "noc-l9"; known groups: noc-l1, noc-l2, quick, slow
            notify.groups[1].members: must list at least one contact
            notify.groups[1].escalate_to: "alice" is a contact; escalate_to needs a group
            notify.groups[1].escalate_to: escalate_to needs escalate_after (how long to wait unacknowledged before escalating)
            notify.groups[2].name: "bob" is already defined at notify.contacts[1].name
            notify.groups[3].escalate_after: 10s is out of range: use 1m to 7d
            notify.groups[4].escalate_to: escalate_to needs escalate_after (how long to wait unacknowledged before escalating)
            notify.routes[0].isv: empty pattern: use a name or a glob such as "acme-*"
            notify.routes[0].min_severity: invalid severity "ok": use warning, critical or unknown
            notify.routes[0].hours: invalid time window "8-18": use HH:MM-HH:MM, e.g. 08:00-18:00 or 22:00-06:00
            notify.routes[0].days[1]: invalid day "funday": use mon, tue, wed, thu, fri, sat or sun
            notify.routes[0].timezone: unknown time zone "Europe/Londn": use an IANA name such as UTC or Europe/London
            notify.routes[0].to[1]: unknown contact or group "nobody"; known: alice, bob, dave, noc-l1, noc-l2, quick, slow
            notify.routes[0].to[2]: "noc-l1" is listed twice
            notify.routes[0].group_wait: 2m is out of range: use 0ms to 1m
            notify.routes[1].hours: invalid time window "22:00-22:00": the window covers the whole day; omit hours instead
            notify.routes[1].days: must list at least one day (or omit days for every day)
            notify.routes[1].to: must list at least one contact or group
            notify.routes[1].group_wait: invalid duration "soon": use a whole number followed by ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h, 7d)
            notify.routes[2].min_severity: invalid severity "warn": use warning, critical or unknown
            notify.routes[2].hours: invalid time window "24:00-06:00": 24:00 can only end a window
            notify.routes[3].hours: invalid time window "00:00-24:00": the window covers the whole day; omit hours instead"#]],
    );
}

#[test]
fn escalation_cycles_are_rejected_once_each() {
    check_errors(
        r#"
[[notify.contacts]]
name = "alice"
email = "alice@example.net"
[[notify.groups]]
name = "a"
members = ["alice"]
escalate_after = "5m"
escalate_to = "b"
[[notify.groups]]
name = "b"
members = ["alice"]
escalate_after = "5m"
escalate_to = "c"
[[notify.groups]]
name = "c"
members = ["alice"]
escalate_after = "5m"
escalate_to = "a"
[[notify.groups]]
name = "self"
members = ["alice"]
escalate_after = "5m"
escalate_to = "self"
[[notify.groups]]
name = "into-cycle"
members = ["alice"]
escalate_after = "5m"
escalate_to = "b"
[[notify.groups]]
name = "fine"
members = ["alice"]
escalate_after = "5m"
escalate_to = "end"
[[notify.groups]]
name = "end"
members = ["alice"]
"#,
        &[],
        expect![[r#"
            notify.groups[0].escalate_to: escalation cycle a → b → c → a: remove escalate_to from one of these groups
            notify.groups[3].escalate_to: escalation cycle self → self: remove escalate_to from one of these groups"#]],
    );
}

#[test]
fn hours_accept_wrapping_and_24_00() {
    let window = TimeOfDayWindow::parse("22:00-06:00").unwrap();
    assert_eq!(window.locate(22 * 60), Some(false));
    assert_eq!(window.locate(23 * 60 + 59), Some(false));
    assert_eq!(window.locate(0), Some(true));
    assert_eq!(window.locate(6 * 60 - 1), Some(true));
    assert_eq!(window.locate(6 * 60), None);
    assert_eq!(window.locate(12 * 60), None);
    let window = TimeOfDayWindow::parse("8:30-24:00").unwrap();
    assert_eq!(window.locate(8 * 60 + 29), None);
    assert_eq!(window.locate(8 * 60 + 30), Some(false));
    assert_eq!(window.locate(23 * 60 + 59), Some(false));
    for bad in [
        "08:00",
        "08:00-18",
        "08:60-09:00",
        "25:00-01:00",
        "8:5-9:00",
        "-",
        "a:bc-01:00",
    ] {
        assert!(TimeOfDayWindow::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn rule_notify_lists_are_checked_against_the_policy() {
    let policy = parse(EXAMPLE).validate(&["ops-slack"]).unwrap();
    assert_eq!(validate_contact_refs(&["alice", "noc-l2"], &policy), Ok(()));
    assert_eq!(validate_contact_refs(&[], &policy), Ok(()));
    let errors = validate_contact_refs(&["alice", "x", "noc-l3"], &policy).unwrap_err();
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    expect![[r#"
        notify[1]: unknown contact or group "x"; known: alice, bob, noc-l1, noc-l2
        notify[2]: unknown contact or group "noc-l3"; known: alice, bob, noc-l1, noc-l2"#]]
    .assert_eq(&rendered.join("\n"));
}

#[test]
fn durations_follow_the_spec_grammar() {
    assert_eq!(parse_duration_ms("500ms"), Some(500));
    assert_eq!(parse_duration_ms("0ms"), Some(0));
    assert_eq!(parse_duration_ms("10s"), Some(10_000));
    assert_eq!(parse_duration_ms("15m"), Some(900_000));
    assert_eq!(parse_duration_ms("2h"), Some(7_200_000));
    assert_eq!(parse_duration_ms("7d"), Some(604_800_000));
    for bad in [
        "",
        "m",
        "15",
        "1.5h",
        "1h30m",
        "-5m",
        " 5m",
        "99999999999999999999d",
    ] {
        assert_eq!(parse_duration_ms(bad), None, "{bad}");
    }
}
