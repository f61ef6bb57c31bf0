//! `newsletter doctor` against a running service: with a live relay, a DKIM key whose
//! record DNS has, and a PUBLIC_URL that answers, every check passes and nothing is
//! sent; with a dead relay, a key file others may read and another key in DNS, each
//! fails with what to do, and it exits 1.

use std::process::Output;

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, SmtpServer, TestApp, dns::DnsServer};

on_both_backends!(
    every_check_passes_with_a_live_relay_and_nothing_is_sent,
    a_dead_relay_and_a_wrong_key_each_say_what_to_do,
);

/// A DKIM key made by openssl, and the TXT record openssl says to publish for it.
fn dkim_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("dkim.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success());
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    use base64::Engine;
    let p = base64::engine::general_purpose::STANDARD.encode(public.stdout);
    (key, format!("v=DKIM1; k=rsa; p={p}"))
}

/// Runs `newsletter doctor` beside the app (which must go on answering meanwhile).
async fn doctor(app: &TestApp, env: &[(&str, String)]) -> (Output, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsletter"));
    command
        .arg("doctor")
        .env("DATABASE_URL", &app.db.url)
        .env("SECRET_KEY", SECRET_KEY)
        .env("PUBLIC_URL", &app.address)
        .env("ALLOW_INSECURE_PUBLIC_URL", "true")
        .env("BOUNCE_ADDRESS", "bounces@news.example.org")
        .env("DKIM_SELECTOR", "s1")
        .env("DKIM_DOMAIN", "news.example.org")
        .env("RUST_LOG", "off");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, said)
}

fn line<'a>(said: &'a str, check: &str) -> &'a str {
    said.lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no {check} line in:\n{said}"))
}

async fn every_check_passes_with_a_live_relay_and_nothing_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let relay = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, record) = dkim_key(dir.path());
    let dns = DnsServer::start(Some(record.clone())).await;
    let (out, said) = doctor(
        &app,
        &[
            ("SMTP_URL", relay.url()),
            ("DKIM_KEY_FILE", key.display().to_string()),
            ("DOCTOR_DNS_SERVER", dns.addr.to_string()),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "settings",
        "database",
        "secret key",
        "relay",
        "dkim ",
        "dkim dns",
        "bounces",
        "public url",
    ] {
        assert!(line(&said, check).starts_with("ok "), "{check}:\n{said}");
    }
    assert!(line(&said, "relay").contains("nothing sent"), "{said}");
    assert!(
        line(&said, "dkim ").contains(&record),
        "the record openssl would publish:\n{said}"
    );
    assert!(line(&said, "dkim dns").contains("s1._domainkey.news.example.org"));
    // It said hello and goodbye, and sent nothing.
    let commands = relay.commands();
    assert!(
        commands.iter().any(|c| c.starts_with("EHLO")),
        "{commands:?}"
    );
    assert!(commands.iter().any(|c| c == "QUIT"), "{commands:?}");
    assert!(
        !commands.iter().any(|c| c.starts_with("MAIL")),
        "{commands:?}"
    );
    assert!(relay.received().is_empty());
}

async fn a_dead_relay_and_a_wrong_key_each_say_what_to_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = dkim_key(dir.path());
    let (_, another) = dkim_key(tempfile::tempdir().unwrap().path());
    let dns = DnsServer::start(Some(another)).await;
    // Nothing listens on the relay's port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("smtp://{}", dead.local_addr().unwrap());
    drop(dead);
    let env = [
        ("SMTP_URL", dead_url.clone()),
        ("DKIM_KEY_FILE", key.display().to_string()),
        ("DOCTOR_DNS_SERVER", dns.addr.to_string()),
    ];
    let (out, said) = doctor(&app, &env).await;
    assert_eq!(out.status.code(), Some(1), "{said}");
    let relay = line(&said, "relay");
    assert!(relay.starts_with("FAIL"), "{said}");
    assert!(
        relay.contains("-> check SMTP_URL's host and port"),
        "{relay}"
    );
    let dns_line = line(&said, "dkim dns");
    assert!(
        dns_line.starts_with("FAIL") && dns_line.contains("another key"),
        "{said}"
    );
    // The other checks still ran, and passed.
    assert!(line(&said, "database").starts_with("ok "), "{said}");
    assert!(line(&said, "public url").starts_with("ok "), "{said}");

    // A private key others may read is refused, with the command that mends it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, said) = doctor(&app, &env).await;
        let dkim = line(&said, "dkim ");
        assert!(dkim.starts_with("FAIL"), "{said}");
        assert!(
            dkim.contains(&format!("-> chmod 600 {}", key.display())),
            "{dkim}"
        );
    }
}
