use std::collections::BTreeMap;

use super::*;
use crate::config::KeepPolicy;

fn record(kind: BackupKind, created: &str, pinned: bool) -> BackupRecord {
    BackupRecord {
        id: format!("{}-{}", kind.as_str(), created.replace([':', '.'], "")),
        name: created.to_string(),
        description: String::new(),
        kind,
        created: created.to_string(),
        size: 1,
        sha256: "0".repeat(64),
        source: None,
        labels: BTreeMap::new(),
        user_version: None,
        schema_sha256: None,
        page_count: None,
        page_size: None,
        created_by: None,
        pinned,
    }
}

fn policies() -> Policies {
    Policies {
        manual: KeepPolicy::keep_last(2),
        pre_restore: KeepPolicy::keep_last(1),
        scheduled: KeepPolicy {
            last: 3,
            hourly: 2,
            daily: 7,
            weekly: 4,
            monthly: 3,
            yearly: 0,
        },
        uploaded: KeepPolicy::keep_last(1),
    }
}

/// A daily 03:00 scheduled backup from 2026-11-01 to 2026-12-05, two more on 2026-12-05, one
/// old one pinned, manual backups between them and a record with a damaged time.
fn calendar() -> Vec<BackupRecord> {
    let mut out = Vec::new();
    let first = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    for d in 0..35 {
        let day = first + chrono::Days::new(d);
        let created = format!("{day}T03:00:00.000Z");
        out.push(record(
            BackupKind::Scheduled,
            &created,
            day.to_string() == "2026-11-10",
        ));
    }
    for created in ["2026-12-05T09:00:00.000Z", "2026-12-05T10:00:00.000Z"] {
        out.push(record(BackupKind::Scheduled, created, false));
    }
    for created in [
        "2026-12-05T08:00:00.000Z",
        "2026-11-20T12:00:00.000Z",
        "2026-11-01T12:00:00.000Z",
    ] {
        out.push(record(BackupKind::Manual, created, false));
    }
    out.push(record(BackupKind::PreRestore, "yesterday", false));
    out.push(record(
        BackupKind::PreRestore,
        "2026-12-01T00:00:00.000Z",
        false,
    ));
    out.push(record(
        BackupKind::PreRestore,
        "2026-11-01T00:00:00.000Z",
        false,
    ));
    out
}

#[test]
fn tiers_keep_exactly_the_expected_set_with_their_reasons() {
    let verdicts = plan(&calendar(), &policies());
    let kept: Vec<(String, Vec<String>)> = verdicts
        .iter()
        .filter(|v| v.keep)
        .map(|v| {
            (
                format!("{} {}", v.kind.as_str(), v.created),
                v.reasons.clone(),
            )
        })
        .collect();
    let want: Vec<(&str, Vec<&str>)> = vec![
        ("pre-restore yesterday", vec!["created time unreadable"]),
        (
            "scheduled 2026-12-05T10:00:00.000Z",
            vec![
                "keep-last 1",
                "keep-hourly 2026-12-05T10",
                "keep-daily 2026-12-05",
                "keep-weekly 2026-W49",
                "keep-monthly 2026-12",
            ],
        ),
        (
            "scheduled 2026-12-05T09:00:00.000Z",
            vec!["keep-last 2", "keep-hourly 2026-12-05T09"],
        ),
        ("manual 2026-12-05T08:00:00.000Z", vec!["keep-last 1"]),
        ("scheduled 2026-12-05T03:00:00.000Z", vec!["keep-last 3"]),
        (
            "scheduled 2026-12-04T03:00:00.000Z",
            vec!["keep-daily 2026-12-04"],
        ),
        (
            "scheduled 2026-12-03T03:00:00.000Z",
            vec!["keep-daily 2026-12-03"],
        ),
        (
            "scheduled 2026-12-02T03:00:00.000Z",
            vec!["keep-daily 2026-12-02"],
        ),
        (
            "scheduled 2026-12-01T03:00:00.000Z",
            vec!["keep-daily 2026-12-01"],
        ),
        ("pre-restore 2026-12-01T00:00:00.000Z", vec!["keep-last 1"]),
        (
            "scheduled 2026-11-30T03:00:00.000Z",
            vec!["keep-daily 2026-11-30", "keep-monthly 2026-11"],
        ),
        (
            "scheduled 2026-11-29T03:00:00.000Z",
            vec!["keep-daily 2026-11-29", "keep-weekly 2026-W48"],
        ),
        (
            "scheduled 2026-11-22T03:00:00.000Z",
            vec!["keep-weekly 2026-W47"],
        ),
        ("manual 2026-11-20T12:00:00.000Z", vec!["keep-last 2"]),
        (
            "scheduled 2026-11-15T03:00:00.000Z",
            vec!["keep-weekly 2026-W46"],
        ),
        ("scheduled 2026-11-10T03:00:00.000Z", vec!["pinned"]),
    ];
    let want: Vec<(String, Vec<String>)> = want
        .into_iter()
        .map(|(k, r)| (k.to_string(), r.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(kept, want);
    // Everything else expires, with no reason; 43 records in all.
    assert_eq!(verdicts.len(), 43);
    let expired = verdicts.iter().filter(|v| !v.keep);
    assert!(expired.clone().all(|v| v.reasons.is_empty()));
    assert_eq!(expired.count(), 43 - 16);
}

#[test]
fn a_pinned_backup_takes_no_place_of_the_policy() {
    let records = vec![
        record(BackupKind::Manual, "2026-12-05T10:00:00.000Z", true),
        record(BackupKind::Manual, "2026-12-05T09:00:00.000Z", false),
        record(BackupKind::Manual, "2026-12-05T08:00:00.000Z", false),
        record(BackupKind::Manual, "2026-12-05T07:00:00.000Z", false),
    ];
    let verdicts = plan(&records, &policies());
    let shown: Vec<(bool, Vec<String>)> =
        verdicts.into_iter().map(|v| (v.keep, v.reasons)).collect();
    assert_eq!(
        shown,
        vec![
            (true, vec!["pinned".to_string()]),
            (true, vec!["keep-last 1".to_string()]),
            (true, vec!["keep-last 2".to_string()]),
            (false, vec![]),
        ]
    );
}

#[test]
fn keep_yearly_counts_years_that_have_a_backup() {
    let records: Vec<BackupRecord> = [
        "2026-01-01T00:00:00.000Z",
        "2025-12-31T23:59:59.999Z",
        "2025-06-01T00:00:00.000Z",
        "2021-03-01T00:00:00.000Z",
        "2020-03-01T00:00:00.000Z",
    ]
    .iter()
    .map(|c| record(BackupKind::Scheduled, c, false))
    .collect();
    let mut p = policies();
    p.scheduled = KeepPolicy {
        yearly: 3,
        ..KeepPolicy::default()
    };
    let reasons: Vec<Vec<String>> = plan(&records, &p).into_iter().map(|v| v.reasons).collect();
    assert_eq!(
        reasons,
        vec![
            vec!["keep-yearly 2026".to_string()],
            vec!["keep-yearly 2025".to_string()],
            vec![],
            vec!["keep-yearly 2021".to_string()],
            vec![],
        ]
    );
}
