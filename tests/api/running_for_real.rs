//! Running it for real: with mail going to a relay, `newsletter serve` will not start
//! while its links would point at this machine or at plain http, and it says why and
//! what to set.

use std::process::Stdio;

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, SmtpServer, TestDatabase};

on_both_backends!(mail_through_a_relay_with_a_local_public_url_does_not_start);

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
