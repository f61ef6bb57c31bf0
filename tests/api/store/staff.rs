//! `StaffStore`: staff accounts, their sessions, sign-in attempts, and API tokens.

use chrono::Duration;
use newsletter::{
    staff::{Role, StaffUser},
    store::{Creation, LoginAdmission, LoginAttempt, Removal},
};
use uuid::Uuid;

use super::{now, open};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    staff_accounts_are_unique_and_removing_one_ends_its_sessions,
    sessions_expire,
    sign_in_attempts_are_counted_per_key_and_forgotten,
    api_tokens_have_unique_live_names_and_are_revoked,
);

fn user(email: &str, role: Role) -> StaffUser {
    StaffUser {
        id: Uuid::now_v7(),
        email: email.into(),
        role,
    }
}

async fn staff_accounts_are_unique_and_removing_one_ends_its_sessions(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let editor = user("editor@example.org", Role::Editor);
    assert_eq!(
        store.create_staff_user(&editor, "hash", now).await.unwrap(),
        Creation::Created
    );
    assert_eq!(
        store
            .create_staff_user(&user("editor@example.org", Role::Admin), "other", now)
            .await
            .unwrap(),
        Creation::Taken
    );
    store
        .create_staff_user(&user("admin@example.org", Role::Admin), "hash", now)
        .await
        .unwrap();
    let login = store
        .staff_login("editor@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (login.user.id, login.password_hash.as_str()),
        (editor.id, "hash")
    );
    assert!(
        store
            .staff_login("nobody@example.org")
            .await
            .unwrap()
            .is_none()
    );
    let members: Vec<String> = store
        .staff_users()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user.email)
        .collect();
    assert_eq!(
        members,
        ["admin@example.org", "editor@example.org"],
        "by address"
    );

    store
        .create_session(&[1; 32], editor.id, now, now + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .session_user(&[1; 32], now)
            .await
            .unwrap()
            .map(|u| u.id),
        Some(editor.id)
    );
    assert_eq!(
        store.delete_staff_user(editor.id).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(
        store.delete_staff_user(editor.id).await.unwrap(),
        Removal::NotFound
    );
    assert!(store.session_user(&[1; 32], now).await.unwrap().is_none());
}

async fn sessions_expire(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let admin = user("admin@example.org", Role::Admin);
    store.create_staff_user(&admin, "hash", now).await.unwrap();
    let until = now + Duration::hours(12);
    store
        .create_session(&[2; 32], admin.id, now, until)
        .await
        .unwrap();
    assert!(
        store
            .session_user(&[2; 32], until - Duration::seconds(1))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.session_user(&[2; 32], until).await.unwrap().is_none());
    store.delete_session(&[2; 32]).await.unwrap();
    assert!(store.session_user(&[2; 32], now).await.unwrap().is_none());
}

async fn sign_in_attempts_are_counted_per_key_and_forgotten(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let limits = [("address:a".to_owned(), 2), ("client:x".to_owned(), 3)];
    let attempt = |id| LoginAttempt {
        id,
        limits: &limits,
        since: now - Duration::minutes(15),
        now,
    };
    let first = Uuid::now_v7();
    assert_eq!(
        store.admit_login(&attempt(first)).await.unwrap(),
        LoginAdmission::Admitted
    );
    assert_eq!(
        store.admit_login(&attempt(Uuid::now_v7())).await.unwrap(),
        LoginAdmission::Admitted
    );
    assert_eq!(
        store.admit_login(&attempt(Uuid::now_v7())).await.unwrap(),
        LoginAdmission::Throttled,
        "two failures under the address: the password is not checked"
    );
    // The first succeeded after all: it is taken back, and the address's failures go.
    store
        .forget_login_attempt(first, &["address:a".to_owned()])
        .await
        .unwrap();
    // The client keeps the second failure: the fourth and fifth reach its limit of 3.
    for _ in 0..2 {
        assert_eq!(
            store.admit_login(&attempt(Uuid::now_v7())).await.unwrap(),
            LoginAdmission::Admitted
        );
    }
    assert_eq!(
        store.admit_login(&attempt(Uuid::now_v7())).await.unwrap(),
        LoginAdmission::Throttled
    );
}

async fn api_tokens_have_unique_live_names_and_are_revoked(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    assert_eq!(
        store
            .create_api_token(Uuid::now_v7(), "ci", &[3; 32], now)
            .await
            .unwrap(),
        Creation::Created
    );
    assert_eq!(
        store
            .create_api_token(Uuid::now_v7(), "ci", &[4; 32], now)
            .await
            .unwrap(),
        Creation::Taken
    );
    assert_eq!(
        store.api_token_name(&[3; 32]).await.unwrap().as_deref(),
        Some("ci")
    );
    assert_eq!(
        store.revoke_api_token("ci", now).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(
        store.revoke_api_token("ci", now).await.unwrap(),
        Removal::NotFound
    );
    assert!(store.api_token_name(&[3; 32]).await.unwrap().is_none());
    assert_eq!(
        store
            .create_api_token(Uuid::now_v7(), "ci", &[5; 32], now + Duration::seconds(1))
            .await
            .unwrap(),
        Creation::Created,
        "a revoked token's name is free again"
    );
    let tokens = store.api_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(tokens[0].revoked_at.is_none(), "newest first");
    assert!(tokens[1].revoked_at.is_some());
}
