//! Secret keys: never in the database, so a stolen copy of its files gives back no
//! working token or link; a key ring, so rotating the key keeps every link already
//! sent working; and a key an earlier version kept in the database moves out.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use newsletter::{keys, secrets, settings::Settings, startup::Application, store};
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, TestApp, TestDatabase, hex, test_settings};

on_both_backends!(
    a_copy_of_the_database_gives_back_no_key_token_or_link,
    an_old_key_in_the_ring_keeps_links_already_sent_working,
    a_key_an_earlier_version_kept_in_the_database_moves_out,
    a_key_no_longer_in_the_ring_is_reported_by_id,
);

/// Every copy of the database the attacker could take: the files (SQLite, including
/// the WAL and free pages) or every row (PostgreSQL).
async fn database_copy(app: &TestApp) -> Vec<u8> {
    match app.db.url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(file) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend(file);
                }
            }
            bytes
        }
        None => app.db.inspect().await.dump().await.into_bytes(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a copy would have to hold to give a working token or link back.
fn assert_nothing_usable(copy: &[u8], secrets: &[String], when: &str) {
    for secret in secrets {
        assert!(
            !contains(copy, secret.as_bytes()),
            "{when}: a secret is in the copy"
        );
        if let Ok(raw) = URL_SAFE_NO_PAD.decode(secret) {
            assert!(
                !contains(copy, &raw),
                "{when}: a token's bytes are in the copy"
            );
            assert!(
                !contains(copy, hex(&raw).as_bytes()),
                "{when}: a token's bytes are in the copy, as hex"
            );
        }
    }
}

async fn a_copy_of_the_database_gives_back_no_key_token_or_link(backend: Backend) {
    let sqlite = matches!(backend, Backend::Sqlite);
    // SQLite runs as on a fresh machine, with the key file it makes itself.
    let smtp = crate::support::SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |s| {
            if sqlite {
                s.secret_key = None;
            }
        },
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    let people: Vec<String> = (0..12).map(|i| format!("person{i}@example.org")).collect();
    for email in &people {
        assert_eq!(app.sign_up(email).await.status(), StatusCode::OK);
    }
    // A copy taken while the mail is going out, and one after.
    let while_sending = database_copy(&app).await;
    let mut secrets = vec![];
    for email in &people[..6] {
        let mail = app
            .smtp()
            .wait_for_mail_to(email, "Confirm your subscription to In Partnership")
            .await;
        let token = mail.confirmation_token();
        assert_eq!(app.confirm(&token).await.status(), StatusCode::OK);
        secrets.push(token);
    }
    for email in &people[..6] {
        let welcome = app
            .smtp()
            .wait_for_mail_to(email, "Welcome to In Partnership")
            .await;
        secrets.push(welcome.unsubscribe_token());
    }
    for email in &people[6..] {
        let mail = app
            .smtp()
            .wait_for_mail_to(email, "Confirm your subscription to In Partnership")
            .await;
        secrets.push(mail.confirmation_token());
    }
    let key = match sqlite {
        true => {
            let key_file = app
                .db
                .url
                .strip_prefix("sqlite://")
                .unwrap()
                .replace(".db", ".key");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "the key file is private");
            }
            std::fs::read_to_string(&key_file)
                .unwrap()
                .trim()
                .to_owned()
        }
        false => SECRET_KEY.to_owned(),
    };
    secrets.push(key);
    let after = database_copy(&app).await;
    assert!(
        contains(&after, b"person11@example.org"),
        "the copy must see the data"
    );
    assert_nothing_usable(&while_sending, &secrets, "while sending");
    assert_nothing_usable(&after, &secrets, "after sending");
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM app_settings WHERE key = 'secret_key'")
            .await,
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE sealed_secret IS NOT NULL")
            .await,
        0
    );
}

/// A confirmed subscriber of the app, and the unsubscribe link of their welcome mail.
async fn subscriber_with_link(app: &TestApp, email: &str) -> String {
    app.confirmed_subscriber(email).await;
    let welcome = app
        .smtp()
        .wait_for_mail_to(email, "Welcome to In Partnership")
        .await;
    format!("/unsubscribe?token={}", welcome.unsubscribe_token())
}

async fn an_old_key_in_the_ring_keeps_links_already_sent_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = subscriber_with_link(&app, "stays@example.org").await;

    const NEW_KEY: &str = "the key the operator rotated to, long enough";
    let rotated = app
        .another_instance_with(|s| {
            s.secret_key = Some(NEW_KEY.into());
            s.previous_secret_keys = vec![SECRET_KEY.into()];
        })
        .await;
    let without_old = app
        .another_instance_with(|s| s.secret_key = Some(NEW_KEY.into()))
        .await;
    let client = &app.client;
    let page = client
        .get(format!("{}{link}", without_old.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::BAD_REQUEST,
        "the test must be able to fail"
    );
    let page = client
        .get(format!("{}{link}", rotated.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let left = client
        .post(format!("{}{link}", rotated.address))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::OK);
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        vec![Some("unsubscribed".to_owned())]
    );
    rotated.stop().await;
    without_old.stop().await;
}

/// The database of an earlier version, which kept its key in `app_settings`.
async fn database_with_a_key_inside(backend: &Backend, key: &str) -> TestDatabase {
    let db = TestDatabase::create(backend).await;
    let store = store::connect(&db.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    db.inspect()
        .await
        .execute_with(
            "INSERT INTO app_settings (key, value) VALUES ('secret_key', $1)",
            key,
        )
        .await;
    db
}

async fn a_key_an_earlier_version_kept_in_the_database_moves_out(backend: Backend) {
    const OLD_KEY: &str = "the key an earlier version kept in the database";
    let db = database_with_a_key_inside(&backend, OLD_KEY).await;
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("secret.key");

    // PostgreSQL with only SECRET_KEY has nowhere to move it: it refuses to start.
    let smtp = crate::support::SmtpServer::start().await;
    if !matches!(backend, Backend::Sqlite) {
        let mut settings = test_settings(&db.url, &smtp.url());
        settings.secret_key_file = None;
        let err = Application::build(settings)
            .await
            .err()
            .expect("it must refuse");
        assert!(format!("{err:#}").contains("SECRET_KEY_FILE"), "{err:#}");
    }

    let file = key_file.clone();
    let mut app = TestApp::spawn_on(
        db,
        |s| {
            s.secret_key = None;
            s.secret_key_file = Some(file);
        },
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        format!("{OLD_KEY}\n")
    );
    let inspect = app.db.inspect().await;
    assert_eq!(
        inspect
            .count("SELECT count(*) FROM app_settings WHERE key = 'secret_key'")
            .await,
        0
    );
    // The moved key is the one links were made with: it still signs and verifies.
    let link = subscriber_with_link(&app, "old@example.org").await;
    let old_ring = keys::KeyRing::new(OLD_KEY, &[]);
    let token = link.split_once("token=").unwrap().1;
    assert!(newsletter::tokens::UnsubscribeToken::verify(&old_ring, token).is_some());
    assert_eq!(app.get(&link).await.status(), StatusCode::OK);
    // No trace of it is left in the files.
    assert_nothing_usable(
        &database_copy(&app).await,
        &[OLD_KEY.to_owned()],
        "after the move",
    );
}

async fn a_key_no_longer_in_the_ring_is_reported_by_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = store::connect(&app.db.url, 2).await.unwrap();
    let mut settings: Settings = test_settings(&app.db.url, &app.smtp().url());
    settings.secret_key = Some("a new key, and the old one left out of it".into());
    let (_, report) = secrets::load_with_report(&settings, store.as_ref())
        .await
        .unwrap();
    let old_id = keys::Key::new(SECRET_KEY).id.to_string();
    assert_eq!(report.lost, vec![old_id.clone()]);

    settings.previous_secret_keys = vec![SECRET_KEY.into()];
    let (_, report) = secrets::load_with_report(&settings, store.as_ref())
        .await
        .unwrap();
    assert!(report.lost.is_empty(), "{:?}", report.lost);
    store.close().await;
}
