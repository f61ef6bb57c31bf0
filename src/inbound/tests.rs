//! Real bounces: Mailman's corpus (`tests/bounces/mailman/`, from flufl.bounce 4.0,
//! Apache-2.0), each with what Mailman finds in it, read here and compared.

use std::path::Path;

use super::{Kind, read};

struct Sample {
    file: String,
    /// What Mailman finds: `failure`, `warning`, `nothing` or `unlisted`.
    mailman: String,
    addresses: Vec<String>,
    /// Where we read it otherwise: our kind and addresses (a column of its own, with
    /// the reason beside it in the file).
    ours: Option<(String, Vec<String>)>,
}

fn samples() -> Vec<Sample> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bounces/mailman");
    std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Sample {
                file: cols[0].to_owned(),
                mailman: cols[1].to_owned(),
                addresses: cols[2]
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_lowercase)
                    .collect(),
                ours: cols.get(3).map(|ours| {
                    let (kind, addresses) = ours.split_once(' ').unwrap_or((ours, ""));
                    let addresses = addresses.split(',').filter(|a| !a.is_empty());
                    (kind.to_owned(), addresses.map(str::to_owned).collect())
                }),
            }
        })
        .collect()
}

#[test]
fn mailmans_corpus_is_read_as_mailman_reads_it_or_not_counted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bounces/mailman");
    let mut wrong = Vec::new();
    for sample in samples() {
        let raw = std::fs::read(dir.join(&sample.file)).unwrap();
        let reading = read(&raw);
        let mut got: Vec<String> = reading
            .recipients
            .iter()
            .map(|r| r.to_lowercase())
            .collect();
        got.sort();
        let mut want = sample.addresses.clone();
        want.sort();
        let kind = serde_json::to_value(reading.kind).unwrap();
        let right = match (&sample.ours, sample.mailman.as_str()) {
            (Some((ours, addresses)), _) => kind == ours.as_str() && &got == addresses,
            (None, "failure") => reading.kind.is_failure() && got == want,
            (None, "warning") => reading.kind == Kind::Warning && got == want,
            (None, _) => !reading.kind.is_failure(),
        };
        if !right {
            wrong.push(format!(
                "{}: Mailman {} {:?}, we {:?} {:?} ({}, {:?})",
                sample.file,
                sample.mailman,
                want,
                reading.kind,
                got,
                reading.read_as,
                reading.status
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} read otherwise:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The formats a newsletter meets today (`tests/bounces/formats/`): each with the kind,
/// addresses and quoted Message-ID it must be read as.
#[test]
fn todays_formats_are_read_for_what_they_are() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bounces/formats");
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut wrong = Vec::new();
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let reading = read(&std::fs::read(dir.join(cols[0])).unwrap());
        let kind = serde_json::to_value(reading.kind).unwrap();
        let addresses: Vec<&str> = cols[2].split(',').filter(|a| !a.is_empty()).collect();
        let message_id = Some(cols[3]).filter(|m| !m.is_empty());
        if kind != cols[1]
            || reading.recipients != addresses
            || reading.message_id.as_deref() != message_id
        {
            wrong.push(format!("{}: {reading:?}", cols[0]));
        }
    }
    assert!(wrong.is_empty(), "read otherwise:\n{}", wrong.join("\n"));
}

#[test]
fn codes_and_addresses_are_found_in_text() {
    use super::{clean_address, severity, smtp_code, status_code};
    assert_eq!(
        status_code("Status: 5.1.1 (bad mailbox)").as_deref(),
        Some("5.1.1")
    );
    assert_eq!(status_code("version 1.2"), None);
    assert_eq!(smtp_code("said: 550-5.1.1 no"), Some("550"));
    assert_eq!(smtp_code("at 12:00 on 2026"), None);
    assert_eq!(
        clean_address(" <Jo@Example.org>: ").as_deref(),
        Some("Jo@Example.org")
    );
    for not_one in [
        "david...@gmail.com",
        "jo@localhost",
        "a@b.c?subject=x",
        "@example.org",
    ] {
        assert_eq!(clean_address(not_one), None, "{not_one}");
    }
    assert_eq!(severity(Some("5.1.1"), None), Kind::Hard);
    assert_eq!(severity(Some("5.2.2"), None), Kind::Soft);
    assert_eq!(severity(Some("4.4.1"), None), Kind::Soft);
    assert_eq!(severity(None, Some("452 try later")), Kind::Soft);
    assert_eq!(severity(None, Some("550 no such user")), Kind::Hard);
}
