//! `newsletter bounces parse`: one JSON line a message, nothing stored, and a clear
//! failure for a file that is not there. (It touches no database.)

use std::{
    io::Write,
    process::{Command, Stdio},
};

use newsletter::{inbound::return_path::CopyRef, keys::KeyRing};
use uuid::Uuid;

use crate::support::SECRET_KEY;

#[test]
fn parse_says_what_each_message_is_and_which_files_it_could_not_read() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bounces/formats");
    let out = Command::new(env!("CARGO_BIN_EXE_newsletter"))
        .args(["bounces", "parse"])
        .arg(format!("{dir}/postfix-dsn-hard.eml"))
        .arg(format!("{dir}/out-of-office.eml"))
        .arg(format!("{dir}/not-there.eml"))
        // Settings are not read: a broken one does not stop it.
        .env("DATABASE_URL", "nonsense:")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a missing file fails the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not-there.eml"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "the readable files are still read");
    assert_eq!(lines[0]["kind"], "hard");
    assert_eq!(
        lines[0]["recipients"],
        serde_json::json!(["jo.bloggs@example.net"])
    );
    assert_eq!(lines[0]["status"], "5.1.1");
    assert_eq!(
        lines[0]["message_id"],
        "issue-0193.copy-77@news.example.org"
    );
    assert_eq!(lines[0]["copy"], serde_json::Value::Null);
    assert_eq!(lines[1]["kind"], "auto-reply");
}

/// With `BOUNCE_ADDRESS` and the key, `copy` names the copy a bounce came back for, and
/// a mail to a copy's unsubscribe address is an `unsubscribe`; `-` reads standard input.
#[test]
fn parse_names_the_copy_from_the_address_it_came_to() {
    let ring = KeyRing::new(SECRET_KEY, &[]);
    let subscriber_id = Uuid::now_v7();
    let copy = CopyRef::Delivery {
        issue_number: 3,
        subscriber_id,
    };
    let mailbox = "bounces@news.example.org";
    let parse = |to: String| {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_newsletter"))
            .args(["bounces", "parse", "-"])
            .current_dir(dir.path())
            .env("BOUNCE_ADDRESS", mailbox)
            .env("SECRET_KEY", SECRET_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let bounce = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/bounces/formats/postfix-dsn-hard.eml"
        ))
        .unwrap()
        .replace("To: bounces@news.example.org", &format!("To: {to}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bounce.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        line
    };
    let bounced = parse(copy.addresses(mailbox, &ring).unwrap().return_path);
    assert_eq!(bounced["kind"], "hard");
    assert_eq!(
        bounced["copy"],
        serde_json::json!({"kind": "delivery", "issue_number": 3, "subscriber_id": subscriber_id})
    );
    let leaving = parse(copy.addresses(mailbox, &ring).unwrap().unsubscribe);
    assert_eq!(leaving["kind"], "unsubscribe");
    let forged = parse(
        copy.addresses(
            mailbox,
            &KeyRing::new("somebody else's key, long enough too", &[]),
        )
        .unwrap()
        .return_path,
    );
    assert_eq!(
        forged["copy"],
        serde_json::Value::Null,
        "a reference we did not sign"
    );
}
