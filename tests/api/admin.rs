//! The staff web UI's front door: accounts made from the shell, sign-in and out,
//! sessions in cookies, CSRF on every form, and a limit on guessing.

use reqwest::{Method, StatusCode, header};

use crate::on_both_backends;
use crate::support::{
    Backend, SmtpServer, TestApp,
    staff::{PASSWORD, csrf_in, location, set_cookie},
};

on_both_backends!(
    create_user_refuses_short_passwords_and_duplicates,
    staff_sign_in_see_the_dashboard_and_sign_out,
    every_staff_page_sends_strangers_to_sign_in,
    forms_without_the_csrf_token_are_refused,
    repeated_wrong_passwords_make_sign_in_wait,
    parallel_wrong_passwords_are_checked_five_times_and_others_still_sign_in,
    cookies_are_secure_when_the_site_is_https,
    an_expired_session_ends_and_is_cleared_away,
);

/// A staff member who can sign in with `PASSWORD`.
async fn staff(app: &TestApp, email: &str) {
    let output = app.create_user(email, "editor", PASSWORD).await;
    assert!(
        output.status.success(),
        "create-user failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Signs in and returns the session cookie's value.
async fn session(app: &TestApp, email: &str) -> String {
    let response = app.sign_in(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    set_cookie(&response, "nl_session")
        .expect("a session cookie")
        .0
}

fn with_session(
    app: &TestApp,
    method: Method,
    path: &str,
    session: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, format!("{}{path}", app.address))
        .header(header::COOKIE, format!("nl_session={session}"))
}

async fn create_user_refuses_short_passwords_and_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let short = app
        .create_user("editor@example.org", "editor", "too short")
        .await;
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));

    staff(&app, "Editor@Example.org").await;
    let again = app
        .create_user("editor@example.org", "admin", PASSWORD)
        .await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already a staff user"));

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT email || ' ' || role FROM staff_users")
            .await,
        vec![Some("editor@example.org editor".to_owned())]
    );
    let hash = db
        .texts("SELECT password_hash FROM staff_users")
        .await
        .remove(0)
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

async fn staff_sign_in_see_the_dashboard_and_sign_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    staff(&app, "editor@example.org").await;
    app.confirmed_subscriber("reader@example.org").await;

    let wrong = app
        .sign_in("editor@example.org", "not the passphrase")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "nl_session").is_none());
    assert!(wrong.text().await.unwrap().contains("is not right"));
    let unknown = app.sign_in("nobody@example.org", PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let signed_in = app.sign_in("EDITOR@example.org ", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/admin");
    let (session, cookie) = set_cookie(&signed_in, "nl_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "the test site is http: {cookie}"
    );
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM staff_sessions").await, 1);
    assert!(
        !db.dump().await.contains(&session),
        "the session cookie is not what the database keeps"
    );

    let dashboard = with_session(&app, Method::GET, "/admin", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    assert_eq!(dashboard.headers()[header::CACHE_CONTROL], "no-store");
    let html = dashboard.text().await.unwrap();
    assert!(html.contains("<h1>Dashboard</h1>"));
    assert!(html.contains("editor@example.org"));
    assert!(html.contains("Confirmed"), "{html}");
    // This week's bar in the chart counts the one sign-up.
    assert!(html.contains("<svg"));
    let this_week = html
        .rsplit("sign-ups in the week of")
        .nth(1)
        .and_then(|before| before.rsplit('>').next())
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(this_week, "1", "{html}");

    let csrf = csrf_in(&html);
    let out = with_session(&app, Method::POST, "/admin/logout", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/admin/login");
    let after = with_session(&app, Method::GET, "/admin", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session ended");
    assert_eq!(db.count("SELECT count(*) FROM staff_sessions").await, 0);
}

async fn every_staff_page_sends_strangers_to_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let paths = newsletter::web::admin::protected_paths();
    assert!(paths.contains(&"/admin"));
    for path in paths {
        let path = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        for method in [Method::GET, Method::POST] {
            for cookie in ["", "nl_session=made-up"] {
                let response = app
                    .client
                    .request(method.clone(), format!("{}{path}", app.address))
                    .header(header::COOKIE, cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    (response.status(), location(&response)),
                    (StatusCode::SEE_OTHER, "/admin/login"),
                    "{method} {path} with {cookie:?}"
                );
            }
        }
    }
}

async fn forms_without_the_csrf_token_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    staff(&app, "editor@example.org").await;
    let session = session(&app, "editor@example.org").await;
    let other = session_token_of_someone_else(&app).await;

    for form in [
        vec![],
        vec![("csrf", "forged")],
        vec![("csrf", other.as_str())],
    ] {
        let response = with_session(&app, Method::POST, "/admin/logout", &session)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form:?}");
    }
    // Still signed in: nothing changed.
    let dashboard = with_session(&app, Method::GET, "/admin", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);

    // The sign-in form has its own token, tied to its nonce cookie.
    let no_nonce = app
        .post_form(
            "/admin/login",
            &[
                ("email", "editor@example.org"),
                ("password", PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(no_nonce.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&no_nonce, "nl_session").is_none());
}

/// The CSRF token of another person's session: valid, but not for this one.
async fn session_token_of_someone_else(app: &TestApp) -> String {
    staff(app, "other@example.org").await;
    let session = session(app, "other@example.org").await;
    let html = with_session(app, Method::GET, "/admin", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csrf_in(&html)
}

async fn repeated_wrong_passwords_make_sign_in_wait(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    staff(&app, "editor@example.org").await;
    for _ in 0..5 {
        let wrong = app
            .sign_in("editor@example.org", "a wrong guess at it")
            .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let right = app.sign_in("editor@example.org", PASSWORD).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&right, "nl_session").is_none());
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("Too many failed attempts")
    );
}

async fn parallel_wrong_passwords_are_checked_five_times_and_others_still_sign_in(
    backend: Backend,
) {
    let app = TestApp::spawn_with(
        backend,
        |s| s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()],
        "smtp://127.0.0.1:9",
    )
    .await;
    staff(&app, "editor@example.org").await;
    let guesses = (0..64).map(|_| {
        app.sign_in_from(
            "editor@example.org",
            "a wrong guess at it",
            Some("198.51.100.9"),
        )
    });
    let answers = futures_util::future::join_all(guesses).await;
    let count = |status| answers.iter().filter(|a| a.status() == status).count();
    assert_eq!(
        count(StatusCode::UNAUTHORIZED),
        5,
        "checked against the password"
    );
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 59);
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM login_failures WHERE key LIKE 'pair:%'")
            .await,
        5
    );
    // The guesser is held up; the person, from their own network, is not.
    let guesser = app
        .sign_in_from("editor@example.org", PASSWORD, Some("198.51.100.9"))
        .await;
    assert_eq!(guesser.status(), StatusCode::TOO_MANY_REQUESTS);
    let person = app
        .sign_in_from("editor@example.org", PASSWORD, Some("203.0.113.20"))
        .await;
    assert_eq!(person.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&person, "nl_session").is_some());
}

async fn cookies_are_secure_when_the_site_is_https(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |s| s.public_url = "https://news.example.org".into(),
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    staff(&app, "editor@example.org").await;
    let response = app.sign_in("editor@example.org", PASSWORD).await;
    let (_, cookie) = set_cookie(&response, "nl_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

async fn an_expired_session_ends_and_is_cleared_away(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    staff(&app, "editor@example.org").await;
    let old = session(&app, "editor@example.org").await;
    let db = app.db.inspect().await;
    db.execute(match backend {
        Backend::Sqlite => "UPDATE staff_sessions SET expires_at = 0",
        Backend::Postgres(_) => "UPDATE staff_sessions SET expires_at = '2000-01-01T00:00:00Z'",
    })
    .await;

    let refused = with_session(&app, Method::GET, "/admin", &old)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (refused.status(), location(&refused)),
        (StatusCode::SEE_OTHER, "/admin/login")
    );
    session(&app, "editor@example.org").await;
    assert_eq!(
        db.count("SELECT count(*) FROM staff_sessions").await,
        1,
        "only the new session is left"
    );
}
