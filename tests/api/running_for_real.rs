//! Running it for real: with mail going to a relay, `newsletter serve` will not start
//! while its links would point at this machine or at plain http, and it says why and
//! what to set. Without a relay, the outbox's files are easy to find and to use.

use std::process::Stdio;

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, SmtpServer, TestApp, TestDatabase, wait_until};

on_both_backends!(
    mail_through_a_relay_with_a_local_public_url_does_not_start,
    outbox_files_are_named_for_when_and_whom_and_their_link_can_be_copied,
    log_format_json_writes_one_object_a_line,
);

async fn serve(db: &TestDatabase, extra: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsletter"));
    command
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("SECRET_KEY", SECRET_KEY)
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env_remove("PUBLIC_URL")
        .env_remove("ALLOW_INSECURE_PUBLIC_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in extra {
        command.env(key, value);
    }
    tokio::time::timeout(std::time::Duration::from_secs(30), command.output())
        .await
        .expect("serve neither started nor stopped")
        .unwrap()
}

async fn mail_through_a_relay_with_a_local_public_url_does_not_start(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start().await;
    let relay = smtp.url();
    for public_url in [None, Some("http://news.example.org")] {
        let mut extra = vec![("SMTP_URL", relay.as_str())];
        extra.extend(public_url.map(|url| ("PUBLIC_URL", url)));
        let refused = serve(&db, &extra).await;
        assert!(!refused.status.success(), "{public_url:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("PUBLIC_URL is"), "{said}");
        assert!(said.contains("ALLOW_INSECURE_PUBLIC_URL=true"), "{said}");
    }
    assert!(smtp.received().is_empty(), "nothing was sent");
}

async fn outbox_files_are_named_for_when_and_whom_and_their_link_can_be_copied(backend: Backend) {
    let outbox = tempfile::tempdir().unwrap();
    let dir = outbox.path().join("outbox");
    let app = TestApp::spawn_with(
        backend,
        |s| {
            s.smtp_url = None;
            s.outbox_dir = dir.clone();
        },
        "smtp://unused",
    )
    .await;
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".eml"))
            .collect();
        names.sort();
        names
    };
    // A name long enough that a quoted-printable line would have been broken.
    app.sign_up("Jo.Bloggs-Partnership@example.org").await;
    app.sign_up("sam@example.org").await;
    wait_until("two mails are written", || async { files().len() == 2 }).await;
    let names = files();
    let jo = names
        .iter()
        .find(|name| name.contains("-Jo.Bloggs-Partnership@example.org-"))
        .unwrap_or_else(|| panic!("no file names Jo: {names:?}"));
    assert!(jo.ends_with(".eml") && jo.starts_with("20"), "{jo}");
    let path = dir.join(jo);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(&path),
            0o600,
            "a mail holds a link only its reader may use"
        );
        assert_eq!(mode(&dir), 0o700, "nor may others list the mails");
        if let Some(file) = app.db.url.strip_prefix("sqlite://") {
            let file = std::path::Path::new(file.split('?').next().unwrap());
            assert_eq!(
                mode(file),
                0o600,
                "the database is everyone's personal data"
            );
        }
    }
    // The link is one line of the file as it is: copied, it confirms.
    let text = std::fs::read_to_string(&path).unwrap();
    let link = text
        .lines()
        .find(|line| line.starts_with("http") && line.contains("/subscriptions/confirm?token="))
        .unwrap_or_else(|| panic!("no whole link in the file:\n{text}"));
    let path_and_query = &link[link.find("/subscriptions/").unwrap()..];
    let page = app.get(path_and_query).await;
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Confirm my subscription")
    );
}

async fn log_format_json_writes_one_object_a_line(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsletter"))
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .env("SECRET_KEY", SECRET_KEY)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let logs = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    let applied = lines
        .iter()
        .find(|l| l["fields"]["message"] == "Migrations applied")
        .unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(applied["level"], "INFO");
    assert!(applied["timestamp"].is_string());
}
