//! Lists: admins add them; the public ones are offered at sign-up, where one
//! confirmation confirms every list chosen; an issue goes to one list, its link leaves
//! that list only (or every list, from the page); staff pages count per list.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, staff::StaffSession};

on_both_backends!(
    someone_subscribes_to_two_lists_with_one_confirmation_and_leaves_one,
    leave_everything_leaves_every_list_and_says_which_issue,
    a_private_list_is_not_offered_and_cannot_be_chosen,
    admins_add_and_rename_lists,
    subscriber_pages_counts_and_exports_are_per_list,
    erasing_someone_on_two_lists_records_it_on_both,
);

/// An admin, with "Stroud News" (public) and "Board papers" (private) added.
async fn two_more_lists(app: &TestApp) -> StaffSession {
    let admin = app.staff("admin@example.org", "admin").await;
    for (name, public) in [("Stroud News", "yes"), ("Board papers", "")] {
        let mut fields = vec![("name", name), ("description", "For people in Stroud.")];
        if !public.is_empty() {
            fields.push(("public", public));
        }
        let added = app.staff_post(&admin, "/admin/lists", &fields).await;
        assert_eq!(added.status(), StatusCode::SEE_OTHER, "{name}");
    }
    admin
}

/// both@'s subscriptions: (list, status).
async fn statuses(app: &TestApp) -> Vec<(String, String)> {
    let db = app.db.inspect().await;
    let rows = db
        .texts(
            "SELECT l.slug || ':' || sub.status FROM subscriptions sub
             JOIN lists l ON l.id = sub.list_id
             JOIN subscribers s ON s.id = sub.subscriber_id
             WHERE s.email = 'both@example.org' ORDER BY l.slug",
        )
        .await;
    rows.into_iter()
        .map(|row| {
            let row = row.unwrap();
            let (list, status) = row.split_once(':').unwrap();
            (list.to_owned(), status.to_owned())
        })
        .collect()
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Signs both@ up to both public lists and confirms through the one mail.
async fn subscribed_to_both(app: &TestApp) {
    let signed = app
        .sign_up_with(
            "both@example.org",
            &[
                ("choosing", "yes"),
                ("lists", "in-partnership"),
                ("lists", "stroud-news"),
            ],
        )
        .await;
    assert_eq!(signed.status(), StatusCode::OK);
    let mail = app
        .smtp()
        .wait_for_mail_to(
            "both@example.org",
            "Confirm your subscription to In Partnership and Stroud News",
        )
        .await;
    let confirmed = app.confirm(&mail.confirmation_token()).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let page = confirmed.text().await.unwrap();
    assert!(page.contains("In Partnership and Stroud News"), "{page}");
}

async fn send_to(app: &TestApp, token: &str, list: &str, subject: &str) -> String {
    let issue = app
        .create_issue(
            token,
            json!({"subject": subject, "body_markdown": "## News\n\nFrom [us](https://example.org/).", "list": list}),
        )
        .await;
    let id = issue["id"].as_str().unwrap().to_owned();
    app.send_now_and_wait(token, &id).await;
    id
}

async fn someone_subscribes_to_two_lists_with_one_confirmation_and_leaves_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_more_lists(&app).await;
    let form = app.get("/").await.text().await.unwrap();
    assert!(
        form.contains(r#"name="lists" value="in-partnership" checked"#),
        "{form}"
    );
    assert!(form.contains(r#"name="lists" value="stroud-news""#));
    assert!(
        !form.contains("board-papers"),
        "a private list is not offered"
    );

    subscribed_to_both(&app).await;
    assert_eq!(
        app.smtp()
            .with_subject("Confirm your subscription to In Partnership and Stroud News")
            .len(),
        1,
        "one mail asks about both"
    );
    assert_eq!(
        statuses(&app).await,
        pairs(&[
            ("in-partnership", "confirmed"),
            ("stroud-news", "confirmed")
        ])
    );

    let token = app.api_token("ci").await;
    let issue = send_to(&app, &token, "stroud-news", "Stroud this spring").await;
    let mail = app
        .smtp()
        .wait_for_mail_to("both@example.org", "Stroud this spring")
        .await;
    let link = format!("/unsubscribe?token={}", mail.unsubscribe_token());
    let page = app.get(&link).await.text().await.unwrap();
    assert!(page.contains("Unsubscribe from Stroud News"), "{page}");
    assert!(page.contains("You also receive In Partnership"), "{page}");
    let left = app.post_form(&link, &[]).await;
    assert_eq!(left.status(), StatusCode::OK);
    assert_eq!(
        statuses(&app).await,
        pairs(&[
            ("in-partnership", "confirmed"),
            ("stroud-news", "unsubscribed")
        ])
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts(
            "SELECT l.slug FROM consent_events e JOIN lists l ON l.id = e.list_id
             WHERE e.kind = 'unsubscribe'"
        )
        .await,
        vec![Some("stroud-news".to_owned())]
    );
    assert_eq!(app.stats(&token, &issue).await["unsubscribed"], 1);

    // The next In Partnership issue still reaches them; the next Stroud one does not.
    send_to(&app, &token, "in-partnership", "Winter news").await;
    assert_eq!(app.smtp().with_subject("Winter news").len(), 1);
    let stroud = send_to(&app, &token, "stroud-news", "Stroud in summer").await;
    assert_eq!(app.stats(&token, &stroud).await["recipients"], 0);
}

async fn leave_everything_leaves_every_list_and_says_which_issue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_more_lists(&app).await;
    subscribed_to_both(&app).await;
    let token = app.api_token("ci").await;
    send_to(&app, &token, "in-partnership", "Winter news").await;
    let mail = app
        .smtp()
        .wait_for_mail_to("both@example.org", "Winter news")
        .await;
    let link = format!("/unsubscribe?token={}", mail.unsubscribe_token());
    let left = app.post_form(&link, &[("everything", "yes")]).await;
    assert_eq!(left.status(), StatusCode::OK);
    let page = left.text().await.unwrap();
    assert!(page.contains("You have left every newsletter"), "{page}");
    assert!(page.contains("In Partnership and Stroud News"), "{page}");
    assert_eq!(
        statuses(&app).await,
        pairs(&[
            ("in-partnership", "unsubscribed"),
            ("stroud-news", "unsubscribed")
        ])
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.count(
            "SELECT count(*) FROM consent_events WHERE kind = 'unsubscribe' AND issue_id IS NOT NULL"
        )
        .await,
        2
    );
    // One-click from a mail client never leaves more than the mail's list.
    let again = app.get(&link).await.text().await.unwrap();
    assert!(again.contains("already unsubscribed"), "{again}");
}

async fn a_private_list_is_not_offered_and_cannot_be_chosen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_more_lists(&app).await;
    for lists in [
        vec![("choosing", "yes"), ("lists", "board-papers")],
        vec![("choosing", "yes"), ("lists", "no-such-list")],
        vec![("choosing", "yes")],
    ] {
        let refused = app.sign_up_with("sneaky@example.org", &lists).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{lists:?}"
        );
        let page = refused.text().await.unwrap();
        assert!(page.contains("newsletter"), "{page}");
    }
    let json = app
        .post_json(
            "/subscriptions",
            &json!({"email": "sneaky@example.org", "name": "S", "consent": true, "lists": ["board-papers"]}),
        )
        .await;
    assert_eq!(json.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM outbox").await, 0);
}

async fn admins_add_and_rename_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = two_more_lists(&app).await;
    let taken = app
        .staff_post(&admin, "/admin/lists", &[("name", "Stroud  news!")])
        .await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.text().await.unwrap().contains("already"));
    let nameless = app
        .staff_post(&admin, "/admin/lists", &[("name", " ")])
        .await;
    assert_eq!(nameless.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let renamed = app
        .staff_post(
            &admin,
            "/admin/lists/stroud-news",
            &[("name", "Stroud District News"), ("public", "yes")],
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    let page = app
        .staff_get(&admin, "/admin/lists")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<a href="/admin/lists/stroud-news">Stroud District News</a>"#));
    assert!(page.contains("Private"));
    assert_eq!(
        app.staff_get(&admin, "/admin/lists/nope").await.status(),
        StatusCode::NOT_FOUND
    );
    // The notice after adding names the list from the store, never from the address.
    let added = app
        .staff_get(&admin, "/admin/lists?done=stroud-news")
        .await
        .text()
        .await
        .unwrap();
    assert!(added.contains("The list Stroud District News is added."));
    let echoed = app
        .staff_get(&admin, "/admin/lists?done=Send+money+to+example.org")
        .await
        .text()
        .await
        .unwrap();
    assert!(!echoed.contains("Send money"), "{echoed}");
    // Sign-ups that choose nothing join In Partnership: it cannot be made private.
    let private = app
        .staff_post(
            &admin,
            "/admin/lists/in-partnership",
            &[("name", "In Partnership")],
        )
        .await;
    assert_eq!(private.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(private.text().await.unwrap().contains("so it stays public"));

    let editor = app.staff("editor@example.org", "editor").await;
    let refused = app
        .staff_post(&editor, "/admin/lists", &[("name", "Mine")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM lists").await, 3);
}

async fn subscriber_pages_counts_and_exports_are_per_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = two_more_lists(&app).await;
    subscribed_to_both(&app).await;
    app.confirmed_subscriber("only-ip@example.org").await;

    let stroud = app
        .staff_get(&admin, "/admin/subscribers?list=stroud-news")
        .await
        .text()
        .await
        .unwrap();
    assert!(stroud.contains("both@example.org"));
    assert!(!stroud.contains("only-ip@example.org"));
    let everyone = app
        .staff_get(&admin, "/admin/subscribers")
        .await
        .text()
        .await
        .unwrap();
    assert!(everyone.contains("only-ip@example.org"));

    let csv = app
        .staff_get(&admin, "/admin/subscribers/export.csv?list=stroud-news")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("both@example.org"));

    let dashboard = app
        .staff_get(&admin, "/admin?list=stroud-news")
        .await
        .text()
        .await
        .unwrap();
    assert!(dashboard.contains("Dashboard: Stroud News"));
    let lists = app
        .staff_get(&admin, "/admin/lists")
        .await
        .text()
        .await
        .unwrap();
    assert!(lists.contains("Board papers"));
    assert_eq!(
        app.staff_get(&admin, "/admin/subscribers?list=nope")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A person's page names their lists, and its ledger which list each event was.
    let db = app.db.inspect().await;
    let id = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "both@example.org",
        )
        .await;
    let person = app
        .staff_get(&admin, &format!("/admin/subscribers/{id}?list=stroud-news"))
        .await
        .text()
        .await
        .unwrap();
    assert!(person.contains("Status on Stroud News"), "{person}");
    assert!(
        person.contains("<td>Stroud News</td><td>confirm</td>"),
        "{person}"
    );
}

async fn erasing_someone_on_two_lists_records_it_on_both(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = two_more_lists(&app).await;
    subscribed_to_both(&app).await;
    let db = app.db.inspect().await;
    let id = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "both@example.org",
        )
        .await;
    // Erased from the Stroud News page: the ledger says so on both lists.
    let erased = app
        .staff_post(
            &admin,
            &format!("/admin/subscribers/{id}/erase?list=stroud-news"),
            &[],
        )
        .await;
    assert_eq!(erased.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        db.texts(
            "SELECT l.slug FROM consent_events e JOIN lists l ON l.id = e.list_id
             WHERE e.kind = 'erase' AND e.method = 'admin' ORDER BY l.slug"
        )
        .await,
        vec![Some("in-partnership".into()), Some("stroud-news".into())]
    );
}
