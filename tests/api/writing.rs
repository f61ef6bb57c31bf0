//! Writing an issue: common Markdown mistakes are caught with the fix, and what is
//! written reads well in mail clients (bare addresses linked, images sized for the
//! column, tables styled).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(common_markdown_mistakes_are_caught_and_the_rest_reads_well);

async fn common_markdown_mistakes_are_caught_and_the_rest_reads_well(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let create = |body: &'static str| {
        app.api(Method::POST, "/api/issues", &token)
            .json(&json!({"subject": "Spring", "body_markdown": body}))
            .send()
    };
    for (body, said) in [
        (
            "Visit [our site](www.example.org).",
            "“www.example.org” (write it as https://www.example.org)",
        ),
        ("![Our logo](logo.png)", "“logo.png”"),
        (
            "![A photo](http://example.org/a.jpg)",
            "images must come from https://",
        ),
    ] {
        let refused = create(body).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let answer: Value = refused.json().await.unwrap();
        assert_eq!(answer["errors"][0]["field"], "body_markdown");
        assert!(answer["error"].as_str().unwrap().contains(said), "{answer}");
    }

    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Spring", "body_markdown":
                "News at https://example.org/news.\n\n![The hub](https://example.org/hub.jpg)\n\n\
                 | Day | Place |\n| --- | --- |\n| Monday | Stroud |\n\n> A quote\n\nAfter."}),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    let preview = |format: &'static str| {
        app.api(
            Method::GET,
            &format!("/api/issues/{id}/preview?format={format}"),
            &token,
        )
        .send()
    };
    let html = preview("html").await.unwrap().text().await.unwrap();
    assert!(
        html.contains("<a href=\"https://example.org/news\""),
        "{html}"
    );
    assert!(html.contains("width=\"552\""), "sized for Outlook: {html}");
    assert!(html.contains("<td style=\"border:1px solid"), "{html}");
    let text = preview("text").await.unwrap().text().await.unwrap();
    assert!(text.contains("> A quote\n\nAfter."), "{text:?}");
}
