//! `newsletter backup FILE` while the service runs, and a restore of what it wrote
//! (SQLite: the file put in place; PostgreSQL: `pg_restore` into an empty database, as
//! docs/running-it.md says): every subscriber and every ledger event comes back, and
//! the service starts on it.

use crate::on_both_backends;
use crate::support::{Backend, TestApp, TestDatabase};

on_both_backends!(a_backup_taken_while_it_runs_restores_everyone_and_their_ledger);

const PEOPLE: &str = "SELECT s.email || ' ' || sub.status FROM subscribers s
     JOIN subscriptions sub ON sub.subscriber_id = s.id ORDER BY s.email";
const LEDGER: &str = "SELECT s.email || ' ' || e.kind || ' ' || e.method FROM consent_events e
     JOIN subscribers s ON s.id = e.subscriber_id ORDER BY s.email, e.occurred_at, e.kind";

fn backup(db_url: &str, file: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_newsletter"))
        .arg("backup")
        .arg(file)
        .env("DATABASE_URL", db_url)
        .env("SECRET_KEY", crate::support::SECRET_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

async fn a_backup_taken_while_it_runs_restores_everyone_and_their_ledger(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    for person in ["ann@example.org", "bob@example.org", "cat@example.org"] {
        app.confirmed_subscriber(person).await;
    }
    app.sign_up("dan@example.org").await;
    let token = app.api_token("backup").await;
    app.send_issue(&token, "Before the backup").await;
    let original = app.db.inspect().await;
    let people = original.texts(PEOPLE).await;
    let ledger = original.texts(LEDGER).await;
    assert_eq!(people.len(), 4);
    assert!(ledger.len() >= 7, "{ledger:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup");
    // The app is running, with what it wrote last still in SQLite's -wal file.
    let out = backup(&app.db.url, &file);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("Backed up to"), "{said}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner may read a backup");
    }
    // It never overwrites.
    let again = backup(&app.db.url, &file);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let restored = TestDatabase::restore(&backend, &file).await;
    let copy = restored.inspect().await;
    assert_eq!(copy.texts(PEOPLE).await, people);
    assert_eq!(copy.texts(LEDGER).await, ledger);
    assert_eq!(
        copy.count("SELECT count(*) FROM deliveries").await,
        original.count("SELECT count(*) FROM deliveries").await
    );
    drop(app);

    // The service starts on the restored database, and knows its people.
    let back = TestApp::spawn_on(restored, |_| {}, "smtp://127.0.0.1:9").await;
    assert_eq!(back.get("/health").await.status(), 200);
    let found = back
        .api(reqwest::Method::GET, "/api/subscribers?search=bob", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    assert!(found.text().await.unwrap().contains("bob@example.org"));
}
