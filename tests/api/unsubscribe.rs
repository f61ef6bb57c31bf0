//! Leaving: the link's page changes nothing, the button and RFC 8058's one-click POST
//! unsubscribe (once), the event names the issue, and a changed link is refused.

use newsletter::{keys::KeyRing, tokens::UnsubscribeToken};
use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, TestApp};

on_both_backends!(
    the_link_shows_a_button_and_the_button_unsubscribes,
    one_click_unsubscribes_once_without_a_redirect,
    a_changed_or_missing_link_is_refused,
);

/// A confirmed subscriber, an issue, and the link that issue would carry for them.
async fn subscriber_with_link(app: &TestApp) -> (String, String) {
    app.confirmed_subscriber("leaving@example.org").await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Winter", "body_markdown": "News."}),
        )
        .await;
    let issue_id = issue["id"].as_str().unwrap().to_owned();
    let db = app.db.inspect().await;
    let link = UnsubscribeToken {
        subscriber_id: db
            .id(
                "SELECT id FROM subscribers WHERE email = $1",
                "leaving@example.org",
            )
            .await,
        list_id: db
            .id("SELECT id FROM lists WHERE slug = $1", "in-partnership")
            .await,
        issue_id: Some(issue_id.parse().unwrap()),
    }
    .sign(&KeyRing::new(SECRET_KEY, &[]));
    (format!("/unsubscribe?token={link}"), issue_id)
}

async fn status(app: &TestApp) -> Vec<Option<String>> {
    app.db
        .inspect()
        .await
        .texts("SELECT status FROM subscriptions")
        .await
}

async fn the_link_shows_a_button_and_the_button_unsubscribes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (link, issue_id) = subscriber_with_link(&app).await;

    let page = app.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    assert!(page.contains("<button type=\"submit\">Unsubscribe from In Partnership</button>"));
    assert!(page.contains(&format!("action=\"{link}\"")));
    // Which address is leaving, partly masked.
    assert!(
        page.contains("<strong>l\u{2022}\u{2022}\u{2022}@example.org</strong>"),
        "{page}"
    );
    assert!(!page.contains("leaving@example.org"));
    assert_eq!(
        status(&app).await,
        [Some("confirmed".to_owned())],
        "GET changed nothing"
    );

    let response = app
        .client
        .post(format!("{}{link}", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You have unsubscribed")
    );
    assert_eq!(status(&app).await, [Some("unsubscribed".to_owned())]);
    // Opened again: already unsubscribed, with no button to press again.
    let again = app.get(&link).await.text().await.unwrap();
    assert!(again.contains("You have already unsubscribed"), "{again}");
    assert!(again.contains("sign up again"));
    assert!(!again.contains("<button type=\"submit\">Unsubscribe</button>"));
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT kind || ' ' || method FROM consent_events ORDER BY occurred_at")
            .await,
        [
            Some("signup form".to_owned()),
            Some("confirm link".to_owned()),
            Some("unsubscribe link".to_owned())
        ]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE kind = 'unsubscribe' AND issue_id IS NOT NULL")
            .await,
        1
    );
    let attributed = db
        .texts("SELECT i.subject FROM consent_events e JOIN issues i ON i.id = e.issue_id")
        .await;
    assert_eq!(attributed, [Some("Winter".to_owned())], "{issue_id}");
}

async fn one_click_unsubscribes_once_without_a_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (link, _) = subscriber_with_link(&app).await;
    // What a mail client sends for RFC 8058: a form body, no cookies, no page.
    let one_click = || {
        app.client
            .post(format!("{}{link}", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    };

    let first = one_click().await.unwrap();
    let second = one_click().await.unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("location").is_none());
    assert_eq!(second.status(), StatusCode::OK);
    assert!(
        second
            .text()
            .await
            .unwrap()
            .contains("already unsubscribed")
    );
    assert_eq!(status(&app).await, [Some("unsubscribed".to_owned())]);
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT method FROM consent_events WHERE kind = 'unsubscribe'")
            .await,
        [Some("one-click".to_owned())]
    );
}

async fn a_changed_or_missing_link_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (link, _) = subscriber_with_link(&app).await;
    let token = link.split_once("token=").unwrap().1;
    let mut changed = token.to_owned().into_bytes();
    changed[20] = if changed[20] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();

    for bad in [
        format!("/unsubscribe?token={changed}"),
        "/unsubscribe?token=garbage".to_owned(),
        "/unsubscribe".to_owned(),
    ] {
        let page = app.get(&bad).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "GET {bad}");
        assert!(page.text().await.unwrap().contains("does not work"));
        let post = app
            .client
            .post(format!("{}{bad}", app.address))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), StatusCode::BAD_REQUEST, "POST {bad}");
    }
    assert_eq!(status(&app).await, [Some("confirmed".to_owned())]);
}
