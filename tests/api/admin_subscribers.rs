//! The subscriber pages of the staff UI: finding people, reading their consent
//! ledger, unsubscribing them by hand, and erasure, which only admins may do and
//! which leaves none of their personal data in any table.

use reqwest::{StatusCode, header};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, staff::location};

on_both_backends!(
    staff_search_and_page_through_subscribers,
    a_subscriber_can_be_unsubscribed_by_hand,
    only_admins_erase_and_erasure_leaves_no_personal_data,
    admins_export_everyone_as_csv,
);

async fn page(app: &TestApp, staff: &crate::support::staff::StaffSession, path: &str) -> String {
    let response = app.staff_get(staff, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

async fn staff_search_and_page_through_subscribers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for n in 0..55 {
        let response = app.sign_up(&format!("reader-{n:02}@example.org")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let staff = app.staff("editor@example.org", "editor").await;

    let first = page(&app, &staff, "/admin/subscribers").await;
    assert!(first.contains("1 to 50 of 55."), "{first}");
    assert!(first.contains("reader-00@example.org"));
    assert!(!first.contains("reader-50@example.org"));
    assert!(
        first.contains(
            r#"href="/admin/subscribers?list=in-partnership&amp;q=&amp;page=2" rel="next""#
        )
    );
    let second = page(&app, &staff, "/admin/subscribers?page=2").await;
    assert!(second.contains("51 to 55 of 55."));
    assert!(second.contains("reader-54@example.org"));

    let found = page(&app, &staff, "/admin/subscribers?q=READER-07").await;
    assert!(found.contains("1 to 1 of 1 matching"), "{found}");
    let none = page(&app, &staff, "/admin/subscribers?q=%25").await;
    assert!(
        none.contains("Nobody matches"),
        "a % is looked for, not a wildcard"
    );
    let bad_page = app.staff_get(&staff, "/admin/subscribers?page=many").await;
    assert_eq!(bad_page.status(), StatusCode::OK);

    let db = app.db.inspect().await;
    let id = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "reader-07@example.org",
        )
        .await;
    let detail = page(&app, &staff, &format!("/admin/subscribers/{id}")).await;
    assert!(detail.contains("<h1>reader-07@example.org</h1>"));
    assert!(detail.contains("Stroud Community Hub"));
    // Localities by their names, not the slugs stored.
    assert!(detail.contains("<dd>Stroud</dd>"), "{detail}");
    assert!(first.contains("<td>Stroud</td>") && !first.contains("<td>stroud</td>"));
    assert!(detail.contains("<td>signup</td><td>form</td>"), "{detail}");
    // The consent version opens to the words the person agreed to.
    assert!(
        detail.contains("<details><summary>signup-2026-11</summary>&ldquo;I would like to receive In Partnership"),
        "{detail}"
    );
    for path in [
        "/admin/subscribers/not-an-id".to_owned(),
        format!("/admin/subscribers/{}", uuid::Uuid::now_v7()),
    ] {
        let missing = app.staff_get(&staff, &path).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

async fn a_subscriber_can_be_unsubscribed_by_hand(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("asked@example.org").await;
    let staff = app.staff("editor@example.org", "editor").await;
    let db = app.db.inspect().await;
    let id = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "asked@example.org",
        )
        .await;

    let done = app
        .staff_post(&staff, &format!("/admin/subscribers/{id}/unsubscribe"), &[])
        .await;
    assert_eq!(
        location(&done),
        format!("/admin/subscribers/{id}?done=unsubscribed&list=in-partnership")
    );
    let detail = page(&app, &staff, &format!("/admin/subscribers/{id}")).await;
    assert!(detail.contains("<dt>Status on In Partnership</dt><dd>unsubscribed</dd>"));
    assert!(
        detail.contains("<td>unsubscribe</td><td>admin</td>"),
        "{detail}"
    );
    assert!(!detail.contains("Unsubscribe them"));
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE status = 'unsubscribed'")
            .await,
        1
    );
}

async fn only_admins_erase_and_erasure_leaves_no_personal_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let signed_up = app
        .client
        .post(format!("{}/subscriptions", app.address))
        .header(header::USER_AGENT, "ErasureTestBrowser/1.0")
        .form(&[
            ("email", "erase.me@example.org"),
            ("name", "Erasable Person"),
            ("organisation", "Secret Org Ltd"),
            ("locality", "forest-of-dean"),
            ("consent", "yes"),
            ("form_token", &app.form_token().await),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), StatusCode::OK);
    let mail = app
        .smtp()
        .wait_for_mail_to(
            "erase.me@example.org",
            "Confirm your subscription to In Partnership",
        )
        .await;
    app.confirm(&mail.confirmation_token()).await;
    app.confirmed_subscriber("stays@example.org").await;
    let db = app.db.inspect().await;
    let id = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "erase.me@example.org",
        )
        .await;
    let personal = [
        "erase.me@example.org",
        "Erasable Person",
        "Secret Org Ltd",
        "forest-of-dean",
        "ErasureTestBrowser",
    ];
    let before = db.dump().await;
    for item in personal {
        assert!(
            before.contains(item),
            "{item} should be stored before erasure"
        );
    }

    let editor = app.staff("editor@example.org", "editor").await;
    let detail = page(&app, &editor, &format!("/admin/subscribers/{id}")).await;
    assert!(
        !detail.contains("Erase their personal data"),
        "editors are not offered it"
    );
    let refused = app
        .staff_post(&editor, &format!("/admin/subscribers/{id}/erase"), &[])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(db.dump().await.contains("erase.me@example.org"));

    let admin = app.staff("admin@example.org", "admin").await;
    let erased = app
        .staff_post(&admin, &format!("/admin/subscribers/{id}/erase"), &[])
        .await;
    assert_eq!(
        location(&erased),
        format!("/admin/subscribers/{id}?done=erased&list=in-partnership")
    );

    let after = db.dump().await;
    for item in personal {
        assert!(
            !after.contains(item),
            "{item} is still stored after erasure"
        );
    }
    assert!(
        after.contains("stays@example.org"),
        "only that person is erased"
    );
    // The ledger stays, anonymised: signup, confirm, and the erasure itself.
    let detail = page(&app, &admin, &format!("/admin/subscribers/{id}")).await;
    for kind in ["signup", "confirm", "erase"] {
        assert!(
            detail.contains(&format!("<td>{kind}</td>")),
            "{kind} is in the ledger"
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE status = 'unsubscribed'")
            .await,
        1
    );
}

async fn admins_export_everyone_as_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // More than one page of the export, and a name a spreadsheet would run.
    for n in 0..1_205 {
        let email = format!("reader-{n:04}@example.org");
        let name = if n == 7 {
            "=HYPERLINK(\"x\")"
        } else {
            "Jo, \"Bloggs\""
        };
        let response = app
            .post_form(
                "/subscriptions",
                &[("email", &email), ("name", name), ("consent", "yes")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{email}");
    }
    let editor = app.staff("editor@example.org", "editor").await;
    let refused = app
        .staff_get(&editor, "/admin/subscribers/export.csv")
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let admin = app.staff("admin@example.org", "admin").await;
    let export = app.staff_get(&admin, "/admin/subscribers/export.csv").await;
    assert_eq!(export.status(), StatusCode::OK);
    assert_eq!(
        export.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert!(
        export.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"in-partnership-subscribers-")
    );
    let csv = export.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "email,name,organisation,locality,status,signed_up"
    );
    assert_eq!(lines.len(), 1 + 1_205, "a header and everyone, once");
    assert!(lines[1].starts_with("reader-0000@example.org,\"Jo, \"\"Bloggs\"\"\",,,pending,"));
    assert!(
        lines[8].starts_with("reader-0007@example.org,\"'=HYPERLINK(\"\"x\"\")\""),
        "{}",
        lines[8]
    );
    assert!(lines[1_205].starts_with("reader-1204@example.org,"));

    // The command line gives the same file.
    let cli = crate::support::admin(&app.db.url, &["export-subscribers"]).await;
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(String::from_utf8(cli.stdout).unwrap(), csv);
    assert!(String::from_utf8_lossy(&cli.stderr).contains("Exported 1205 subscribers"));
}
