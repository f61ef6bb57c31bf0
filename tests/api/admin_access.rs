//! Staff accounts and API tokens in the staff UI: admins only.

use reqwest::{Method, StatusCode};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, staff::location};

on_both_backends!(
    editors_are_refused_the_admin_pages,
    every_admin_page_refuses_editors,
    admins_remove_staff_but_not_themselves,
    admins_make_and_revoke_api_tokens,
);

async fn editors_are_refused_the_admin_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let editor = app.staff("editor@example.org", "editor").await;
    for path in [
        "/admin/users",
        "/admin/tokens",
        "/admin/subscribers/export.csv",
    ] {
        assert_eq!(
            app.staff_get(&editor, path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let made = app
        .staff_post(&editor, "/admin/tokens", &[("name", "sneaky")])
        .await;
    assert_eq!(made.status(), StatusCode::FORBIDDEN);
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM api_tokens").await, 0);
    let dashboard = app.staff_get(&editor, "/admin").await.text().await.unwrap();
    assert!(
        !dashboard.contains(r#"href="/admin/users""#),
        "editors are not shown the link"
    );
}

/// Every path of the router's admin list, asked for by a signed-in editor with a good
/// CSRF token, is refused before its handler runs.
async fn every_admin_page_refuses_editors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let editor = app.staff("editor@example.org", "editor").await;
    let paths = newsletter::web::admin::admin_paths();
    assert!(paths.contains(&"/admin/users"));
    assert!(!paths.contains(&"/admin/issues"), "editors write issues");
    for path in paths {
        let path = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let got = app.staff_get(&editor, &path).await.status();
        let posted = app.staff_post(&editor, &path, &[]).await.status();
        assert_eq!(
            (got, posted),
            (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
            "{path}"
        );
    }
}

async fn admins_remove_staff_but_not_themselves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let editor = app.staff("editor@example.org", "editor").await;
    let html = app
        .staff_get(&admin, "/admin/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("admin@example.org (you)"));
    assert!(html.contains("editor@example.org"));

    let db = app.db.inspect().await;
    let editor_id = db
        .id(
            "SELECT id FROM staff_users WHERE email = $1",
            "editor@example.org",
        )
        .await;
    let admin_id = db
        .id(
            "SELECT id FROM staff_users WHERE email = $1",
            "admin@example.org",
        )
        .await;
    let yourself = app
        .staff_post(&admin, &format!("/admin/users/{admin_id}/remove"), &[])
        .await;
    assert_eq!(yourself.status(), StatusCode::CONFLICT);

    let removed = app
        .staff_post(&admin, &format!("/admin/users/{editor_id}/remove"), &[])
        .await;
    assert_eq!(location(&removed), "/admin/users");
    let after = app.staff_get(&editor, "/admin").await;
    assert_eq!(
        (after.status(), location(&after)),
        (StatusCode::SEE_OTHER, "/admin/login"),
        "their session ended with their account"
    );
    assert_eq!(db.count("SELECT count(*) FROM staff_users").await, 1);
}

async fn admins_make_and_revoke_api_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;

    let blank = app
        .staff_post(&admin, "/admin/tokens", &[("name", " ")])
        .await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let made = app
        .staff_post(&admin, "/admin/tokens", &[("name", "Comms laptop")])
        .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    assert_eq!(made.headers()["cache-control"], "no-store");
    let html = made.text().await.unwrap();
    let at = html.find("<code>nl_").expect("the new token is shown") + "<code>".len();
    let token = html[at..at + html[at..].find('<').unwrap()].to_owned();
    let listed = app
        .api(Method::GET, "/api/issues", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);

    let again = app
        .staff_post(&admin, "/admin/tokens", &[("name", "Comms laptop")])
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let page = app
        .staff_get(&admin, "/admin/tokens")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Comms laptop"));
    assert!(!page.contains(&token), "a token is shown only once");

    let revoked = app
        .staff_post(&admin, "/admin/tokens/revoke", &[("name", "Comms laptop")])
        .await;
    assert_eq!(location(&revoked), "/admin/tokens");
    let refused = app
        .api(Method::GET, "/api/issues", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
