//! The preference page: reached from a mail's link, it shows and changes nothing on a
//! GET; its POSTs change a person's details and lists (each change in the ledger).
//! A fresh link mailed on request also downloads what we hold about them, and erases it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use newsletter::{keys::KeyRing, tokens::ManageToken};

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, TestApp};

on_both_backends!(
    a_locality_changed_from_a_mail_link_counts_for_the_next_issue,
    lists_are_joined_and_left_from_the_page,
    a_person_downloads_what_we_hold_about_them_and_asks_for_erasure,
    a_page_left_open_undoes_nothing_done_since,
    bad_input_changes_nothing,
    the_link_is_mailed_to_a_subscriber_who_asks_and_the_answer_is_the_same_for_anyone,
);

/// Confirms `email` (in the Forest of Dean) and returns the preference link from their
/// welcome mail.
async fn subscriber_with_link(app: &TestApp, email: &str) -> String {
    app.confirmed_subscriber_with(email, &[("locality", "forest-of-dean")])
        .await;
    let welcome = app
        .smtp()
        .wait_for_mail_to(email, "Welcome to In Partnership")
        .await;
    page_link(&welcome.decoded())
}

/// The preference page's link in a mail's text, as a path.
fn page_link(text: &str) -> String {
    let (_, rest) = text
        .split_once("/preferences?token=")
        .expect("the mail links to the preference page");
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("/preferences?token={token}")
}

/// Asks for a fresh link from the page at `link`, and returns the one mailed.
async fn fresh_link(app: &TestApp, link: &str, email: &str) -> String {
    let asked = app
        .post_form(&link.replace("/preferences?", "/preferences/link?"), &[])
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let asked = asked.text().await.unwrap();
    assert!(asked.contains("We have sent a link to"), "{asked}");
    let mail = app
        .smtp()
        .wait_for_mail_to(email, "Manage your subscription to In Partnership")
        .await;
    page_link(&mail.decoded())
}

async fn ledger(app: &TestApp) -> Vec<Option<String>> {
    app.db
        .inspect()
        .await
        .texts(
            "SELECT kind || '/' || method FROM consent_events
             WHERE method = 'preferences' ORDER BY occurred_at, id",
        )
        .await
}

async fn a_locality_changed_from_a_mail_link_counts_for_the_next_issue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = subscriber_with_link(&app, "moving@example.org").await;

    let page = app.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    assert!(
        page.contains("m\u{2022}\u{2022}\u{2022}@example.org"),
        "{page}"
    );
    assert!(page.contains(r#"value="forest-of-dean" selected"#));
    assert!(page.contains(r#"name="lists" value="in-partnership" checked"#));
    assert!(ledger(&app).await.is_empty(), "a GET changes nothing");

    let saved = app
        .post_form(
            &link,
            &[
                ("name", "Jo Moving"),
                ("organisation", ""),
                ("locality", "stroud"),
                ("lists", "in-partnership"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let page = saved.text().await.unwrap();
    assert!(page.contains("Saved."), "{page}");
    assert!(page.contains(r#"value="stroud" selected"#));
    assert_eq!(ledger(&app).await, vec![Some("details/preferences".into())]);

    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({
                "subject": "Stroud news",
                "body_markdown": "## Stroud\n\nNews for [Stroud](https://example.org/).",
                "segment": [{"field": "locality", "operator": "in", "value": ["stroud"]}],
            }),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    app.send_now_and_wait(&token, id).await;
    let mail = app
        .smtp()
        .wait_for_mail_to("moving@example.org", "Stroud news")
        .await;
    // The issue's own footer links to the page, with the copy's token.
    let from_issue = format!("/preferences?token={}", mail.unsubscribe_token());
    assert!(
        mail.decoded().contains(&from_issue[1..]),
        "the issue links to the page"
    );
    let page = app.get(&from_issue).await.text().await.unwrap();
    assert!(page.contains(r#"value="stroud" selected"#), "{page}");
    assert_eq!(app.stats(&token, id).await["recipients"], 1);
}

async fn lists_are_joined_and_left_from_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let added = app
        .staff_post(
            &admin,
            "/admin/lists",
            &[("name", "Stroud News"), ("public", "yes")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let link = subscriber_with_link(&app, "choosy@example.org").await;
    let details = [
        ("name", "Jo Bloggs"),
        ("organisation", "Stroud Community Hub"),
        ("locality", "forest-of-dean"),
    ];

    // Both lists ticked: Stroud News is joined, with the consent sentence shown.
    let mut both = details.to_vec();
    both.extend([
        ("shown", "in-partnership"),
        ("lists", "in-partnership"),
        ("lists", "stroud-news"),
    ]);
    assert_eq!(app.post_form(&link, &both).await.status(), StatusCode::OK);
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE status = 'confirmed'")
            .await,
        2
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM consent_events
             WHERE kind = 'confirm' AND method = 'preferences' AND wording_version IS NOT NULL"
        )
        .await,
        1
    );
    // Unticking In Partnership leaves it; saving again changes nothing more.
    let mut one = details.to_vec();
    one.extend([
        ("shown", "in-partnership"),
        ("shown", "stroud-news"),
        ("lists", "stroud-news"),
    ]);
    assert_eq!(app.post_form(&link, &one).await.status(), StatusCode::OK);
    assert_eq!(app.post_form(&link, &one).await.status(), StatusCode::OK);
    assert_eq!(
        ledger(&app).await,
        vec![
            Some("confirm/preferences".into()),
            Some("unsubscribe/preferences".into())
        ]
    );
    // The page still works from the link of the list they left, and leaves everything.
    let left = app.post_form(&link, &[("action", "leave-all")]).await;
    assert_eq!(left.status(), StatusCode::OK);
    assert!(
        left.text()
            .await
            .unwrap()
            .contains("You have left every newsletter")
    );
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE status = 'unsubscribed'")
            .await,
        2
    );
    // Ticking one again from the page comes back, recorded as a resubscription.
    let mut back = details.to_vec();
    back.push(("lists", "in-partnership"));
    assert_eq!(app.post_form(&link, &back).await.status(), StatusCode::OK);
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE kind = 'resubscribe'")
            .await,
        1
    );
}

async fn a_person_downloads_what_we_hold_about_them_and_asks_for_erasure(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = subscriber_with_link(&app, "curious@example.org").await;
    // The long-lived link in a mail (perhaps forwarded) neither downloads nor erases.
    let page = app.get(&link).await.text().await.unwrap();
    assert!(page.contains("Email me that link"), "{page}");
    assert!(!page.contains("Download what we hold about you"));
    for action in ["/preferences/data?", "/preferences/erase?"] {
        let refused = app
            .post_form(
                &link.replace("/preferences?", action),
                &[("confirm", "yes")],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{action}");
    }

    let fresh = fresh_link(&app, &link, "curious@example.org").await;
    assert_ne!(fresh, link);
    let page = app.get(&fresh).await.text().await.unwrap();
    assert!(page.contains("Download what we hold about you"), "{page}");
    let download = app
        .post_form(&fresh.replace("/preferences?", "/preferences/data?"), &[])
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"my-newsletter-data.json\""
    );
    assert_eq!(download.headers()["cache-control"], "no-store");
    let data: Value = download.json().await.unwrap();
    assert_eq!(data["person"]["email"], "curious@example.org");
    assert_eq!(data["person"]["locality"], "forest-of-dean");
    assert_eq!(
        data["subscriptions"],
        json!([{"list": "in-partnership", "name": "In Partnership", "status": "confirmed"}])
    );
    let kinds: Vec<&str> = data["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["signup", "confirm"]);
    assert_eq!(ledger(&app).await, vec![Some("export/preferences".into())]);

    // Erasure: only with the box ticked, then as staff erasure does it.
    let erase = fresh.replace("/preferences?", "/preferences/erase?");
    let unticked = app.post_form(&erase, &[]).await;
    assert_eq!(unticked.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unticked.text().await.unwrap().contains("Tick the box"));
    let erased = app.post_form(&erase, &[("confirm", "yes")]).await;
    assert_eq!(erased.status(), StatusCode::OK);
    assert!(
        erased
            .text()
            .await
            .unwrap()
            .contains("Everything is erased")
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM subscribers WHERE email LIKE '%curious%' OR name <> ''")
            .await,
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE status = 'confirmed'")
            .await,
        0
    );
    assert_eq!(
        ledger(&app).await,
        vec![
            Some("export/preferences".into()),
            Some("erase/preferences".into())
        ]
    );
    assert_eq!(app.get(&fresh).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&link).await.status(), StatusCode::NOT_FOUND);
}

async fn a_page_left_open_undoes_nothing_done_since(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = subscriber_with_link(&app, "two-tabs@example.org").await;
    let stale = [
        ("name", "Jo Bloggs"),
        ("shown", "in-partnership"),
        ("lists", "in-partnership"),
    ];
    // They leave in one tab, then save details from the page still open in another.
    let left = app.post_form(&link, &[("action", "leave-all")]).await;
    assert_eq!(left.status(), StatusCode::OK);
    assert_eq!(app.post_form(&link, &stale).await.status(), StatusCode::OK);
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        vec![Some("unsubscribed".to_owned())]
    );
    // A list the mail world ended is not joined from the page.
    db.execute("UPDATE subscriptions SET status = 'bounced'")
        .await;
    let page = app.get(&link).await.text().await.unwrap();
    assert!(page.contains("mail to your address was refused"), "{page}");
    let rejoin = [("name", "Jo Bloggs"), ("lists", "in-partnership")];
    assert_eq!(app.post_form(&link, &rejoin).await.status(), StatusCode::OK);
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        vec![Some("bounced".to_owned())]
    );
}

async fn bad_input_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = subscriber_with_link(&app, "careful@example.org").await;
    for fields in [
        vec![("name", " "), ("lists", "in-partnership")],
        vec![
            ("name", "Jo"),
            ("locality", "mars"),
            ("lists", "in-partnership"),
        ],
        vec![("name", "Jo"), ("lists", "board-papers")],
        vec![("name", "Jo\u{7}"), ("lists", "in-partnership")],
    ] {
        let refused = app.post_form(&link, &fields).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        let body = refused.text().await.unwrap();
        // A control character is turned away before the page (`web::input`).
        assert!(
            body.contains("There is a problem") || body.contains("We could not read that form"),
            "{body}"
        );
    }
    assert!(ledger(&app).await.is_empty());
    for bad in [
        "/preferences?token=garbage",
        "/preferences",
        "/preferences/data?token=garbage",
    ] {
        assert_eq!(app.get(bad).await.status().as_u16() / 100, 4, "{bad}");
        assert_eq!(
            app.post_form(bad, &[("name", "X")]).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // A fresh link that is a day old no longer works, and says why.
    let db = app.db.inspect().await;
    let expired = ManageToken {
        subscriber_id: db
            .id(
                "SELECT id FROM subscribers WHERE email = $1",
                "careful@example.org",
            )
            .await,
        list_id: db
            .id("SELECT id FROM lists WHERE slug = $1", "in-partnership")
            .await,
        expires_at: chrono::Utc::now() - chrono::Duration::minutes(1),
    }
    .sign(&KeyRing::new(SECRET_KEY, &[]));
    let gone = app.get(&format!("/preferences?token={expired}")).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert!(gone.text().await.unwrap().contains("This link has expired"));
    assert_eq!(
        db.texts("SELECT name FROM subscribers").await,
        vec![Some("Jo Bloggs".to_owned())]
    );
}

async fn the_link_is_mailed_to_a_subscriber_who_asks_and_the_answer_is_the_same_for_anyone(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    subscriber_with_link(&app, "forgetful@example.org").await;
    let form = app.get("/preferences/request").await.text().await.unwrap();
    assert!(form.contains("Email me my link"));

    let ask = |email: &'static str| {
        let app = &app;
        async move {
            let token = app.form_token().await;
            app.post_form(
                "/preferences/request",
                &[("email", email), ("form_token", &token)],
            )
            .await
        }
    };
    let known = ask("Forgetful@example.org").await;
    assert_eq!(known.status(), StatusCode::OK);
    let known = known.text().await.unwrap();
    let mail = app
        .smtp()
        .wait_for_mail_to(
            "forgetful@example.org",
            "Manage your subscription to In Partnership",
        )
        .await;
    let page = app.get(&page_link(&mail.decoded())).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Download what we hold about you"), "{page}");

    let unknown = ask("stranger@example.org").await;
    assert_eq!(unknown.status(), StatusCode::OK);
    let unknown = unknown.text().await.unwrap();
    assert_eq!(
        known.replace("Forgetful@example.org", "X"),
        unknown.replace("stranger@example.org", "X"),
        "the same answer whoever the address belongs to"
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'preferences_link'")
            .await,
        1
    );

    let bad = ask("not an address").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let token = app.form_token().await;
    let fields = [
        ("email", "forgetful@example.org"),
        ("form_token", token.as_str()),
    ];
    assert_eq!(
        app.post_form("/preferences/request", &fields)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post_form("/preferences/request", &fields)
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a form token works once"
    );
    let no_token = app
        .post_form(
            "/preferences/request",
            &[("email", "forgetful@example.org")],
        )
        .await;
    assert_eq!(no_token.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // However often they ask, a person gets a few links a day (the answer is the same).
    for _ in 0..3 {
        assert_eq!(ask("forgetful@example.org").await.status(), StatusCode::OK);
    }
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'preferences_link'")
            .await,
        3
    );
}
