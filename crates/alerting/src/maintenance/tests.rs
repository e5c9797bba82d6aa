//! Tests of maintenance windows with a fake clock: boundaries, DST, restart gaps, merging, and a split-invariance proptest.

use expect_test::expect;
use jiff::Timestamp;
use proptest::prelude::*;

use super::*;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn at(instant: &str) -> i64 {
    instant.parse::<Timestamp>().unwrap().as_millisecond()
}

fn show(ms: i64) -> String {
    Timestamp::from_millisecond(ms).unwrap().to_string()
}

fn window(schedule: Schedule) -> MaintenanceWindow {
    MaintenanceWindow {
        id: "mw-1".into(),
        scope: Scope::Platform("acme-prod".into()),
        schedule,
        comment: "weekly patching".into(),
    }
}

/// Every Sunday 02:00 for 2 hours, London time.
fn sunday_patching() -> MaintenanceWindow {
    window(Schedule::recurring("0 2 * * SUN", 2 * HOUR, "Europe/London", None).unwrap())
}

fn render(transitions: &[(i64, Transition)]) -> Vec<String> {
    transitions
        .iter()
        .map(|(at, transition)| format!("{} {transition}", show(*at)))
        .collect()
}

fn alert(cloud: &str, platform: &str, host: Option<&str>) -> AlertContext {
    AlertContext {
        cloud: cloud.into(),
        isv: "acme".into(),
        tenant: "shop".into(),
        platform: platform.into(),
        host: host.map(str::to_owned),
        monitor: None,
        severity: State::Critical,
    }
}

#[test]
fn weekly_window_boundaries_in_winter_time() {
    let w = sunday_patching();
    // Sunday 22 March 2026 is GMT: 02:00 local is 02:00 UTC.
    assert!(!w.is_active(at("2026-03-22T01:59:59.999Z")));
    assert!(w.is_active(at("2026-03-22T02:00:00Z")));
    assert!(w.is_active(at("2026-03-22T03:59:59.999Z")));
    assert!(!w.is_active(at("2026-03-22T04:00:00Z")));
    assert!(!w.is_active(at("2026-03-25T03:00:00Z")));
    assert_eq!(
        w.active_span(at("2026-03-22T03:00:00Z")),
        Some((at("2026-03-22T02:00:00Z"), at("2026-03-22T04:00:00Z")))
    );
    assert_eq!(w.active_span(at("2026-03-22T04:00:00Z")), None);
}

#[test]
fn weekly_window_follows_london_summer_time() {
    let w = sunday_patching();
    // Sunday 29 March 2026: clocks jump from 01:00 GMT to 02:00 BST, so 02:00 local is 01:00 UTC.
    assert!(!w.is_active(at("2026-03-29T00:59:59Z")));
    assert!(w.is_active(at("2026-03-29T01:00:00Z")));
    assert!(w.is_active(at("2026-03-29T02:59:59Z")));
    assert!(!w.is_active(at("2026-03-29T03:00:00Z")));
    // Sunday 25 October 2026: clocks fall back at 02:00 BST to 01:00 GMT; 02:00 local is then 02:00 UTC.
    assert!(!w.is_active(at("2026-10-25T01:59:59Z")));
    assert!(w.is_active(at("2026-10-25T02:00:00Z")));
    assert!(!w.is_active(at("2026-10-25T04:00:00Z")));

    assert_eq!(
        w.next_start(at("2026-03-23T00:00:00Z")).map(show),
        Some("2026-03-29T01:00:00Z".to_owned())
    );
    // While active, next_start is the next span.
    assert_eq!(
        w.next_start(at("2026-03-29T01:00:00Z")).map(show),
        Some("2026-04-05T01:00:00Z".to_owned())
    );
    assert_eq!(
        w.next_start(at("2026-03-29T00:59:59.999Z")).map(show),
        Some("2026-03-29T01:00:00Z".to_owned())
    );
}

#[test]
fn restart_gap_of_three_days_reports_each_transition_once() {
    let w = sunday_patching();
    // The worker last ticked on Friday noon and comes back on Monday noon.
    let from = at("2026-03-27T12:00:00Z");
    let to = at("2026-03-30T12:00:00Z");
    expect![[r#"
        [
            "2026-03-29T01:00:00Z started",
            "2026-03-29T03:00:00Z ended",
        ]
    "#]]
    .assert_debug_eq(&render(&w.transitions_between(from, to)));

    // Ticking every second over the same period reports the same, exactly once.
    let mut ticked = Vec::new();
    let mut last = from;
    let mut now = from;
    while now < to {
        now += 1_000;
        ticked.extend(w.transitions_between(last, now));
        last = now;
    }
    assert_eq!(ticked, w.transitions_between(from, to));

    // A gap that ends inside the window reports the start; the next tick reports the end.
    let mid = at("2026-03-29T02:00:00Z");
    assert_eq!(
        render(&w.transitions_between(from, mid)),
        ["2026-03-29T01:00:00Z started"]
    );
    assert_eq!(
        render(&w.transitions_between(mid, to)),
        ["2026-03-29T03:00:00Z ended"]
    );
    // Left-open, right-closed: a tick landing exactly on a transition reports it; the next one does not.
    let start = at("2026-03-29T01:00:00Z");
    assert_eq!(w.transitions_between(start - 1, start).len(), 1);
    assert!(w.transitions_between(start, start + 1).is_empty());
    assert!(w.transitions_between(to, from).is_empty());
}

#[test]
fn one_off_windows() {
    let start = at("2026-04-01T20:00:00Z");
    let end = at("2026-04-01T22:30:00Z");
    let w = window(Schedule::one_off(start, end).unwrap());
    assert!(!w.is_active(start - 1));
    assert!(w.is_active(start));
    assert!(w.is_active(end - 1));
    assert!(!w.is_active(end));
    assert_eq!(w.active_span(start + HOUR), Some((start, end)));
    assert_eq!(w.active_span(end), None);
    assert_eq!(w.next_start(start - 1), Some(start));
    assert_eq!(w.next_start(start), None);
    assert_eq!(
        w.transitions_between(start - HOUR, end + HOUR),
        vec![(start, Transition::Started), (end, Transition::Ended)]
    );
    assert_eq!(
        w.transitions_between(start, end),
        vec![(end, Transition::Ended)]
    );
    assert_eq!(
        Schedule::one_off(end, start).unwrap_err().to_string(),
        format!("schedule.one_off: end_ms {start} is not after start_ms {end}")
    );
    assert!(Schedule::one_off(start, start).is_err());
}

#[test]
fn times_in_the_dst_gap_start_one_gap_later_and_folded_times_once() {
    let w = window(Schedule::recurring("30 1 * * *", 30 * MINUTE, "Europe/London", None).unwrap());
    // 29 March 2026 01:30 London does not exist: it runs at 02:30 BST = 01:30 UTC.
    let spring = w.transitions_between(at("2026-03-28T12:00:00Z"), at("2026-03-29T12:00:00Z"));
    assert_eq!(
        render(&spring),
        ["2026-03-29T01:30:00Z started", "2026-03-29T02:00:00Z ended"]
    );
    // 25 October 2026 01:30 London happens twice: it runs once, at the first (BST, 00:30 UTC).
    let autumn = w.transitions_between(at("2026-10-24T12:00:00Z"), at("2026-10-25T12:00:00Z"));
    assert_eq!(
        render(&autumn),
        ["2026-10-25T00:30:00Z started", "2026-10-25T01:00:00Z ended"]
    );
}

#[test]
fn overlapping_occurrences_merge_into_one_span() {
    // Every 10 minutes of 02:xx for 30 minutes each: one span 02:00-03:20.
    let w = window(Schedule::recurring("*/10 2 * * *", 30 * MINUTE, "UTC", None).unwrap());
    let day = at("2026-05-01T00:00:00Z");
    assert_eq!(
        render(&w.transitions_between(day, day + 24 * HOUR)),
        ["2026-05-01T02:00:00Z started", "2026-05-01T03:20:00Z ended"]
    );
    assert_eq!(
        w.active_span(at("2026-05-01T03:15:00Z")),
        Some((at("2026-05-01T02:00:00Z"), at("2026-05-01T03:20:00Z")))
    );
    // Occurrences that touch merge too: 02:00-03:00 and 03:00-04:00.
    let touching = window(Schedule::recurring("0 2,3 * * *", HOUR, "UTC", None).unwrap());
    assert_eq!(
        render(&touching.transitions_between(day, day + 24 * HOUR)),
        ["2026-05-01T02:00:00Z started", "2026-05-01T04:00:00Z ended"]
    );
    assert_eq!(
        touching.active_span(at("2026-05-01T02:30:00Z")),
        Some((at("2026-05-01T02:00:00Z"), at("2026-05-01T04:00:00Z")))
    );
}

#[test]
fn until_stops_new_occurrences_but_lets_a_running_one_finish() {
    let until = at("2026-03-29T02:00:00Z");
    let w =
        window(Schedule::recurring("0 2 * * SUN", 2 * HOUR, "Europe/London", Some(until)).unwrap());
    // The 29 March occurrence started at 01:00 UTC, before `until`: it runs to 03:00.
    assert!(w.is_active(at("2026-03-29T02:30:00Z")));
    assert_eq!(w.next_start(at("2026-03-29T01:00:00Z")), None);
    assert!(!w.is_active(at("2026-04-05T01:30:00Z")));
    assert_eq!(
        render(&w.transitions_between(at("2026-03-28T00:00:00Z"), at("2026-05-01T00:00:00Z"))),
        ["2026-03-29T01:00:00Z started", "2026-03-29T03:00:00Z ended"]
    );
}

#[test]
fn rare_schedules_are_found_far_ahead() {
    let w = window(Schedule::recurring("0 0 29 2 *", HOUR, "UTC", None).unwrap());
    assert_eq!(
        w.next_start(at("2026-03-01T00:00:00Z")).map(show),
        Some("2028-02-29T00:00:00Z".to_owned())
    );
}

#[test]
fn scopes_cover_clouds_platforms_and_hosts() {
    let with_scope = |scope: Scope| MaintenanceWindow {
        scope,
        ..sunday_patching()
    };
    let db1 = alert("gc-uk1", "acme-prod", Some("db1"));
    let platform_wide = alert("gc-uk1", "acme-prod", None);
    let elsewhere = alert("gc-de1", "other", Some("db1"));

    let cloud = with_scope(Scope::Cloud("gc-uk1".into()));
    assert!(cloud.covers(&db1) && cloud.covers(&platform_wide) && !cloud.covers(&elsewhere));
    let platform = with_scope(Scope::Platform("acme-prod".into()));
    assert!(
        platform.covers(&db1) && platform.covers(&platform_wide) && !platform.covers(&elsewhere)
    );
    let host = with_scope(Scope::Host {
        platform: "acme-prod".into(),
        host: "db1".into(),
    });
    assert!(host.covers(&db1));
    assert!(!host.covers(&platform_wide));
    // Same host name on another platform is another host.
    assert!(!host.covers(&elsewhere));
}

#[test]
fn still_bad_alerts_are_listed_at_window_end() {
    let w = sunday_patching();
    let alerts = vec![
        (alert("gc-uk1", "acme-prod", Some("db1")), State::Critical),
        (alert("gc-uk1", "acme-prod", Some("web1")), State::Ok),
        (alert("gc-uk1", "acme-prod", None), State::Unknown),
        (alert("gc-uk1", "other", Some("db1")), State::Warning),
    ];
    let bad: Vec<(Option<&str>, State)> = still_bad_at_window_end(&w, &alerts)
        .into_iter()
        .map(|(alert, state)| (alert.host.as_deref(), state))
        .collect();
    assert_eq!(
        bad,
        [(Some("db1"), State::Critical), (None, State::Unknown)]
    );
}

#[test]
fn invalid_windows_say_where_and_why() {
    let errors: Vec<String> = [
        Schedule::recurring("0 25 * * SUN", HOUR, "UTC", None),
        Schedule::recurring("0 2 * *", HOUR, "UTC", None),
        Schedule::recurring("0 2 * * SUN", 1_000, "UTC", None),
        Schedule::recurring("0 2 * * SUN", 40 * 24 * HOUR, "UTC", None),
        Schedule::recurring("0 2 * * SUN", HOUR, "Mars/Olympus", None),
        Schedule::recurring("*/10 * * * *", 10 * MINUTE, "UTC", None),
        Schedule::recurring("0 2 * * *", 24 * HOUR, "UTC", None),
    ]
    .into_iter()
    .map(|result| result.unwrap_err().to_string())
    .collect();
    expect![[r#"
        schedule.recurring.cron: invalid cron "0 25 * * SUN": hour field "25": 25 is out of range 0-23
        schedule.recurring.cron: invalid cron "0 2 * *": it has 4 fields; use 5: minute hour day-of-month month day-of-week
        schedule.recurring.duration_ms: 1000 is out of range: use 60000 (1 minute) to 2678400000 (31 days)
        schedule.recurring.duration_ms: 3456000000 is out of range: use 60000 (1 minute) to 2678400000 (31 days)
        schedule.recurring.timezone: unknown time zone "Mars/Olympus": use an IANA name such as UTC or Europe/London
        schedule.recurring: occurrences of "*/10 * * * *" are never more than duration_ms 600000 apart, so the window would never end; shorten the duration
        schedule.recurring: occurrences of "0 2 * * *" are never more than duration_ms 86400000 apart, so the window would never end; shorten the duration"#]]
    .assert_eq(&errors.join("\n"));
    // Just under the gap is fine.
    assert!(Schedule::recurring("*/10 * * * *", 9 * MINUTE, "UTC", None).is_ok());
    assert!(Schedule::recurring("0 2 * * *", 23 * HOUR, "UTC", None).is_ok());
}

#[test]
fn json_round_trip_validates() {
    let json = r#"{"id":"mw-1","scope":{"host":{"platform":"acme-prod","host":"db1"}},"schedule":{"recurring":{"cron":"0 2 * * SUN","duration_ms":7200000,"timezone":"Europe/London"}},"comment":"patching"}"#;
    let parsed: MaintenanceWindow = serde_json::from_str(json).unwrap();
    assert!(parsed.is_active(at("2026-03-29T01:00:00Z")));
    assert_eq!(serde_json::to_string(&parsed).unwrap(), json);

    let one_off = r#"{"id":"mw-2","scope":{"cloud":"gc-uk1"},"schedule":{"one_off":{"start_ms":10,"end_ms":20}},"comment":""}"#;
    let parsed: MaintenanceWindow = serde_json::from_str(one_off).unwrap();
    assert_eq!(serde_json::to_string(&parsed).unwrap(), one_off);

    let bad = r#"{"id":"mw-3","scope":{"cloud":"gc-uk1"},"schedule":{"recurring":{"cron":"0 2 * * XYZ","duration_ms":60000}}}"#;
    let error = serde_json::from_str::<MaintenanceWindow>(bad)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "schedule.recurring.cron: invalid cron \"0 2 * * XYZ\": day-of-week field \"XYZ\""
        ),
        "{error}"
    );
    let empty_id =
        r#"{"id":"","scope":{"cloud":"c"},"schedule":{"one_off":{"start_ms":1,"end_ms":2}}}"#;
    let error = serde_json::from_str::<MaintenanceWindow>(empty_id)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("id: must not be empty"), "{error}");
}

#[test]
fn extreme_instants_neither_panic_nor_invent_transitions() {
    for w in sample_windows() {
        for instant in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            assert!(!w.is_active(instant), "{instant}");
            assert_eq!(w.active_span(instant), None);
            assert!(w.next_start(instant).is_none_or(|start| start > instant));
        }
        assert_eq!(w.next_start(i64::MAX), None);
        assert!(w.transitions_between(i64::MIN, i64::MAX).is_empty());
        assert!(w.transitions_between(i64::MAX, i64::MIN).is_empty());
    }
}

/// Windows for the proptest: weekly in London, daily with DST-gap times, merged occurrences, and a one-off.
fn sample_windows() -> Vec<MaintenanceWindow> {
    vec![
        sunday_patching(),
        window(Schedule::recurring("30 1 * * *", 45 * MINUTE, "Europe/London", None).unwrap()),
        window(
            Schedule::recurring("*/20 1-2 * * *", 30 * MINUTE, "America/New_York", None).unwrap(),
        ),
        window(
            Schedule::recurring(
                "0 2 * * SUN",
                2 * HOUR,
                "Europe/London",
                Some(at("2026-04-01T00:00:00Z")),
            )
            .unwrap(),
        ),
        window(Schedule::one_off(at("2026-03-28T10:00:00Z"), at("2026-03-30T10:00:00Z")).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn transitions_do_not_depend_on_how_the_interval_is_split(
        which in 0usize..5,
        from_offset_minutes in 0i64..(30 * 24 * 60),
        length_minutes in 0i64..(10 * 24 * 60),
        cut_fractions in proptest::collection::vec(0u32..=1000, 0..8),
    ) {
        let windows = sample_windows();
        let w = &windows[which];
        // Around the March and April 2026 DST changes in London and New York.
        let from = at("2026-03-05T00:00:00Z") + from_offset_minutes * MINUTE + 17;
        let to = from + length_minutes * MINUTE;
        let mut cuts: Vec<i64> = cut_fractions
            .iter()
            .map(|fraction| from + (to - from) * i64::from(*fraction) / 1000)
            .collect();
        cuts.sort_unstable();
        let whole = w.transitions_between(from, to);
        let mut pieces = Vec::new();
        let mut last = from;
        for cut in cuts.into_iter().chain([to]) {
            pieces.extend(w.transitions_between(last, cut));
            last = cut;
        }
        prop_assert_eq!(&pieces, &whole);

        // Each transition is a real edge of `is_active`, and they alternate.
        for (at_ms, transition) in &whole {
            let (before, after) = (w.is_active(at_ms - 1), w.is_active(*at_ms));
            match transition {
                Transition::Started => prop_assert!(!before && after, "start at {}", show(*at_ms)),
                Transition::Ended => prop_assert!(before && !after, "end at {}", show(*at_ms)),
            }
        }
        for pair in whole.windows(2) {
            prop_assert_ne!(pair[0].1, pair[1].1);
            prop_assert!(pair[0].0 < pair[1].0);
        }
        // The activity at both ends agrees with the first and last transitions.
        if let Some((_, first)) = whole.first() {
            prop_assert_eq!(w.is_active(from), *first == Transition::Ended);
        }
        if let Some((_, last_transition)) = whole.last() {
            prop_assert_eq!(w.is_active(to), *last_transition == Transition::Started);
        } else {
            prop_assert_eq!(w.is_active(from), w.is_active(to));
        }
    }
}
