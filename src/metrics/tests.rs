use super::*;
use crate::store::metrics::{IssueCopies, QueueState};

fn line<'a>(text: &'a str, starts: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(starts))
}

#[test]
fn what_happened_here_is_counted_by_route_and_outcome() {
    let metrics = Metrics::new();
    metrics.http_request(&Method::POST, "/subscriptions", 303, 0.004);
    metrics.http_request(&Method::POST, "/subscriptions", 303, 0.002);
    metrics.http_request(
        &Method::from_bytes(b"BREW").unwrap(),
        "(no route)",
        404,
        0.001,
    );
    let sent = SendOutcome::Sent {
        reply: "250 ok".into(),
        at: Utc::now(),
    };
    for outcome in [&sent, &sent, &SendOutcome::Suppressed] {
        metrics.copy("deliveries", outcome);
    }
    metrics.relay_answer(RelayResult::Accepted, 0.003);
    let text = metrics.render(&[], None, Utc::now());
    assert_eq!(
        line(
            &text,
            "newsletter_http_requests_total{method=\"POST\",route=\"/subscriptions\",status=\"303\"}"
        ),
        Some(
            "newsletter_http_requests_total{method=\"POST\",route=\"/subscriptions\",status=\"303\"} 2"
        )
    );
    assert!(
        line(
            &text,
            "newsletter_http_requests_total{method=\"other\",route=\"(no route)\",status=\"404\"} 1"
        )
        .is_some(),
        "{text}"
    );
    assert!(line(&text, "newsletter_http_request_duration_seconds_count{method=\"POST\",route=\"/subscriptions\"} 2").is_some(), "{text}");
    assert!(
        line(
            &text,
            "newsletter_copies_total{queue=\"deliveries\",outcome=\"sent\"} 2"
        )
        .is_some(),
        "{text}"
    );
    assert!(
        line(
            &text,
            "newsletter_copies_total{queue=\"deliveries\",outcome=\"suppressed\"} 1"
        )
        .is_some(),
        "{text}"
    );
    assert!(
        line(
            &text,
            "newsletter_smtp_send_duration_seconds_count{result=\"accepted\"} 1"
        )
        .is_some(),
        "{text}"
    );
    // Without the database's answers, it says so, and says nothing it does not know.
    assert!(line(&text, "newsletter_database_up 0").is_some(), "{text}");
    assert!(line(&text, "newsletter_ledger_events").is_none(), "{text}");
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(text.matches("# EOF").count(), 1);
}

#[test]
fn the_database_numbers_are_labelled_and_ages_are_seconds() {
    let now = Utc::now();
    let snapshot = MetricsSnapshot {
        ledger: vec![("signup".into(), "form".into(), 3)],
        returns: vec![("hard".into(), 2)],
        subscriptions: vec![("news".into(), "confirmed".into(), 7)],
        queues: vec![QueueState {
            queue: "deliveries",
            due: 5,
            later: 1,
            in_flight: 8,
            oldest_due: Some(now - chrono::Duration::seconds(90)),
        }],
        issues: vec![IssueCopies {
            number: 4,
            status: "sending".into(),
            copies: vec![("sent".into(), 10), ("queued".into(), 5)],
        }],
    };
    let pools = [PoolUse {
        pool: "main",
        open: 4,
        idle: 1,
        max: 10,
    }];
    let text = Metrics::new().render(&pools, Some(&snapshot), now);
    for expected in [
        "newsletter_database_up 1",
        "newsletter_ledger_events_total{kind=\"signup\",method=\"form\"} 3",
        "newsletter_returns_total{kind=\"hard\"} 2",
        "newsletter_subscriptions{list=\"news\",status=\"confirmed\"} 7",
        "newsletter_queue_rows{queue=\"deliveries\",state=\"due\"} 5",
        "newsletter_queue_rows{queue=\"deliveries\",state=\"in_flight\"} 8",
        "newsletter_queue_oldest_due_seconds{queue=\"deliveries\"} 90",
        "newsletter_issue_copies{issue=\"4\",issue_status=\"sending\",status=\"sent\"} 10",
        "newsletter_db_pool_connections{pool=\"main\",state=\"in_use\"} 3",
        "newsletter_db_pool_connections{pool=\"main\",state=\"max\"} 10",
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "{expected} is not in:\n{text}"
        );
    }
}
