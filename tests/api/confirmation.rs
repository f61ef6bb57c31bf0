//! Confirming: the link's page changes nothing, the button confirms once, and every
//! kind of bad link gets a clear page that offers to sign up again.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, TestApp, hex};

on_both_backends!(
    opening_the_link_changes_nothing,
    confirming_twice_says_already_confirmed,
    an_expired_link_is_refused_and_offers_to_sign_up,
    a_used_link_does_not_resubscribe,
    unknown_and_garbage_tokens_get_clear_pages,
    the_token_is_not_stored_in_clear,
    a_confirmed_subscriber_is_welcomed_with_a_way_out,
);

async fn pending_token(app: &TestApp, email: &str) -> String {
    app.sign_up(email).await;
    let mails = app.smtp().wait_for(1).await;
    mails
        .iter()
        .find(|m| m.to == [email])
        .expect("no mail for that address")
        .confirmation_token()
}

async fn opening_the_link_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = pending_token(&app, "scanner@example.org").await;

    for _ in 0..3 {
        let page = app
            .get(&format!("/subscriptions/confirm?token={token}"))
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["cache-control"], "no-store");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    }

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        vec![Some("pending".to_owned())]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM confirmation_tokens WHERE used_at IS NULL")
            .await,
        1
    );
    assert_eq!(db.count("SELECT count(*) FROM consent_events").await, 1);
    // The button still works afterwards.
    assert_eq!(app.confirm(&token).await.status(), StatusCode::OK);
}

async fn confirming_twice_says_already_confirmed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = pending_token(&app, "twice@example.org").await;

    let first = app.confirm(&token).await;
    let second = app.confirm(&token).await;

    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.text().await.unwrap().contains("You are subscribed"));
    assert_eq!(second.status(), StatusCode::OK);
    assert!(second.text().await.unwrap().contains("already subscribed"));
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE kind = 'confirm'")
            .await,
        1
    );
}

async fn an_expired_link_is_refused_and_offers_to_sign_up(backend: Backend) {
    let smtp = crate::support::SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |s| s.confirmation_ttl = std::time::Duration::ZERO,
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    let token = pending_token(&app, "late@example.org").await;

    let response = app.confirm(&token).await;

    assert_eq!(response.status(), StatusCode::GONE);
    let page = response.text().await.unwrap();
    assert!(page.contains("This link has expired"));
    assert!(page.contains("href=\"/\""));
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        vec![Some("pending".to_owned())]
    );
}

async fn a_used_link_does_not_resubscribe(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = pending_token(&app, "leaver@example.org").await;
    app.confirm(&token).await;
    // They leave (the unsubscribe link arrives with issues; here, straight in the database).
    let db = app.db.inspect().await;
    db.execute("UPDATE subscriptions SET status = 'unsubscribed'")
        .await;

    let response = app.confirm(&token).await;

    assert_eq!(response.status(), StatusCode::GONE);
    assert!(response.text().await.unwrap().contains("already been used"));
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        vec![Some("unsubscribed".to_owned())]
    );
}

async fn unknown_and_garbage_tokens_get_clear_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unknown = newsletter::keys::Key::new(SECRET_KEY)
        .confirmation_token(b"no such mail")
        .encode();

    let response = app.confirm(&unknown).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Sign up again"));

    for garbage in ["", "abc", "%zz", &"!".repeat(43), &format!("{unknown}x")] {
        let response = app.confirm(garbage).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{garbage:?}");
        assert!(response.text().await.unwrap().contains("Sign up again"));
        let page = app
            .get(&format!("/subscriptions/confirm?token={garbage}"))
            .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{garbage:?}");
    }
    // Not text at all: refused before the page (see bad_input.rs).
    let page = app.get("/subscriptions/confirm?token=%00%ff").await;
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/subscriptions/confirm").await.status(),
        StatusCode::BAD_REQUEST
    );
}

async fn the_token_is_not_stored_in_clear(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = pending_token(&app, "secret@example.org").await;
    let db = app.db.inspect().await;
    crate::support::wait_until("the mail is recorded as sent", || async {
        db.count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await
            == 1
    })
    .await;

    let dump = db.dump().await;
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &token).unwrap();
    assert!(
        dump.contains("secret@example.org"),
        "the dump must see the data"
    );
    assert!(!dump.contains(&token), "the token is stored in clear");
    assert!(
        !dump.contains(&hex(&raw)),
        "the token's bytes are stored in clear"
    );
    // What is kept is its SHA-256, and the sealed copy is gone once sent.
    let hash = hex(&newsletter::tokens::sha256(&raw));
    assert!(dump.contains(&hash), "the token's hash is not stored");
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE sealed_secret IS NOT NULL")
            .await,
        0
    );
}

async fn a_confirmed_subscriber_is_welcomed_with_a_way_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = pending_token(&app, "new@example.org").await;

    app.confirm(&token).await;
    app.confirm(&token).await;

    let welcome = app
        .smtp()
        .wait_for_mail_to("new@example.org", "Welcome to In Partnership")
        .await;
    let text = welcome.decoded();
    assert!(text.contains("You are subscribed"));
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http://newsletter.test/unsubscribe?token="))
        .expect("the welcome mail has an unsubscribe link")
        .replace("http://newsletter.test", &app.address);
    let left = app.client.post(&link).send().await.unwrap();
    assert_eq!(left.status(), StatusCode::OK);
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        [Some("unsubscribed".to_owned())]
    );
    // One welcome, however often the button is pressed.
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'welcome'")
            .await,
        1
    );
}
