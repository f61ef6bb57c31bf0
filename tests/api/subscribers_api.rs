//! The subscribers API: find people by list, search, status and segment; read what we
//! hold about one; add one (an import of one, with a source note); change their details
//! and lists; erase them; and the lists, with a list's people as CSV out and in.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    staff_find_add_change_and_erase_people_through_the_api,
    lists_exports_and_imports_through_the_api,
);

/// Sends a request with the token; answers the status and the body as JSON (or text).
fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> impl std::future::Future<Output = (StatusCode, Value)> + use<> {
    let mut request = app.api(method, path, token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    async move {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn kinds(person: &Value) -> Vec<(String, String)> {
    person["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["method"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn staff_find_add_change_and_erase_people_through_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber_with(
        "stroud@example.org",
        &[("locality", "stroud"), ("name", "Sam Stroud")],
    )
    .await;
    app.confirmed_subscriber_with("forest@example.org", &[("locality", "forest-of-dean")])
        .await;
    let token = app.api_token("crm").await;
    let get = |path: String| call(&app, &token, Method::GET, &path, None);
    let stroud = json!([{"field": "locality", "operator": "in", "value": ["stroud"]}]).to_string();

    let (status, all) = get("/api/subscribers".into()).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 2);
    assert_eq!(
        all["subscribers"][0]["email"], "forest@example.org",
        "by address"
    );
    let (_, found) = get("/api/subscribers?search=sam%20STROUD".into()).await;
    assert_eq!(
        found["total"], 1,
        "a search finds names too, whatever the case: {found}"
    );
    let (_, segment) = get(format!("/api/subscribers?segment={}", encoded(&stroud))).await;
    assert_eq!(segment["total"], 1, "{segment}");
    assert_eq!(segment["subscribers"][0]["email"], "stroud@example.org");
    assert_eq!(
        get("/api/subscribers?status=pending".into()).await.1["total"],
        0
    );
    let (_, paged) = get("/api/subscribers?per_page=1&page=2".into()).await;
    assert_eq!(
        paged["subscribers"][0]["email"], "stroud@example.org",
        "{paged}"
    );
    for (path, expected) in [
        (
            "/api/subscribers?status=gone",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/subscribers?per_page=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/subscribers?segment=%5B%7B%22field%22%3A%22shoe%22%7D%5D",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/subscribers?segment=%5B%7B%22field%22%3A%22locality%22%2C%22operator%22%3A%22in%22%2C%22value%22%3A%5B%5D%7D%5D",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/subscribers?list=nope", StatusCode::NOT_FOUND),
        ("/api/subscribers/not-a-uuid", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = get(path.into()).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }

    // Adding someone is an import of one: the lawful basis is required.
    let post = |body: Value| call(&app, &token, Method::POST, "/api/subscribers", Some(body));
    let (status, refused) = post(json!({
        "email": "not an address", "name": "", "source_note": "met", "mode": "confirmed"
    }))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "name", "source_note"], "{refused}");
    let note = "Signed up on paper at the VCSE Assembly, 2026";
    let (status, added) = post(json!({
        "email": "New@Example.org", "name": "Nia New", "locality": "cotswold",
        "source_note": note, "mode": "confirmed"
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["subscriptions"][0]["status"], "confirmed");
    assert_eq!(added["subscriptions"][0]["list"], "in-partnership");
    assert_eq!(added["locality"], "cotswold");
    assert_eq!(added["ledger"][0]["kind"], "import");
    assert_eq!(added["ledger"][0]["import_note"], note);
    let (status, again) = post(json!({
        "email": "new@example.org", "name": "Nia New", "source_note": note, "mode": "confirmed"
    }))
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "already subscribed: unchanged: {again}"
    );
    assert_eq!(again["id"], added["id"]);
    let (status, invited) = post(json!({
        "email": "maybe@example.org", "name": "May Be", "source_note": note, "mode": "invite"
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["subscriptions"][0]["status"], "pending");
    app.smtp()
        .wait_for_mail_to(
            "maybe@example.org",
            "Confirm your subscription to In Partnership",
        )
        .await;

    // Their details and lists change, each change in the ledger; the segment follows.
    let id = segment["subscribers"][0]["id"].as_str().unwrap().to_owned();
    let patch = |body: Value| {
        call(
            &app,
            &token,
            Method::PATCH,
            &format!("/api/subscribers/{id}"),
            Some(body),
        )
    };
    let (status, bad) = patch(json!({"locality": "bristol", "leave": ["nope"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2, "{bad}");
    let (status, moved) =
        patch(json!({"locality": "forest-of-dean", "organisation": "GVCS"})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["locality"], "forest-of-dean");
    assert_eq!(moved["organisation"], "GVCS");
    assert_eq!(moved["name"], "Sam Stroud", "a field not given stays");
    assert!(
        kinds(&moved).contains(&("details".into(), "api".into())),
        "{moved}"
    );
    assert_eq!(
        get(format!("/api/subscribers?segment={}", encoded(&stroud)))
            .await
            .1["total"],
        0
    );
    let (_, left) = patch(json!({"leave": ["in-partnership"]})).await;
    assert_eq!(left["subscriptions"][0]["status"], "unsubscribed", "{left}");
    assert!(
        kinds(&left).contains(&("unsubscribe".into(), "api".into())),
        "{left}"
    );
    let (status, back) = post(json!({
        "email": "stroud@example.org", "name": "Sam Stroud", "source_note": note, "mode": "confirmed"
    }))
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only they can come back: {back}"
    );

    // Erasure: the person is gone; the anonymised ledger stays, with the erasure.
    let path = format!("/api/subscribers/{id}");
    assert_eq!(
        call(&app, &token, Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(path.clone()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&app, &token, Method::DELETE, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM subscribers WHERE email LIKE 'stroud@%'")
            .await,
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE kind = 'erase' AND method = 'api'")
            .await,
        1
    );
    // Their address is kept only as a keyed hash on the suppression list: no import
    // brings them back (only they can, by signing up), and no export lists the place.
    let (status, refused) = post(json!({
        "email": "stroud@example.org", "name": "Sam Stroud", "source_note": note, "mode": "confirmed"
    }))
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("suppression list"),
        "{refused}"
    );
    let export = app
        .api(Method::GET, "/api/subscribers/export", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        export.lines().count(),
        4,
        "the header and three people: {export}"
    );
    assert!(!export.contains("erased"), "{export}");
    let (_, everyone) = get("/api/subscribers".into()).await;
    let emails: Vec<&str> = everyone["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails.len(),
        4,
        "the erased place stays in the counts: {everyone}"
    );
    assert!(!emails.contains(&"stroud@example.org"), "{everyone}");
}

async fn lists_exports_and_imports_through_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("crm").await;
    let send =
        |method: Method, path: &str, body: Option<Value>| call(&app, &token, method, path, body);

    let (status, list) = send(
        Method::POST,
        "/api/lists",
        Some(
            json!({"name": "Locality news: Stroud", "description": "Once a month", "public": true}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    assert_eq!(list["slug"], "locality-news-stroud");
    let (status, taken) = send(
        Method::POST,
        "/api/lists",
        Some(json!({"name": "Locality News: Stroud"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    let (status, refused) = send(
        Method::PATCH,
        "/api/lists/in-partnership",
        Some(json!({"public": false})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the default list stays public: {refused}"
    );
    let (status, changed) = send(
        Method::PATCH,
        "/api/lists/locality-news-stroud",
        Some(json!({"public": false})),
    )
    .await;
    assert_eq!(
        (status, &changed["public"]),
        (StatusCode::OK, &json!(false)),
        "{changed}"
    );
    assert_eq!(changed["name"], "Locality news: Stroud");
    assert_eq!(
        send(Method::PATCH, "/api/lists/nope", Some(json!({})))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let csv = "email,name,locality\njo@example.org,Jo,stroud\nnot-an-address,Someone,\nJO@example.org,Jo again,\nal@example.org,Al,Bristol\n";
    let import = |body: Value| send(Method::POST, "/api/subscribers/import", Some(body));
    let (status, report) = import(json!({"csv": csv, "list": "locality-news-stroud", "source_note": "short", "mode": "confirmed"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{report}");
    let (status, report) = import(json!({"csv": "address\n", "list": "locality-news-stroud", "source_note": "Our partners' contacts, 2026", "mode": "confirmed"})).await;
    assert_eq!(
        (status, &report["errors"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("csv")),
        "{report}"
    );
    let (status, report) = import(json!({
        "csv": csv, "list": "locality-news-stroud", "file_name": "partners.csv",
        "source_note": "Our partners' contacts, 2026", "mode": "confirmed"
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (&report["added"], &report["refused"]),
        (&json!(2), &json!(2)),
        "{report}"
    );
    let lines: Vec<&Value> = report["report"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["line"])
        .collect();
    assert_eq!(lines, [&json!(3), &json!(4), &json!(5)], "{report}");
    assert_eq!(report["report"][2]["status"], "added", "{report}");
    assert!(
        report["report"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("not one of the localities"),
        "a locality left out is said: {report}"
    );

    let (_, lists) = send(Method::GET, "/api/lists", None).await;
    assert_eq!(lists[1]["slug"], "locality-news-stroud", "{lists}");
    assert_eq!(lists[1]["counts"]["confirmed"], 2);
    assert_eq!(
        lists[0]["counts"]["confirmed"], 0,
        "the other list has nobody"
    );

    let response = app
        .api(
            Method::GET,
            "/api/subscribers/export?list=locality-news-stroud",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "email,name,organisation,locality,status,signed_up");
    assert!(
        rows[1].starts_with("al@example.org,Al,,,confirmed,"),
        "{text}"
    );
    assert!(
        rows[2].starts_with("jo@example.org,Jo,,stroud,confirmed,"),
        "{text}"
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(
        send(Method::GET, "/api/subscribers/export?list=nope", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
