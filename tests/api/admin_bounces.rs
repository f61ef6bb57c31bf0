//! The staff pages for what comes back: the Bounces page (recent bounces, what is kept
//! for a person with its raw text for admins, the suppression list with search, add,
//! import and lift), the issue's report, and the dashboard's rates.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{
    Backend,
    returns::{BOUNCES, app_with_bounces, dsn, ingest},
    staff::location,
};

on_both_backends!(staff_see_what_came_back_and_keep_the_suppression_list,);

async fn staff_see_what_came_back_and_keep_the_suppression_list(backend: Backend) {
    let app = app_with_bounces(backend, |_| {}).await;
    app.confirmed_subscriber("gone@example.org").await;
    let token = app.api_token("ci").await;
    let issue = app.send_issue(&token, "Winter news").await;
    let copy = app
        .smtp()
        .wait_for_subject("Winter news", 1)
        .await
        .remove(0);
    let bounce = dsn(&copy, "5.1.1", "550 5.1.1 mailbox unavailable here");
    assert!(ingest(&app.db.url, BOUNCES, &bounce).await.status.success());
    let odd = "From: x@example.net\r\nSubject: Advertising?\r\n\r\nCan we advertise?\r\n";
    assert!(ingest(&app.db.url, BOUNCES, odd).await.status.success());

    let admin = app.staff("admin@example.org", "admin").await;
    let editor = app.staff("editor@example.org", "editor").await;
    let page = app.staff_get(&editor, "/admin/bounces").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("550 5.1.1 mailbox unavailable here"),
        "the recent bounce"
    );
    assert!(
        html.contains("gone@example.org"),
        "its address, on the list"
    );
    assert!(html.contains("Bounced"));
    assert!(html.contains("Kept for a person to look at"));
    assert!(!html.contains("/raw\""), "editors do not read raw messages");

    let html = app
        .staff_get(&admin, "/admin/bounces")
        .await
        .text()
        .await
        .unwrap();
    let raw_link = html
        .split("href=\"")
        .find(|part| part.starts_with("/admin/bounces/") && part.contains("/raw"))
        .and_then(|part| part.split('"').next())
        .expect("admins get a link to the raw message")
        .to_owned();
    let raw = app.staff_get(&admin, &raw_link).await;
    assert_eq!(raw.status(), StatusCode::OK);
    assert!(
        raw.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(raw.text().await.unwrap().contains("Can we advertise?"));
    assert_eq!(
        app.staff_get(&editor, &raw_link).await.status(),
        StatusCode::FORBIDDEN
    );

    // Add one, find it, lift it; import a list.
    let added = app
        .staff_post(
            &editor,
            "/admin/suppressions",
            &[("email", "old@example.org"), ("note", "asked")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&added), "/admin/bounces?done=added");
    let found = app
        .staff_get(&editor, "/admin/bounces?q=OLD@example.org")
        .await
        .text()
        .await
        .unwrap();
    assert!(found.contains("1 entry for"), "{found}");
    let key = found
        .split("name=\"key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let bad = app
        .staff_post(&editor, "/admin/suppressions", &[("email", "nonsense")])
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let lifted = app
        .staff_post(&editor, "/admin/suppressions/lift", &[("key", &key)])
        .await;
    assert_eq!(location(&lifted), "/admin/bounces?done=lifted");
    let imported = app
        .staff_upload(
            &editor,
            "/admin/suppressions/import",
            &[],
            Some((
                "cleaned.csv",
                b"Email Address\nann@example.org\nbob@example.org\n",
            )),
            true,
        )
        .await;
    assert_eq!(imported.status(), StatusCode::OK);
    assert!(
        imported
            .text()
            .await
            .unwrap()
            .contains("Imported: 2 added, 0 on the list already.")
    );

    // The issue's report gives each bounce with its evidence; the dashboard the rate.
    let report = app
        .staff_get(&editor, &format!("/admin/issues/{issue}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(report.contains("Bounced for good"), "{report}");
    assert!(report.contains("550 5.1.1 mailbox unavailable here"));
    let dashboard = app.staff_get(&editor, "/admin").await.text().await.unwrap();
    assert!(
        dashboard.contains("100.0%"),
        "one bounce of one copy sent: {dashboard}"
    );
}
