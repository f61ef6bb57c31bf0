//! `newsletter bounces parse`: one JSON line a message, nothing stored, and a clear
//! failure for a file that is not there. (It touches no database.)

use std::process::Command;

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
