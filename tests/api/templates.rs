//! The issue templates, as an admin edits them: what a save must pass (the unsubscribe
//! link in both parts, nothing from outside the template, well-formed HTML), versions
//! and the shipped default, the preview, and that an issue keeps the version it went
//! out with: a copy sent after a change, and the archive page, render as the first did.

use reqwest::{StatusCode, header};

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp,
    smtp::Fault,
    staff::{StaffSession, location},
    wait_until,
};

on_both_backends!(
    a_template_must_pass_its_checks_before_it_is_saved,
    a_saved_template_is_a_new_version_and_the_shipped_one_can_be_restored,
    an_issue_keeps_the_template_it_went_out_with,
    saves_at_the_same_moment_each_get_a_version,
);

async fn saves_at_the_same_moment_each_get_a_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let restores =
        (0..10).map(|_| app.staff_post(&admin, "/admin/templates/standard/restore", &[]));
    for restored in futures_util::future::join_all(restores).await {
        assert_eq!(restored.status(), StatusCode::SEE_OTHER);
    }
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(DISTINCT version) FROM template_versions WHERE name = 'standard'")
            .await,
        11
    );
}

async fn editor_form(app: &TestApp, admin: &StaffSession, name: &str) -> (String, String) {
    let page = app
        .staff_get(admin, &format!("/admin/templates/{name}"))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let field = |id: &str| {
        let start = page.find(&format!("<textarea id=\"{id}\"")).unwrap();
        let start = start + page[start..].find('>').unwrap() + 1;
        let end = start + page[start..].find("</textarea>").unwrap();
        unescape(&page[start..end])
    };
    (field("html"), field("text"))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

async fn save(
    app: &TestApp,
    admin: &StaffSession,
    name: &str,
    html: &str,
    text: &str,
) -> reqwest::Response {
    app.staff_post(
        admin,
        &format!("/admin/templates/{name}"),
        &[("html", html), ("text", text)],
    )
    .await
}

async fn a_template_must_pass_its_checks_before_it_is_saved(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let (html, text) = editor_form(&app, &admin, "standard").await;
    assert!(html.contains("href=\"{{ unsubscribe_url }}\""), "{html}");

    let cases = [
        (
            html.replace(
                "href=\"{{ unsubscribe_url }}\"",
                "href=\"https://example.org\"",
            ),
            text.clone(),
            "The HTML part needs the unsubscribe link",
        ),
        (
            html.clone(),
            text.replace("{{ unsubscribe_url }}", ""),
            "The text part needs the unsubscribe link",
        ),
        (
            html.replace("<body", "{% include \"/etc/passwd\" %}<body"),
            text.clone(),
            "The HTML part does not render",
        ),
        (
            html.replace("</h1>", ""),
            text.clone(),
            "&lt;h1&gt; is not closed",
        ),
        (
            html.replace("{{ subject }}</h1>", "{{ subjcet }}</h1>"),
            text.clone(),
            "undefined",
        ),
    ];
    for (html, text, says) in cases {
        let refused = save(&app, &admin, "standard", &html, &text).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{says}");
        let page = refused.text().await.unwrap();
        assert!(page.contains(says), "{says}: {page}");
        assert!(
            page.contains("<textarea id=\"html\""),
            "the edit is kept to fix"
        );
        let preview = app
            .staff_post(
                &admin,
                "/admin/templates/standard/preview",
                &[("html", &html), ("text", &text)],
            )
            .await;
        assert_eq!(preview.status(), StatusCode::UNPROCESSABLE_ENTITY, "{says}");
    }
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM template_versions WHERE name = 'standard'")
            .await,
        1
    );
    assert_eq!(
        app.staff_get(&admin, "/admin/templates/fancy")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let editor = app.staff("editor@example.org", "editor").await;
    assert_eq!(
        app.staff_get(&editor, "/admin/templates/standard")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

async fn a_saved_template_is_a_new_version_and_the_shipped_one_can_be_restored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let list = app
        .staff_get(&admin, "/admin/templates")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("<a href=\"/admin/templates/announcement\">announcement</a>"));
    assert!(list.contains("1 (as shipped)"));

    let (html, text) = editor_form(&app, &admin, "announcement").await;
    let changed = html.replace("Announcement, {{ date }}", "News flash, {{ date }}");
    let preview = app
        .staff_post(
            &admin,
            "/admin/templates/announcement/preview",
            &[("html", &changed), ("text", &text)],
        )
        .await;
    assert_eq!(preview.status(), StatusCode::OK);
    assert!(
        preview.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'self'")
    );
    assert!(preview.text().await.unwrap().contains("News flash, "));

    let saved = save(&app, &admin, "announcement", &changed, &text).await;
    assert_eq!(location(&saved), "/admin/templates/announcement?done=saved");
    let shown = app
        .staff_get(&admin, "/admin/templates/announcement/preview")
        .await;
    assert!(shown.text().await.unwrap().contains("News flash, "));
    let page = app
        .staff_get(&admin, "/admin/templates/announcement")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Version 2."), "{page}");

    let restored = app
        .staff_post(&admin, "/admin/templates/announcement/restore", &[])
        .await;
    assert_eq!(
        location(&restored),
        "/admin/templates/announcement?done=restored"
    );
    let (html, _) = editor_form(&app, &admin, "announcement").await;
    assert!(html.contains("Announcement, {{ date }}"));
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM template_versions WHERE name = 'announcement'")
            .await,
        3
    );
}

async fn an_issue_keeps_the_template_it_went_out_with(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    for who in ["a", "b"] {
        app.confirmed_subscriber(&format!("{who}@example.org"))
            .await;
    }
    let (html, text) = editor_form(&app, &admin, "standard").await;
    let first = html.replace("<h1 ", "<p>Edition one</p><h1 ");
    assert_eq!(
        save(&app, &admin, "standard", &first, &text).await.status(),
        StatusCode::SEE_OTHER
    );

    // b's server turns the copy away for now; a's goes.
    app.smtp()
        .fail_recipient("b@example.org", Fault::Reply(451, "4.3.0 Try again later"));
    let token = app.api_token("ci").await;
    let id = app.send_issue(&token, "Kept as sent").await;
    let copy = app
        .smtp()
        .wait_for_mail_to("a@example.org", "Kept as sent")
        .await;
    assert!(copy.decoded().contains("<p>Edition one</p>"));
    let issue = format!("/admin/issues/{id}");
    wait_until("b's copy has been tried", || async {
        app.smtp().rcpt_attempts() >= 2
    })
    .await;
    app.staff_post(&admin, &format!("{issue}/pause"), &[]).await;

    let second = html.replace("<h1 ", "<p>Edition two</p><h1 ");
    assert_eq!(
        save(&app, &admin, "standard", &second, &text)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.smtp()
        .fail_recipient_times("b@example.org", Fault::HangUp, 0);
    app.staff_post(&admin, &format!("{issue}/resume"), &[])
        .await;
    let later = app
        .smtp()
        .wait_for_mail_to("b@example.org", "Kept as sent")
        .await;
    assert!(
        later.decoded().contains("<p>Edition one</p>"),
        "the copy sent later is as the first"
    );
    assert!(!later.decoded().contains("Edition two"));

    wait_until("the issue is sent", || async {
        app.issue_status(&token, &id).await == "sent"
    })
    .await;
    let archive = app.get("/archive").await.text().await.unwrap();
    let start = archive.find("/archive/kept-as-sent").unwrap();
    let slug = &archive[start..start + archive[start..].find('"').unwrap()];
    let page = app.get(slug).await.text().await.unwrap();
    assert!(page.contains("<p>Edition one</p>") && !page.contains("Edition two"));

    // A new issue takes the new version.
    let next = app.send_issue(&token, "The next one").await;
    let copy = app
        .smtp()
        .wait_for_mail_to("a@example.org", "The next one")
        .await;
    assert!(copy.decoded().contains("<p>Edition two</p>"), "{next}");
}
