//! One person per mailbox: `Case@`, `CASE@` and `cAse@` are one subscriber, for sign-up,
//! the confirmation cap, import and sending; the form first typed is the one mailed.
//! Case-duplicates already stored merge into one person when the schema is upgraded.

use std::str::FromStr;

use newsletter::store::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, migrator};
use reqwest::StatusCode;
use sqlx::sqlite::SqliteConnectOptions;
use uuid::Uuid;

use crate::on_both_backends;
use crate::support::{Backend, Inspector, TestApp, TestDatabase, wait_until};

on_both_backends!(
    case_variants_of_one_mailbox_are_one_person,
    case_duplicates_stored_before_merge_into_one_person,
);

const VARIANTS: [&str; 10] = [
    "Case@example.org",
    "CASE@example.org",
    "cAse@example.org",
    "case@example.org",
    "CaSe@Example.org",
    "caSE@EXAMPLE.ORG",
    "CAse@example.org",
    "casE@example.org",
    "cASE@example.org",
    " Case@example.org ",
];

async fn case_variants_of_one_mailbox_are_one_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for email in VARIANTS {
        assert_eq!(app.sign_up(email).await.status(), StatusCode::OK);
    }
    // One person, kept as first typed, and the three-a-day cap on confirmation mails.
    let mails = app.smtp().wait_for(3).await;
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT email FROM subscribers").await,
        vec![Some("Case@example.org".to_owned())]
    );
    assert_eq!(db.count("SELECT count(*) FROM outbox").await, 3);
    assert!(mails.iter().all(|m| m.to == vec!["Case@example.org"]));

    // Confirmed by one variant, no variant gets another mail, and an issue goes once.
    assert_eq!(
        app.confirm(&mails[0].confirmation_token()).await.status(),
        StatusCode::OK
    );
    app.smtp().wait_for(4).await; // the welcome
    for email in ["CASE@example.org", "case@EXAMPLE.org"] {
        assert_eq!(app.sign_up(email).await.status(), StatusCode::OK);
    }
    let token = app.api_token("ci").await;
    let issue = app.send_issue(&token, "Winter news").await;
    wait_until("the issue is sent", || async {
        app.issue_status(&token, &issue).await == "sent"
    })
    .await;
    assert_eq!(app.smtp().with_subject("Winter news").len(), 1);
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'confirmation'")
            .await,
        3
    );
}

/// A database at the schema before one-person-per-mailbox, to put duplicates in.
async fn database_before_the_merge(backend: &Backend) -> TestDatabase {
    let db = TestDatabase::create(backend).await;
    match backend {
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator(&SQLITE_MIGRATIONS[..5]).run(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres(_) => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            migrator(&POSTGRES_MIGRATIONS[..5])
                .run(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    db
}

/// (address, subscription status, consent events) of each subscriber, oldest first.
const PEOPLE: [(&str, &str, &[&str]); 4] = [
    ("Case@example.org", "confirmed", &["signup", "confirm"]),
    (
        "CASE@example.org",
        "unsubscribed",
        &["signup", "unsubscribe"],
    ),
    ("case@example.org", "pending", &["signup"]),
    ("other@example.org", "confirmed", &["signup", "confirm"]),
];

async fn case_duplicates_stored_before_merge_into_one_person(backend: Backend) {
    let db = database_before_the_merge(&backend).await;
    let ids: Vec<Uuid> = PEOPLE.iter().map(|_| Uuid::now_v7()).collect();
    let list = db
        .inspect()
        .await
        .id("SELECT id FROM lists WHERE slug = $1", "in-partnership")
        .await;
    // Every person, their subscription and ledger, at times one second apart from an
    // hour ago; and a pending confirmation token for the third. Recent, as the rest of
    // the test needs: someone who left over a year ago is erased by the retention rule
    // when the service starts, and a sign-up after that is a new person.
    let sqlite = matches!(backend, Backend::Sqlite);
    let hour_ago = chrono::Utc::now().timestamp() - 3600;
    let time = |n: usize| {
        let seconds = hour_ago + n as i64;
        if sqlite {
            format!("{}", seconds * 1000)
        } else {
            format!("to_timestamp({seconds})")
        }
    };
    let mut statements = Vec::new();
    for (n, ((email, status, events), id)) in PEOPLE.iter().zip(&ids).enumerate() {
        let t = time(n);
        statements.push((
            format!(
                "INSERT INTO subscribers (id, email, name, created_at, updated_at) VALUES ($1, '{email}', 'Jo', {t}, {t})"
            ),
            *id,
        ));
        statements.push((
            format!(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) VALUES ($1, $2, '{status}', {t}, {t})"
            ),
            *id,
        ));
        for kind in *events {
            statements.push((
                format!(
                    "INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at) VALUES ('{}', $1, $2, '{kind}', 'form', {t})",
                    Uuid::now_v7()
                ),
                *id,
            ));
        }
    }
    statements.push((
        format!(
            "INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at) VALUES ($3, $1, $2, {0}, {0})",
            time(9)
        ),
        ids[2],
    ));
    // SQLite keeps ids as bytes: the event ids are written as text there, which is fine
    // for this test (nothing reads them by id).
    macro_rules! run_all {
        ($pool:expr) => {
            for (sql, id) in &statements {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(id)
                    .bind(list);
                if sql.contains("$3") {
                    query = query.bind(vec![7u8; 32]);
                }
                query
                    .execute($pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        };
    }
    match db.inspect().await {
        Inspector::Sqlite(pool) => run_all!(&pool),
        Inspector::Postgres(pool) => run_all!(&pool),
    }

    // The upgrade: the service's own migrations, as at its next start.
    let store = newsletter::store::connect(&db.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;

    let inspect = db.inspect().await;
    assert_eq!(
        inspect
            .texts("SELECT email FROM subscribers ORDER BY email")
            .await,
        vec![
            Some("Case@example.org".to_owned()),
            Some("other@example.org".to_owned())
        ],
        "the oldest form is kept"
    );
    let merged = inspect
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "Case@example.org",
        )
        .await;
    assert_eq!(merged, ids[0]);
    assert_eq!(
        inspect
            .texts("SELECT status FROM subscriptions ORDER BY status")
            .await,
        vec![
            Some("confirmed".to_owned()),
            Some("unsubscribed".to_owned())
        ],
        "one of them unsubscribed, so the merged person stays unsubscribed"
    );
    // The ledger keeps all five events of the three, now under the merged person.
    assert_eq!(
        inspect.count("SELECT count(*) FROM consent_events").await,
        7
    );
    let merged_events = inspect
        .texts("SELECT kind FROM consent_events WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = 'Case@example.org') ORDER BY kind")
        .await;
    assert_eq!(merged_events.len(), 5, "{merged_events:?}");
    assert_eq!(
        inspect
            .count("SELECT count(*) FROM confirmation_tokens WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = 'Case@example.org')")
            .await,
        1
    );
    // And from now on a variant is that person.
    let smtp = crate::support::SmtpServer::start().await;
    let mut app = TestApp::spawn_on(db, |_| {}, &smtp.url()).await;
    app.smtp = Some(smtp);
    assert_eq!(
        app.sign_up("CaSe@example.org").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        inspect.count("SELECT count(*) FROM subscribers").await,
        2,
        "{:?}",
        inspect
            .texts("SELECT email || ' ' || created_at FROM subscribers ORDER BY email")
            .await
    );
}
