//! Tests of routing: first match, `continue`, explicit rule recipients, time windows across midnight and DST.

use jiff::Timestamp;

use super::*;
use crate::policy_config::RawNotifyConfig;

fn policy(routes: &str) -> NotifyPolicy {
    #[derive(serde::Deserialize)]
    struct File {
        notify: RawNotifyConfig,
    }
    let text = format!(
        r#"
[[notify.contacts]]
name = "alice"
email = "alice@example.net"
[[notify.contacts]]
name = "bob"
email = "bob@example.net"
[[notify.contacts]]
name = "carol"
email = "carol@example.net"
[[notify.contacts]]
name = "night"
phone = "+441234567890"
[[notify.groups]]
name = "noc-l1"
members = ["alice", "bob"]
[[notify.groups]]
name = "dbas"
members = ["carol", "alice"]
{routes}"#
    );
    let file: File = toml::from_str(&text).unwrap();
    file.notify.validate(&[]).unwrap()
}

fn alert(isv: &str, platform: &str, severity: State) -> AlertContext {
    AlertContext {
        cloud: "gc-uk1".into(),
        isv: isv.into(),
        tenant: "shop".into(),
        platform: platform.into(),
        host: Some("db1".into()),
        monitor: Some("postgres".into()),
        severity,
    }
}

/// Unix milliseconds of an RFC 3339 instant.
fn at(instant: &str) -> i64 {
    instant.parse::<Timestamp>().unwrap().as_millisecond()
}

fn names(recipients: &[Recipient]) -> Vec<String> {
    recipients
        .iter()
        .map(|r| match &r.via_group {
            Some(group) => format!("{}@{group}", r.contact),
            None => r.contact.clone(),
        })
        .collect()
}

const NOON_WEDNESDAY: &str = "2026-03-25T12:00:00Z";

#[test]
fn first_match_wins() {
    let policy = policy(
        r#"
[[notify.routes]]
isv = "acme"
to = ["noc-l1"]
[[notify.routes]]
to = ["carol"]
"#,
    );
    let now = at(NOON_WEDNESDAY);
    let acme = route(
        &policy,
        &alert("acme", "acme-prod", State::Warning),
        now,
        &[],
    );
    assert_eq!(names(&acme), ["alice@noc-l1", "bob@noc-l1"]);
    assert!(acme.iter().all(|r| r.level == 0));
    let other = route(
        &policy,
        &alert("globex", "g-prod", State::Critical),
        now,
        &[],
    );
    assert_eq!(names(&other), ["carol"]);
}

#[test]
fn continue_merges_the_following_matches_and_dedupes_contacts() {
    let policy = policy(
        r#"
[[notify.routes]]
platform = "acme-*"
to = ["noc-l1"]
continue = true
[[notify.routes]]
isv = "globex"
to = ["night"]
[[notify.routes]]
min_severity = "critical"
to = ["dbas", "bob"]
[[notify.routes]]
to = ["night"]
"#,
    );
    let now = at(NOON_WEDNESDAY);
    // Route 0 continues, route 1 does not match, route 2 matches and stops.
    let critical = route(
        &policy,
        &alert("acme", "acme-prod", State::Critical),
        now,
        &[],
    );
    assert_eq!(
        names(&critical),
        ["alice@noc-l1", "bob@noc-l1", "carol@dbas"]
    );
    // A warning skips route 2 and lands on route 3.
    let warning = route(
        &policy,
        &alert("acme", "acme-prod", State::Warning),
        now,
        &[],
    );
    assert_eq!(names(&warning), ["alice@noc-l1", "bob@noc-l1", "night"]);
    // `unknown` is below the default min_severity warning: nothing routes it.
    assert!(
        route(
            &policy,
            &alert("acme", "acme-prod", State::Unknown),
            now,
            &[]
        )
        .is_empty()
    );
}

#[test]
fn matchers_on_every_dimension() {
    let policy = policy(
        r#"
[[notify.routes]]
isv = "acme"
tenant = "shop"
cloud = "gc-*"
platform = "*-prod"
min_severity = "unknown"
to = ["alice"]
"#,
    );
    let now = at(NOON_WEDNESDAY);
    let base = alert("acme", "acme-prod", State::Unknown);
    assert_eq!(names(&route(&policy, &base, now, &[])), ["alice"]);
    let variants = [
        AlertContext {
            isv: "acme2".into(),
            ..base.clone()
        },
        AlertContext {
            tenant: "other".into(),
            ..base.clone()
        },
        AlertContext {
            cloud: "aws-eu1".into(),
            ..base.clone()
        },
        AlertContext {
            platform: "acme-test".into(),
            ..base.clone()
        },
        AlertContext {
            severity: State::Ok,
            ..base.clone()
        },
    ];
    for variant in variants {
        assert!(route(&policy, &variant, now, &[]).is_empty(), "{variant:?}");
    }
}

#[test]
fn explicit_rule_recipients_take_precedence() {
    let policy = policy(
        r#"
[[notify.routes]]
to = ["noc-l1"]
"#,
    );
    let now = at(NOON_WEDNESDAY);
    let warning = alert("acme", "acme-prod", State::Warning);
    let explicit = vec!["dbas".to_owned(), "carol".to_owned(), "night".to_owned()];
    assert_eq!(
        names(&route(&policy, &warning, now, &explicit)),
        ["carol@dbas", "alice@dbas", "night"]
    );
    // Explicit recipients bypass the routes' severity filter too.
    let unknown = alert("acme", "acme-prod", State::Unknown);
    assert_eq!(
        names(&route(&policy, &unknown, now, &["bob".to_owned()])),
        ["bob"]
    );
    // Names that no longer resolve are skipped; when none resolves, the routes apply.
    assert_eq!(
        names(&route(
            &policy,
            &warning,
            now,
            &["gone".to_owned(), "bob".to_owned()]
        )),
        ["bob"]
    );
    assert_eq!(
        names(&route(&policy, &warning, now, &["gone".to_owned()])),
        ["alice@noc-l1", "bob@noc-l1"]
    );
}

#[test]
fn office_hours_in_london_across_the_spring_dst_change() {
    let policy = policy(
        r#"
[[notify.routes]]
hours = "08:00-18:00"
timezone = "Europe/London"
to = ["alice"]
[[notify.routes]]
to = ["night"]
"#,
    );
    let who = |instant: &str| {
        names(&route(
            &policy,
            &alert("a", "p", State::Warning),
            at(instant),
            &[],
        ))
    };
    // Saturday 28 March 2026 is GMT (UTC+0).
    assert_eq!(who("2026-03-28T07:59:59Z"), ["night"]);
    assert_eq!(who("2026-03-28T08:00:00Z"), ["alice"]);
    assert_eq!(who("2026-03-28T17:59:59Z"), ["alice"]);
    assert_eq!(who("2026-03-28T18:00:00Z"), ["night"]);
    // Sunday 29 March 2026 01:00 UTC clocks go forward to 02:00 BST (UTC+1): 08:00 local is 07:00 UTC.
    assert_eq!(who("2026-03-29T06:59:59Z"), ["night"]);
    assert_eq!(who("2026-03-29T07:00:00Z"), ["alice"]);
    assert_eq!(who("2026-03-29T16:59:59Z"), ["alice"]);
    assert_eq!(who("2026-03-29T17:00:00Z"), ["night"]);
}

#[test]
fn night_window_wraps_midnight_and_belongs_to_the_day_it_starts() {
    let policy = policy(
        r#"
[[notify.routes]]
hours = "22:00-06:00"
days = ["fri"]
timezone = "Europe/London"
to = ["night"]
[[notify.routes]]
to = ["alice"]
"#,
    );
    let who = |instant: &str| {
        names(&route(
            &policy,
            &alert("a", "p", State::Warning),
            at(instant),
            &[],
        ))
    };
    // Friday 27 March 2026, GMT.
    assert_eq!(who("2026-03-27T21:59:00Z"), ["alice"]);
    assert_eq!(who("2026-03-27T22:00:00Z"), ["night"]);
    assert_eq!(who("2026-03-27T23:59:59Z"), ["night"]);
    // Saturday 03:00 is still Friday night.
    assert_eq!(who("2026-03-28T03:00:00Z"), ["night"]);
    assert_eq!(who("2026-03-28T05:59:59Z"), ["night"]);
    assert_eq!(who("2026-03-28T06:00:00Z"), ["alice"]);
    // Saturday 22:00 starts Saturday night: not a Friday.
    assert_eq!(who("2026-03-28T22:30:00Z"), ["alice"]);
    // Friday 03:00 belongs to Thursday night.
    assert_eq!(who("2026-03-27T03:00:00Z"), ["alice"]);
}

#[test]
fn days_alone_use_the_local_date() {
    let policy = policy(
        r#"
[[notify.routes]]
days = ["sat", "Sun"]
timezone = "Pacific/Auckland"
to = ["night"]
[[notify.routes]]
to = ["alice"]
"#,
    );
    let who = |instant: &str| {
        names(&route(
            &policy,
            &alert("a", "p", State::Warning),
            at(instant),
            &[],
        ))
    };
    // Friday 27 March 2026 11:00 UTC is Saturday 00:00 in Auckland (UTC+13, daylight time).
    assert_eq!(who("2026-03-27T10:59:59Z"), ["alice"]);
    assert_eq!(who("2026-03-27T11:00:00Z"), ["night"]);
    // Sunday 29 March 2026 11:00 UTC is Monday 00:00 in Auckland.
    assert_eq!(who("2026-03-29T10:59:59Z"), ["night"]);
    assert_eq!(who("2026-03-29T11:00:00Z"), ["alice"]);
}

#[test]
fn instants_outside_the_calendar_never_match_a_time_window() {
    let policy = policy(
        r#"
[[notify.routes]]
hours = "00:00-23:59"
to = ["alice"]
"#,
    );
    assert!(route(&policy, &alert("a", "p", State::Critical), i64::MAX, &[]).is_empty());
    assert!(matching_routes(&policy, &alert("a", "p", State::Critical), i64::MIN).is_empty());
}
