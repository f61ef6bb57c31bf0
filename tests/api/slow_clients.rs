//! Slow clients: a client that trickles its headers, or leaves a kept-alive connection
//! idle, is dropped after the header timeout; connections are capped; and the service
//! keeps answering everyone else meanwhile.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{Instant, timeout},
};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(slow_and_idle_clients_are_dropped_and_others_are_served);

/// Whether the server closes `stream` before `deadline`, reading what it sends.
async fn closed_by_server(stream: &mut TcpStream, deadline: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let until = Instant::now() + deadline;
    loop {
        match timeout(
            until.saturating_duration_since(Instant::now()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

async fn slow_and_idle_clients_are_dropped_and_others_are_served(backend: Backend) {
    let smtp = crate::support::SmtpServer::start().await;
    let app = TestApp::spawn_with(
        backend,
        |s| {
            s.http_header_timeout = Duration::from_secs(1);
            s.http_max_connections = 20;
        },
        &smtp.url(),
    )
    .await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();

    // Kept-alive connections, answered once and then left idle.
    let mut idle = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        idle.push(stream);
    }
    // More clients than the cap, each trickling the start of a request and no more.
    let mut slow = Vec::new();
    for _ in 0..30 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        slow.push(stream);
    }

    // Someone else is served all the same, once the slow ones are dropped.
    let started = Instant::now();
    let health = app
        .client
        .get(format!("{}/health", app.address))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the service stopped answering");
    assert!(health.status().is_success());
    assert!(started.elapsed() < Duration::from_secs(8));

    for stream in idle.iter_mut().chain(slow.iter_mut()) {
        assert!(
            closed_by_server(stream, Duration::from_secs(8)).await,
            "a slow or idle client was not dropped"
        );
    }
}
