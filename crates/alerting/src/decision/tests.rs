//! Table-driven tests of `decide`.

use super::*;
use crate::maintenance::{Schedule, Scope};
use crate::silence::{RawSilence, RawSilenceMatchers};

const NOW: i64 = 1_000_000;

fn alert() -> AlertContext {
    AlertContext {
        cloud: "gc-uk1".into(),
        isv: "acme".into(),
        tenant: "shop".into(),
        platform: "acme-prod".into(),
        host: Some("db1".into()),
        monitor: Some("df".into()),
        severity: State::Critical,
    }
}

fn maintenance(platform: &str, start_ms: i64, end_ms: i64) -> MaintenanceWindow {
    MaintenanceWindow {
        id: format!("mw-{platform}"),
        scope: Scope::Platform(platform.into()),
        schedule: Schedule::one_off(start_ms, end_ms).unwrap(),
        comment: String::new(),
    }
}

fn silence(monitor: &str, expires_at_ms: i64) -> Silence {
    Silence::try_from(RawSilence {
        id: format!("s-{monitor}"),
        matchers: RawSilenceMatchers {
            monitor: Some(monitor.into()),
            ..RawSilenceMatchers::default()
        },
        expires_at_ms,
        created_by: "alice".into(),
        comment: String::new(),
    })
    .unwrap()
}

#[derive(Clone, Copy)]
enum Window {
    None,
    Active,
    Past,
    OtherPlatform,
}

#[derive(Clone, Copy)]
enum Silenced {
    No,
    Yes,
    Expired,
    OtherMonitor,
}

use State::{Critical as C, Ok as O, Unknown as U, Warning as W};

/// (from, to, flapping, window, silence, acked, last_notified) → expected decision.
#[allow(clippy::type_complexity)]
const TABLE: &[(
    State,
    State,
    bool,
    Window,
    Silenced,
    bool,
    Option<State>,
    &str,
)] = &[
    // Plain problems.
    (
        O,
        W,
        false,
        Window::None,
        Silenced::No,
        false,
        None,
        "Notify",
    ),
    (
        O,
        C,
        false,
        Window::None,
        Silenced::No,
        false,
        Some(O),
        "Notify",
    ),
    (
        O,
        U,
        false,
        Window::None,
        Silenced::No,
        false,
        None,
        "Notify",
    ),
    (
        W,
        C,
        false,
        Window::None,
        Silenced::No,
        false,
        Some(W),
        "Notify",
    ),
    // Each suppression, and their precedence: silence, then maintenance, then flapping.
    (
        O,
        C,
        false,
        Window::Active,
        Silenced::No,
        false,
        None,
        "SuppressedMaintenance(\"mw-acme-prod\")",
    ),
    (
        O,
        C,
        false,
        Window::None,
        Silenced::Yes,
        false,
        None,
        "SuppressedSilence(\"s-df\")",
    ),
    (
        O,
        C,
        true,
        Window::None,
        Silenced::No,
        false,
        None,
        "SuppressedFlapping",
    ),
    (
        O,
        C,
        true,
        Window::Active,
        Silenced::Yes,
        false,
        None,
        "SuppressedSilence(\"s-df\")",
    ),
    (
        O,
        C,
        true,
        Window::Active,
        Silenced::No,
        false,
        None,
        "SuppressedMaintenance(\"mw-acme-prod\")",
    ),
    // Windows and silences that do not apply.
    (
        O,
        C,
        false,
        Window::Past,
        Silenced::Expired,
        false,
        None,
        "Notify",
    ),
    (
        O,
        C,
        false,
        Window::OtherPlatform,
        Silenced::OtherMonitor,
        false,
        None,
        "Notify",
    ),
    // Acknowledged: a state change is still notified, a re-notification is not.
    (
        W,
        C,
        false,
        Window::None,
        Silenced::No,
        true,
        Some(W),
        "Notify",
    ),
    (
        C,
        C,
        false,
        Window::None,
        Silenced::No,
        true,
        Some(C),
        "SuppressedAcked",
    ),
    (
        C,
        C,
        false,
        Window::None,
        Silenced::No,
        false,
        Some(C),
        "Notify",
    ),
    // Window-end re-notification (from == to) still respects silences and other windows.
    (
        C,
        C,
        false,
        Window::None,
        Silenced::Yes,
        false,
        None,
        "SuppressedSilence(\"s-df\")",
    ),
    (
        C,
        C,
        false,
        Window::Active,
        Silenced::No,
        false,
        None,
        "SuppressedMaintenance(\"mw-acme-prod\")",
    ),
    (
        O,
        O,
        false,
        Window::None,
        Silenced::No,
        false,
        Some(C),
        "NothingToTell",
    ),
    // Recoveries: notified if the problem was, unless silenced; maintenance and flapping do not hold them back.
    (
        C,
        O,
        false,
        Window::None,
        Silenced::No,
        false,
        Some(C),
        "Notify",
    ),
    (
        C,
        O,
        false,
        Window::Active,
        Silenced::No,
        false,
        Some(C),
        "Notify",
    ),
    (
        C,
        O,
        true,
        Window::None,
        Silenced::No,
        true,
        Some(W),
        "Notify",
    ),
    (
        C,
        O,
        false,
        Window::None,
        Silenced::Yes,
        false,
        Some(C),
        "SuppressedSilence(\"s-df\")",
    ),
    // Recovery of a problem nobody was told about (raised in maintenance), or already told ok.
    (
        C,
        O,
        false,
        Window::Active,
        Silenced::No,
        false,
        None,
        "NothingToTell",
    ),
    (
        C,
        O,
        false,
        Window::None,
        Silenced::No,
        false,
        None,
        "NothingToTell",
    ),
    (
        W,
        O,
        false,
        Window::None,
        Silenced::No,
        false,
        Some(O),
        "NothingToTell",
    ),
    // Back to the state already notified: nothing new (critical was suppressed by maintenance).
    (
        C,
        W,
        false,
        Window::Active,
        Silenced::No,
        false,
        Some(W),
        "NothingToTell",
    ),
];

#[test]
fn decisions_follow_the_table() {
    for (row, &(from, to, flapping, window, silenced, acked, last_notified, expected)) in
        TABLE.iter().enumerate()
    {
        let windows: Vec<MaintenanceWindow> = match window {
            Window::None => vec![],
            Window::Active => vec![maintenance("acme-prod", NOW - 10, NOW + 10)],
            Window::Past => vec![maintenance("acme-prod", NOW - 10, NOW)],
            Window::OtherPlatform => vec![maintenance("other", NOW - 10, NOW + 10)],
        };
        let silences: Vec<Silence> = match silenced {
            Silenced::No => vec![],
            Silenced::Yes => vec![silence("df", NOW + 1)],
            Silenced::Expired => vec![silence("df", NOW)],
            Silenced::OtherMonitor => vec![silence("cpu", NOW + 1)],
        };
        let context = alert();
        let decision = decide(&DecisionInput {
            alert: &context,
            transition_to: to,
            transition_from: from,
            suppressed_by_flapping: flapping,
            maintenance: &windows,
            silences: &silences,
            acked,
            last_notified,
            now_ms: NOW,
        });
        assert_eq!(
            format!("{decision:?}"),
            expected,
            "row {row}: {from} → {to}"
        );
    }
}

#[test]
fn active_window_picks_a_covering_active_one() {
    let windows = vec![
        maintenance("other", NOW - 10, NOW + 10),
        maintenance("acme-prod", NOW + 1, NOW + 10),
        maintenance("acme-prod", NOW - 10, NOW + 1),
    ];
    let found = active_window(&windows, &alert(), NOW).map(|w| w.schedule.clone());
    assert_eq!(found, windows.get(2).map(|w| w.schedule.clone()));
    assert!(active_window(&windows, &alert(), NOW + 20).is_none());
}
