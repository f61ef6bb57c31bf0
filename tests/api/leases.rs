//! A worker's leases: renewed while it lives, so no other worker takes its mail however
//! long its relay takes; and after `kill -9`, another worker takes that mail within the
//! lease (`MAIL_LEASE_SECONDS`), and each person gets one copy.

use std::{process::Stdio, time::Duration};

use crate::on_both_backends;
use crate::support::{Backend, Fault, SECRET_KEY, SmtpServer, TestApp};

on_both_backends!(a_live_worker_keeps_its_copies_and_a_killed_ones_go_out_from_another);

const PEOPLE: [&str; 3] = ["ann@example.org", "bob@example.org", "cat@example.org"];

async fn a_live_worker_keeps_its_copies_and_a_killed_ones_go_out_from_another(backend: Backend) {
    let lease = Duration::from_secs(2);
    // Leases that have not run out, by the database's clock.
    let live_leases = match backend {
        Backend::Sqlite => {
            "SELECT count(*) FROM deliveries WHERE status = 'sending'
             AND lease_until > CAST(strftime('%s', 'now') AS INTEGER) * 1000"
        }
        Backend::Postgres(_) => {
            "SELECT count(*) FROM deliveries WHERE status = 'sending' AND lease_until > now()"
        }
    };
    let relay = SmtpServer::start().await;
    // This app sends nothing: it is the staff's way in, and the database.
    let mut app = TestApp::spawn_with(backend, |s| s.mail.worker = false, &relay.url()).await;
    app.smtp = Some(relay);
    let token = app.api_token("leases").await;
    for email in PEOPLE {
        app.add_confirmed(&token, email).await;
    }

    // A worker of its own process, whose relay takes each copy and never answers.
    let hung = SmtpServer::start().await;
    for email in PEOPLE {
        hung.fail_recipient(email, Fault::Silence);
    }
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsletter"))
        .arg("serve")
        .env("DATABASE_URL", &app.db.url)
        .env("SMTP_URL", hung.url())
        .env("SMTP_TIMEOUT_SECONDS", "600")
        .env("SECRET_KEY", SECRET_KEY)
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("PUBLIC_URL", "http://newsletter.test")
        .env("ALLOW_INSECURE_PUBLIC_URL", "true")
        .env("MAIL_LEASE_SECONDS", lease.as_secs().to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    app.send_issue(&token, "Leased").await;
    let db = app.db.inspect().await;
    crate::support::wait_until("the worker claims every copy", || async {
        db.count(
            "SELECT count(*) FROM deliveries WHERE status = 'sending' AND claimed_by IS NOT NULL",
        )
        .await
            == 3
    })
    .await;

    // Another instance, with a relay that works, waits while the first one lives: for
    // three leases, it takes nothing, and the leases move on.
    let _other = app.another_instance_with(|s| s.mail.lease = lease).await;
    tokio::time::sleep(3 * lease).await;
    assert_eq!(
        db.count("SELECT count(*) FROM deliveries WHERE status = 'sending'")
            .await,
        3,
        "a live worker's copies stay with it"
    );
    assert!(app.smtp().with_subject("Leased").is_empty());
    assert_eq!(
        db.count(live_leases).await,
        3,
        "the live worker renews its leases"
    );

    // kill -9: no goodbye, no shutdown grace.
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    let killed = tokio::time::Instant::now();
    let copies = app.smtp().wait_for_subject("Leased", 3).await;
    let taken_after = killed.elapsed();
    assert!(
        taken_after < Duration::from_secs(15),
        "the dead worker's copies went out {taken_after:?} after it died"
    );
    let mut to: Vec<String> = copies.iter().map(|c| c.to[0].clone()).collect();
    to.sort();
    assert_eq!(to, PEOPLE, "one copy each");
    crate::support::wait_until("the issue is sent", || async {
        app.issue_status(
            &token,
            &db.id("SELECT id FROM issues WHERE subject = $1", "Leased")
                .await
                .to_string(),
        )
        .await
            == "sent"
    })
    .await;
    assert!(hung.received().is_empty());
}
