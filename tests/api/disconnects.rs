//! Clients that hang up mid-request: whatever they cut short, no database session is left
//! inside a transaction, every sign-up that was stored gets its mail, and SIGTERM ends
//! `newsletter serve` within its grace period even with a client still connected.

use std::{process::Stdio, time::Duration};

use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, SmtpServer, TestDatabase, wait_until};

on_both_backends!(clients_that_hang_up_stall_nothing_and_sigterm_ends_the_service);

const SIGN_UPS: usize = 150;
const GRACE_SECONDS: u64 = 2;

async fn form_token(client: &reqwest::Client, base: &str) -> String {
    let answer: serde_json::Value = client
        .get(format!("{base}/subscriptions/form-token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["form_token"].as_str().unwrap().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn clients_that_hang_up_stall_nothing_and_sigterm_ends_the_service(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start().await;
    let port = free_port();
    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsletter"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("SMTP_URL", smtp.url())
        .env("ALLOW_INSECURE_PUBLIC_URL", "true")
        .env("BIND_ADDRESS", format!("127.0.0.1:{port}"))
        .env("SECRET_KEY", SECRET_KEY)
        .env("SIGNUP_FORM_MIN_SECONDS", "0")
        .env("SIGNUP_BUDGET_PER_CLIENT", "0")
        .env("SIGNUP_BUDGET_PER_DOMAIN", "0")
        .env("SIGNUP_BUDGET_TOTAL", "0")
        .env("SHUTDOWN_GRACE_SECONDS", GRACE_SECONDS.to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("newsletter serve did not start");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until("the service answers", || async {
        client.get(format!("{base}/health")).send().await.is_ok()
    })
    .await;

    // Each client sends a whole sign-up, or half of one, and hangs up after a moment
    // (from at once to 20 milliseconds), without reading the answer.
    let mut tokens = Vec::new();
    for _ in 0..SIGN_UPS {
        tokens.push(form_token(&client, &base).await);
    }
    let mut clients = tokio::task::JoinSet::new();
    let mut seed: u64 = 0x5eed;
    for (n, token) in tokens.into_iter().enumerate() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_micros((seed >> 33) % 20_000);
        let whole = n % 5 != 0;
        clients.spawn(async move {
            let body = format!(
                "email=leaver{n}%40example.org&name=Leaver&consent=yes&form_token={token}"
            );
            let request = format!(
                "POST /subscriptions HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let sent = if whole { request.len() } else { request.len() - body.len() / 2 };
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let _ = stream.write_all(&request.as_bytes()[..sent]).await;
            tokio::time::sleep(wait).await;
            drop(stream);
        });
    }
    while clients.join_next().await.is_some() {}

    // People who wait for their answer are served as ever.
    for n in 0..5 {
        let token = form_token(&client, &base).await;
        let email = format!("stayer{n}@example.org");
        let answer = client
            .post(format!("{base}/subscriptions"))
            .form(&[
                ("email", email.as_str()),
                ("name", "Stayer"),
                ("consent", "yes"),
                ("form_token", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
    }

    // Every sign-up that was stored (whether or not its client stayed) is mailed, and
    // none is left waiting.
    let inspect = db.inspect().await;
    wait_until("every stored sign-up is mailed", || async {
        let stored = inspect.count("SELECT count(*) FROM subscribers").await;
        let sent = inspect
            .count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await;
        let waiting = inspect
            .count("SELECT count(*) FROM outbox WHERE status <> 'sent'")
            .await;
        stored == sent && waiting == 0 && smtp.received().len() as i64 == sent
    })
    .await;
    if matches!(backend, Backend::Postgres(_)) {
        assert_eq!(
            inspect
                .count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
                .await,
            0
        );
    }

    // A client that never finishes its request does not hold the service up.
    let mut stuck = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stuck
        .write_all(b"POST /subscriptions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nemail=")
        .await
        .unwrap();
    let pid = service.id().expect("the service runs");
    let asked = tokio::time::Instant::now();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(GRACE_SECONDS + 10), service.wait())
        .await
        .expect("SIGTERM did not end the service within its grace period")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(asked.elapsed() < Duration::from_secs(GRACE_SECONDS + 5));
    drop(stuck);
}
