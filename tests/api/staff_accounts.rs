//! Staff look after their own accounts: an admin invites someone by email and they
//! choose their password; anyone resets a forgotten password by mail; two-factor
//! sign-in (RFC 6238) with recovery codes, which an admin may require.

use newsletter::{keys::KeyRing, staff::two_factor};
use reqwest::{StatusCode, header};

use crate::on_both_backends;
use crate::support::staff::{PASSWORD, StaffSession, csrf_in, location, set_cookie};
use crate::support::{Backend, SECRET_KEY, TestApp};

on_both_backends!(
    an_invited_editor_sets_a_password_and_signs_in_with_two_factor,
    a_forgotten_password_is_reset,
    an_admin_requires_two_factor_of_everyone,
    staff_change_their_own_password,
    links_die_with_the_account_and_with_a_new_password,
    replacing_two_factor_or_its_codes_needs_the_password,
);

const NEW_PASSWORD: &str = "three words remembered well";

/// The link (as a path) in the mail to `to` with this subject.
async fn link_in_mail(app: &TestApp, to: &str, subject: &str, path: &str) -> String {
    link_in(&app.smtp().wait_for_mail_to(to, subject).await, path)
}

/// The link to `path` in a mail.
fn link_in(mail: &crate::support::smtp::ReceivedMail, path: &str) -> String {
    let text = mail.decoded();
    let start = text.find(path).expect("the mail has the link");
    text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect()
}

/// A session from a sign-in answer (the redirect to the dashboard).
async fn session_of(app: &TestApp, signed_in: &reqwest::Response) -> StaffSession {
    assert_eq!(location(signed_in), "/admin");
    let session = set_cookie(signed_in, "nl_session")
        .expect("a session cookie")
        .0;
    let mut staff = StaffSession {
        session,
        csrf: String::new(),
    };
    let dashboard = app.staff_get(&staff, "/admin").await;
    assert_eq!(dashboard.status(), StatusCode::OK);
    staff.csrf = csrf_in(&dashboard.text().await.unwrap());
    staff
}

/// The second step of a sign-in whose first answer set `nl_pending`.
async fn second_step(app: &TestApp, first: &reqwest::Response, code: &str) -> reqwest::Response {
    assert_eq!(location(first), "/admin/login/two-factor");
    let (pending, _) = set_cookie(first, "nl_pending").expect("a pending cookie");
    let cookie = format!("nl_pending={pending}");
    let page = app
        .client
        .get(format!("{}/admin/login/two-factor", app.address))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_in(&page.text().await.unwrap());
    app.client
        .post(format!("{}/admin/login/two-factor", app.address))
        .header(header::COOKIE, &cookie)
        .form(&[("code", code), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

/// The value of hidden field `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).expect("the field") + marker.len();
    html[start..].chars().take_while(|c| *c != '"').collect()
}

/// The secret a setup page carries (sealed to `user_id`), opened as the app would.
fn secret_of(page: &str, user_id: uuid::Uuid) -> Vec<u8> {
    use base64::Engine;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(hidden(page, "sealed"))
        .unwrap();
    KeyRing::new(SECRET_KEY, &[])
        .open_two_factor(&sealed, user_id.as_bytes())
        .unwrap()
}

fn code_now(secret: &[u8], offset: i64) -> String {
    two_factor::code_at(
        secret,
        two_factor::step_of(chrono::Utc::now().timestamp()) + offset,
    )
}

async fn user_id(app: &TestApp, email: &str) -> uuid::Uuid {
    app.db
        .inspect()
        .await
        .id("SELECT id FROM staff_users WHERE email = $1", email)
        .await
}

/// Sets up two-factor sign-in from the account page; returns the secret and the
/// recovery codes shown.
async fn set_up_two_factor(
    app: &TestApp,
    staff: &StaffSession,
    email: &str,
) -> (Vec<u8>, Vec<String>) {
    let page = app.staff_get(staff, "/admin/account/two-factor").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("<svg"), "a QR code");
    let secret = secret_of(&page, user_id(app, email).await);
    let sealed = hidden(&page, "sealed");
    let wrong = app
        .staff_post(
            staff,
            "/admin/account/two-factor",
            &[("sealed", &sealed), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let done = app
        .staff_post(
            staff,
            "/admin/account/two-factor",
            &[("sealed", &sealed), ("code", &code_now(&secret, 0))],
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    let done = done.text().await.unwrap();
    let codes: Vec<String> = done
        .split("<li><code>")
        .skip(1)
        .map(|part| part.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{done}");
    (secret, codes)
}

async fn an_invited_editor_sets_a_password_and_signs_in_with_two_factor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let invited = app
        .staff_post(
            &admin,
            "/admin/users/invite",
            &[("email", " New.Editor@Example.org "), ("role", "editor")],
        )
        .await;
    assert_eq!(invited.status(), StatusCode::OK);
    let page = invited.text().await.unwrap();
    assert!(
        page.contains("Invitation sent to new.editor@example.org"),
        "{page}"
    );
    assert!(page.contains("Invitations not yet taken up"));
    // An address with an account already is not invited.
    let again = app
        .staff_post(
            &admin,
            "/admin/users/invite",
            &[("email", "admin@example.org"), ("role", "admin")],
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let link = link_in_mail(
        &app,
        "new.editor@example.org",
        "You are invited to help send In Partnership",
        "/admin/invitation?token=",
    )
    .await;
    let db = app.db.inspect().await;
    let token = link.split("token=").nth(1).unwrap();
    assert!(
        !db.dump().await.contains(token),
        "the database keeps no usable token"
    );
    assert_eq!(app.get(&link).await.status(), StatusCode::OK);
    let short = app
        .post_form(&link, &[("password", "short"), ("confirm", "short")])
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unlike = app
        .post_form(
            &link,
            &[("password", NEW_PASSWORD), ("confirm", "something else")],
        )
        .await;
    assert_eq!(unlike.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let made = app
        .post_form(
            &link,
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(
        made.status(),
        StatusCode::SEE_OTHER,
        "choosing it signs them in"
    );
    assert_eq!(location(&made), "/admin");
    assert!(
        set_cookie(&made, "nl_session").is_some(),
        "a session starts"
    );
    // The link works once.
    assert_eq!(app.get(&link).await.status(), StatusCode::NOT_FOUND);
    let twice = app
        .post_form(
            &link,
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(twice.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        db.texts("SELECT role FROM staff_users WHERE email = 'new.editor@example.org'")
            .await,
        vec![Some("editor".to_owned())]
    );

    // Signed in, they turn on two-factor sign-in.
    let first = app.sign_in("new.editor@example.org", NEW_PASSWORD).await;
    let editor = session_of(&app, &first).await;
    let (secret, codes) = set_up_two_factor(&app, &editor, "new.editor@example.org").await;
    assert!(
        !db.dump().await.contains(&two_factor::base32(&secret)),
        "the secret is kept sealed"
    );

    // Now the password alone does not sign in.
    let first = app.sign_in("new.editor@example.org", NEW_PASSWORD).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&first, "nl_session").is_none());
    let wrong = second_step(&app, &first, "123456").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // The setup's code was used; the next step's works, once.
    let code = code_now(&secret, 1);
    let signed_in = second_step(&app, &first, &code).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    session_of(&app, &signed_in).await;
    let replayed = second_step(&app, &first, &code).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let said = replayed.text().await.unwrap();
    assert!(
        said.contains("has been used already"),
        "why it is refused: {said}"
    );

    // A recovery code works once, in place of a code.
    let first = app.sign_in("new.editor@example.org", NEW_PASSWORD).await;
    let recovered = second_step(&app, &first, &codes[3].to_uppercase()).await;
    assert_eq!(recovered.status(), StatusCode::SEE_OTHER);
    let editor = session_of(&app, &recovered).await;
    let reused = second_step(&app, &first, &codes[3]).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    let account = app.staff_get(&editor, "/admin/account").await;
    assert!(
        account
            .text()
            .await
            .unwrap()
            .contains("You have 9 unused recovery codes")
    );
    // Five wrong codes, and the second step waits.
    let first = app.sign_in("new.editor@example.org", NEW_PASSWORD).await;
    for _ in 0..5 {
        second_step(&app, &first, "000000").await;
    }
    let throttled = second_step(&app, &first, &code_now(&secret, 0)).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn a_forgotten_password_is_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let old = app.staff("forgetful@example.org", "editor").await;
    let page = app.get("/admin/login").await.text().await.unwrap();
    assert!(page.contains(r#"href="/admin/forgot""#));
    let ask = |email: &'static str| {
        let app = &app;
        async move { app.post_form("/admin/forgot", &[("email", email)]).await }
    };
    let known = ask("Forgetful@example.org").await;
    assert_eq!(known.status(), StatusCode::OK);
    let known = known.text().await.unwrap();
    let unknown = ask("stranger@example.org").await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(
        known.replace("forgetful@example.org", "X"),
        unknown
            .text()
            .await
            .unwrap()
            .replace("stranger@example.org", "X"),
        "the same answer whoever the address belongs to"
    );
    assert_eq!(
        ask("not an address").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let link = link_in_mail(
        &app,
        "forgetful@example.org",
        "Reset your password for In Partnership",
        "/admin/reset?token=",
    )
    .await;
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'staff_reset'")
            .await,
        1,
        "nothing is sent to an address without an account"
    );
    let reset = app
        .post_form(
            &link,
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&reset), "/admin/login?reset=done");
    assert_eq!(app.get(&link).await.status(), StatusCode::NOT_FOUND);
    // The session from before has ended; the old password no longer works.
    assert_eq!(
        app.staff_get(&old, "/admin").await.status(),
        StatusCode::SEE_OTHER
    );
    let refused = app.sign_in("forgetful@example.org", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let signed_in = app.sign_in("forgetful@example.org", NEW_PASSWORD).await;
    session_of(&app, &signed_in).await;
    // However often they ask, a few links an hour.
    for _ in 0..4 {
        ask("forgetful@example.org").await;
    }
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'staff_reset'")
            .await,
        3
    );
}

async fn an_admin_requires_two_factor_of_everyone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let editor = app.staff("editor@example.org", "editor").await;
    let refused = app
        .staff_post(&editor, "/admin/users/two-factor", &[("required", "yes")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let required = app
        .staff_post(&admin, "/admin/users/two-factor", &[("required", "yes")])
        .await;
    assert_eq!(required.status(), StatusCode::SEE_OTHER);

    // The editor's next sign-in sets it up before the session starts.
    let first = app.sign_in("editor@example.org", PASSWORD).await;
    assert_eq!(location(&first), "/admin/login/two-factor/setup");
    assert!(set_cookie(&first, "nl_session").is_none());
    let (pending, _) = set_cookie(&first, "nl_pending").unwrap();
    let cookie = format!("nl_pending={pending}");
    let page = app
        .client
        .get(format!("{}/admin/login/two-factor/setup", app.address))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("An admin requires two-factor sign-in"));
    let secret = secret_of(&page, user_id(&app, "editor@example.org").await);
    let done = app
        .client
        .post(format!("{}/admin/login/two-factor/setup", app.address))
        .header(header::COOKIE, &cookie)
        .form(&[
            ("sealed", hidden(&page, "sealed").as_str()),
            ("csrf", csrf_in(&page).as_str()),
            ("code", &code_now(&secret, 0)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(set_cookie(&done, "nl_session").is_some());
    assert!(done.text().await.unwrap().contains("Your recovery codes"));
    // A forged pending cookie is no way in.
    let forged = app
        .client
        .get(format!("{}/admin/login/two-factor", app.address))
        .header(
            header::COOKIE,
            format!("nl_pending={}.9999999999999.AAAA", uuid::Uuid::now_v7()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // While it is required, it cannot be turned off.
    let signed_in = app.sign_in("editor@example.org", PASSWORD).await;
    let signed_in = second_step(&app, &signed_in, &code_now(&secret, 1)).await;
    let editor = session_of(&app, &signed_in).await;
    let off = app
        .staff_post(
            &editor,
            "/admin/account/two-factor/off",
            &[("current", PASSWORD)],
        )
        .await;
    assert_eq!(off.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn staff_change_their_own_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let here = app.staff("jo@example.org", "editor").await;
    let elsewhere = session_of(&app, &app.sign_in("jo@example.org", PASSWORD).await).await;
    let wrong = app
        .staff_post(
            &here,
            "/admin/account/password",
            &[
                ("current", "not my password"),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let changed = app
        .staff_post(
            &here,
            "/admin/account/password",
            &[
                ("current", PASSWORD),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.staff_get(&here, "/admin").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.staff_get(&elsewhere, "/admin").await.status(),
        StatusCode::SEE_OTHER,
        "the other session has ended"
    );
    let signed_in = app.sign_in("jo@example.org", NEW_PASSWORD).await;
    session_of(&app, &signed_in).await;
}

/// Every link in the mails with `subject`, in the order they came.
async fn links_in_mails(app: &TestApp, subject: &str, count: usize, path: &str) -> Vec<String> {
    app.smtp()
        .wait_for_subject(subject, count)
        .await
        .iter()
        .map(|mail| link_in(mail, path))
        .collect()
}

async fn links_die_with_the_account_and_with_a_new_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    // Invited twice; the first link makes the account.
    for _ in 0..2 {
        let invited = app
            .staff_post(
                &admin,
                "/admin/users/invite",
                &[("email", "temp@example.org"), ("role", "editor")],
            )
            .await;
        assert_eq!(invited.status(), StatusCode::OK);
    }
    let subject = "You are invited to help send In Partnership";
    let invitations = links_in_mails(&app, subject, 2, "/admin/invitation?token=").await;
    let password = [("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)];
    let made = app.post_form(&invitations[0], &password).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    // Removed, they cannot make it again with the other invitation.
    let id = user_id(&app, "temp@example.org").await;
    let removed = app
        .staff_post(&admin, &format!("/admin/users/{id}/remove"), &[])
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.post_form(&invitations[1], &password).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.db
            .inspect()
            .await
            .count("SELECT count(*) FROM staff_users WHERE email = 'temp@example.org'")
            .await,
        0
    );

    // Two reset links: once one sets a new password, the other works no more.
    app.staff("forgetful@example.org", "editor").await;
    for _ in 0..2 {
        let asked = app
            .post_form("/admin/forgot", &[("email", "forgetful@example.org")])
            .await;
        assert_eq!(asked.status(), StatusCode::OK);
    }
    let resets = links_in_mails(
        &app,
        "Reset your password for In Partnership",
        2,
        "/admin/reset?token=",
    )
    .await;
    assert_eq!(
        app.post_form(&resets[1], &password).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.post_form(&resets[0], &password).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn replacing_two_factor_or_its_codes_needs_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("careful@example.org", "editor").await;
    set_up_two_factor(&app, &staff, "careful@example.org").await;
    // A session left open cannot make new codes, or move sign-in to another phone.
    let codes = app
        .staff_post(
            &staff,
            "/admin/account/recovery-codes",
            &[("current", "guess")],
        )
        .await;
    assert_eq!(codes.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = app.staff_get(&staff, "/admin/account/two-factor").await;
    let page = page.text().await.unwrap();
    assert!(
        page.contains(r#"name="current""#),
        "the password is asked for"
    );
    let secret = secret_of(&page, user_id(&app, "careful@example.org").await);
    let sealed = hidden(&page, "sealed");
    let code = code_now(&secret, 1);
    let moved = app
        .staff_post(
            &staff,
            "/admin/account/two-factor",
            &[("sealed", &sealed), ("code", &code), ("current", "guess")],
        )
        .await;
    assert_eq!(moved.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        moved
            .text()
            .await
            .unwrap()
            .contains("not your current password")
    );
    let moved = app
        .staff_post(
            &staff,
            "/admin/account/two-factor",
            &[("sealed", &sealed), ("code", &code), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let codes = app
        .staff_post(
            &staff,
            "/admin/account/recovery-codes",
            &[("current", PASSWORD)],
        )
        .await;
    assert_eq!(codes.status(), StatusCode::OK);
    assert!(codes.text().await.unwrap().contains("Your recovery codes"));
}
