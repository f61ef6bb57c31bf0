//! `GET /metrics`: never public by default, guarded by `METRICS_TOKEN` or served on
//! `METRICS_ADDRESS`; and its numbers move when people sign up, confirm, are mailed,
//! and when their copies bounce.

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp,
    returns::{BOUNCES, app_with_bounces, copy_to, dsn, ingest},
    wait_until,
};

on_both_backends!(
    metrics_are_not_served_unless_asked_for_and_a_token_guards_them,
    the_numbers_move_with_signups_sends_and_bounces,
    the_queue_says_how_much_waits_and_for_how_long,
    the_sample_dashboard_asks_only_for_metrics_there_are,
);

const TOKEN: &str = "a metrics token that is long enough to use";

async fn scrape(app: &TestApp) -> String {
    let address = app
        .metrics_address
        .as_ref()
        .expect("METRICS_ADDRESS is set");
    let response = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// An app with metrics on an address of their own and no worker: what it queues stays.
async fn without_worker(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        |s| {
            s.metrics_address = Some("127.0.0.1:0".into());
            s.mail.worker = false;
        },
        "smtp://127.0.0.1:9",
    )
    .await
}

/// The value of the series named exactly so (name and labels), 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(series))
        .find_map(|rest| rest.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn metrics_are_not_served_unless_asked_for_and_a_token_guards_them(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    assert!(app.metrics_address.is_none());

    let guarded = TestApp::spawn_with(
        backend,
        |s| {
            s.metrics_token = Some(TOKEN.into());
            s.metrics_address = Some("127.0.0.1:0".into());
        },
        "smtp://127.0.0.1:9",
    )
    .await;
    let metrics_address = guarded.metrics_address.clone().unwrap();
    for base in [&guarded.address, &metrics_address] {
        let url = format!("{base}/metrics");
        for auth in [None, Some("Bearer not-the-token"), Some(TOKEN)] {
            let mut request = guarded.client.get(&url);
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{url} with {auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
        let response = guarded
            .client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text"),
        );
        let text = response.text().await.unwrap();
        assert_eq!(value(&text, "newsletter_database_up"), 1.0, "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
    // The metrics address serves metrics and nothing else.
    let page = guarded
        .client
        .get(format!("{metrics_address}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
}

async fn the_numbers_move_with_signups_sends_and_bounces(backend: Backend) {
    let app = app_with_bounces(backend, |s| {
        s.metrics_address = Some("127.0.0.1:0".into());
    })
    .await;
    let signups = "newsletter_ledger_events_total{kind=\"signup\",method=\"form\"}";
    let confirms = "newsletter_ledger_events_total{kind=\"confirm\",method=\"link\"}";
    let outbox_sent = "newsletter_copies_total{queue=\"outbox\",outcome=\"sent\"}";
    let issue_sent = "newsletter_copies_total{queue=\"deliveries\",outcome=\"sent\"}";
    let accepted = "newsletter_smtp_send_duration_seconds_count{result=\"accepted\"}";
    let hard = "newsletter_returns_total{kind=\"hard\"}";
    let before = scrape(&app).await;
    for series in [signups, confirms, outbox_sent, issue_sent, accepted, hard] {
        assert_eq!(value(&before, series), 0.0, "{series}");
    }

    app.confirmed_subscriber("gone@example.org").await;
    // Counted once the relay's answer is in, a moment after the mail arrived (and
    // then the welcome mail).
    wait_until("the confirmation mail is counted", || async {
        value(&scrape(&app).await, outbox_sent) >= 1.0
    })
    .await;
    let after = scrape(&app).await;
    assert_eq!(value(&after, signups), 1.0, "{after}");
    assert_eq!(value(&after, confirms), 1.0, "{after}");
    assert!(value(&after, accepted) >= 1.0, "{after}");
    let confirmed = "newsletter_subscriptions{list=\"in-partnership\",status=\"confirmed\"}";
    assert_eq!(value(&after, confirmed), 1.0, "{after}");
    assert!(
        value(
            &after,
            "newsletter_http_requests_total{method=\"POST\",route=\"/subscriptions\",status=\"200\"}"
        ) + value(
            &after,
            "newsletter_http_requests_total{method=\"POST\",route=\"/subscriptions\",status=\"303\"}"
        ) >= 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "newsletter_db_pool_connections{pool=\"main\",state=\"max\"}"
        ) + value(
            &after,
            "newsletter_db_pool_connections{pool=\"writer\",state=\"max\"}"
        ) >= 1.0,
        "{after}"
    );

    let token = app.api_token("metrics").await;
    app.send_issue(&token, "Spring news").await;
    let copies = app.smtp().wait_for_subject("Spring news", 1).await;
    wait_until("the copy is counted", || async {
        value(&scrape(&app).await, issue_sent) == 1.0
    })
    .await;

    let bounce = dsn(
        copy_to(&copies, "gone@example.org"),
        "5.1.1",
        "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
    );
    let out = ingest(&app.db.url, BOUNCES, &bounce).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Taken by another process, and counted all the same: the numbers are the database's.
    let last = scrape(&app).await;
    assert_eq!(value(&last, hard), 1.0, "{last}");
    assert_eq!(
        value(
            &last,
            "newsletter_subscriptions{list=\"in-partnership\",status=\"bounced\"}"
        ),
        1.0,
        "{last}"
    );
}

async fn the_queue_says_how_much_waits_and_for_how_long(backend: Backend) {
    let app = without_worker(backend).await;
    let due = "newsletter_queue_rows{queue=\"outbox\",state=\"due\"}";
    assert_eq!(value(&scrape(&app).await, due), 0.0);
    app.sign_up("one@example.org").await;
    app.sign_up("two@example.org").await;
    let text = scrape(&app).await;
    assert_eq!(value(&text, due), 2.0, "{text}");
    assert_eq!(
        value(
            &text,
            "newsletter_queue_rows{queue=\"outbox\",state=\"in_flight\"}"
        ),
        0.0
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("newsletter_queue_oldest_due_seconds{queue=\"outbox\"}")),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "newsletter_queue_rows{queue=\"deliveries\",state=\"due\"}"
        ),
        0.0
    );
}

async fn the_sample_dashboard_asks_only_for_metrics_there_are(backend: Backend) {
    // Something of everything: a sign-up, a person added by staff, an issue sending (no
    // worker takes its copies), a message that came back.
    let app = without_worker(backend).await;
    app.sign_up("someone@example.org").await;
    let token = app.api_token("metrics").await;
    app.add_confirmed(&token, "member@example.org").await;
    let issue = app
        .create_issue(
            &token,
            serde_json::json!({"subject": "Autumn", "body_markdown": "Hello"}),
        )
        .await;
    let scheduled = app
        .api(
            reqwest::Method::POST,
            &format!("/api/issues/{}/schedule", issue["id"].as_str().unwrap()),
            &token,
        )
        .json(&serde_json::json!({"send_at": "now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.status(), 200);
    let raw = "From: someone@example.net\r\nTo: bounces@news.example.org\r\nSubject: Hello\r\nMessage-ID: <hello@example.net>\r\n\r\nJust saying hello.\r\n";
    let out = ingest(&app.db.url, BOUNCES, raw).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the issue is sending", || async {
        scrape(&app).await.contains("newsletter_issue_copies{")
    })
    .await;
    let text = scrape(&app).await;

    let dashboard = include_str!("../../docs/grafana-dashboard.json");
    let mut asked = 0;
    for (at, _) in dashboard.match_indices("newsletter_") {
        let name: String = dashboard[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let family = ["_bucket", "_count", "_sum", "_total"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "the dashboard asks for {name}, which /metrics does not have:\n{text}"
        );
        asked += 1;
    }
    assert!(asked >= 10, "{asked}");
}
