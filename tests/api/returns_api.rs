//! The staff API for what comes back: the bounces it read, the messages kept for a
//! person, and the suppression list (search, add, import, lift), every change recorded
//! with the token that made it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend,
    returns::{BOUNCES, app_with_bounces, dsn, ingest},
};

on_both_backends!(staff_read_the_bounces_and_keep_the_suppression_list,);

async fn staff_read_the_bounces_and_keep_the_suppression_list(backend: Backend) {
    let app = app_with_bounces(backend, |_| {}).await;
    app.confirmed_subscriber("gone@example.org").await;
    let token = app.api_token("comms").await;
    app.send_issue(&token, "Winter news").await;
    let copy = app
        .smtp()
        .wait_for_subject("Winter news", 1)
        .await
        .remove(0);
    let out = ingest(
        &app.db.url,
        BOUNCES,
        &dsn(&copy, "5.1.1", "550 5.1.1 no such user"),
    )
    .await;
    assert!(out.status.success());
    let odd = "From: x@example.net\r\nSubject: ?\r\n\r\nhello\r\n";
    assert!(ingest(&app.db.url, BOUNCES, odd).await.status.success());

    let get = |path: &str| {
        let request = app.api(Method::GET, path, &token);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let post = |path: &str, body: Value| {
        let request = app.api(Method::POST, path, &token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    let (status, bounces) = get("/api/bounces").await;
    assert_eq!(status, StatusCode::OK);
    let messages = bounces["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{bounces}");
    assert_eq!(messages[0]["kind"], "hard");
    assert_eq!(messages[0]["outcome"], "ended");
    assert_eq!(messages[0]["status"], "5.1.1");
    assert_eq!(messages[0]["email"], "gone@example.org");
    let (_, unrecognised) = get("/api/bounces?show=unrecognised").await;
    assert_eq!(unrecognised["messages"][0]["kind"], "unknown");
    assert_eq!(
        get("/api/bounces?show=all").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let (_, listed) = get("/api/suppressions?search=GONE@example.org").await;
    assert_eq!(
        listed["total"], 1,
        "found by address, whatever its case: {listed}"
    );
    assert_eq!(listed["entries"][0]["reason"], "bounce");
    assert_eq!(listed["entries"][0]["email"], "gone@example.org");
    assert_eq!(
        get("/api/suppressions?search=nobody@example.org").await.1["total"],
        0
    );

    let (status, added) = post(
        "/api/suppressions",
        json!({"email": "old@example.org", "note": "asked by phone"}),
    )
    .await;
    assert_eq!(
        (status, &added),
        (StatusCode::CREATED, &json!({"added": true}))
    );
    let (status, again) = post("/api/suppressions", json!({"email": "Old@Example.org"})).await;
    assert_eq!((status, &again), (StatusCode::OK, &json!({"added": false})));
    let (status, bad) = post("/api/suppressions", json!({"email": "not an address"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    let csv = "Email Address,Reason\njo@example.org,hard\nnonsense,hard\nold@example.org,hard\n";
    let (status, imported) = post("/api/suppressions/import", json!({"csv": csv})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(imported["added"], 1);
    assert_eq!(imported["already_listed"], 1);
    assert_eq!(imported["refused"][0]["line"], 3);
    let (status, _) = post("/api/suppressions/import", json!({"csv": "name\nJo\n"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(get("/api/suppressions").await.1["total"], 3);

    let (status, lifted) = post(
        "/api/suppressions/lift",
        json!({"address": "old@example.org", "note": "new mailbox"}),
    )
    .await;
    assert_eq!(
        (status, &lifted),
        (StatusCode::OK, &json!({"lifted": true}))
    );
    let (status, _) = post(
        "/api/suppressions/lift",
        json!({"address": "old@example.org"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT change || ' ' || reason || ' by ' || changed_by || ' ' || coalesce(note, '') FROM suppression_changes ORDER BY changed_at").await,
        [
            "added bounce by pipe ",
            "added manual by API token \u{201c}comms\u{201d} ",
            "added import by API token \u{201c}comms\u{201d} ",
            "lifted manual by API token \u{201c}comms\u{201d} new mailbox",
        ]
        .map(|s| Some(s.to_owned()))
    );
}
