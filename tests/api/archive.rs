//! The archive: sent issues as web pages and an Atom feed; drafts stay private.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, wait_until};

on_both_backends!(sent_issues_are_in_the_archive_and_the_feed);

async fn sent_issues_are_in_the_archive_and_the_feed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("reader@example.org").await;
    let token = app.api_token("ci").await;
    let sent = app.send_issue(&token, "Winter & spring news").await;
    wait_until("the issue is sent", || async {
        app.issue_status(&token, &sent).await == "sent"
    })
    .await;
    let draft = app
        .create_issue(
            &token,
            json!({"subject": "Secret draft", "body_markdown": "Not yet."}),
        )
        .await;
    assert_eq!(draft["status"], "draft");

    let archive = app.get("/archive").await;
    assert_eq!(archive.status(), StatusCode::OK);
    let archive = archive.text().await.unwrap();
    assert!(archive.contains("Winter &amp; spring news"));
    assert!(!archive.contains("Secret draft"));
    let slug = archive
        .split("href=\"/archive/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the issue")
        .to_owned();
    assert!(slug.starts_with("winter-spring-news-"), "{slug}");

    let page = app.get(&format!("/archive/{slug}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    // The issue's images (https, as in the mail) are let in; nothing else is.
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("img-src 'self' https:;"), "{policy}");
    let page = page.text().await.unwrap();
    assert!(
        page.contains(">Winter &amp; spring news</h1>"),
        "the mail as sent"
    );
    assert!(
        !page.contains("View in your browser"),
        "it is in the browser"
    );
    assert!(page.contains("<h2 style="), "the body, rendered");
    assert!(page.contains("<html lang=\"en-GB\">"));
    assert_eq!(
        app.get("/archive/no-such-issue").await.status(),
        StatusCode::NOT_FOUND
    );

    let feed = app.get("/archive/feed.xml").await;
    assert_eq!(feed.status(), StatusCode::OK);
    assert_eq!(
        feed.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let feed = feed.text().await.unwrap();
    assert!(feed.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    assert!(feed.contains("<title>Winter &amp; spring news</title>"));
    assert!(feed.contains(&format!("href=\"http://newsletter.test/archive/{slug}\"")));
    assert!(feed.contains(&format!("<id>urn:uuid:{sent}</id>")));
    assert!(
        feed.contains("<content type=\"html\">&lt;h2 style="),
        "escaped HTML"
    );
    assert!(!feed.contains("Secret draft"));
}
