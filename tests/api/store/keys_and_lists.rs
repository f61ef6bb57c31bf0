//! `ListStore`, `KeyStore` and `BudgetStore`: the lists, what the database keeps about
//! the secret keys, and forgetting old sign-up records.

use chrono::Duration;
use newsletter::store::DEFAULT_LIST;

use super::{now, open, signup};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    the_default_list_is_there_from_the_start,
    signing_key_ids_are_kept_and_a_legacy_key_is_forgotten,
    old_form_tokens_are_forgotten,
);

async fn the_default_list_is_there_from_the_start(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let list = store.default_list().await.unwrap();
    assert_eq!(list.slug, DEFAULT_LIST);
    assert_eq!(list.id, opened.list_id);
    let slugs: Vec<String> = store
        .lists()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.slug)
        .collect();
    assert_eq!(slugs, [DEFAULT_LIST]);
    assert!(store.list_by_slug("no-such-list").await.unwrap().is_none());
}

async fn signing_key_ids_are_kept_and_a_legacy_key_is_forgotten(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    assert!(store.signing_key_ids().await.unwrap().is_empty());
    store.record_signing_key_id("0a0b0c0d").await.unwrap();
    store.record_signing_key_id("0a0b0c0d").await.unwrap();
    store.record_signing_key_id("01020304").await.unwrap();
    assert_eq!(
        store.signing_key_ids().await.unwrap(),
        ["01020304", "0a0b0c0d"],
        "each once, in order"
    );
    let db = opened.db.inspect().await;
    db.execute("INSERT INTO app_settings (key, value) VALUES ('secret_key', 'an old key')")
        .await;
    assert_eq!(
        store.legacy_secret_key().await.unwrap().as_deref(),
        Some("an old key")
    );
    store.forget_legacy_secret_key().await.unwrap();
    assert_eq!(store.legacy_secret_key().await.unwrap(), None);
    assert_eq!(store.signing_key_ids().await.unwrap().len(), 2, "ids stay");
}

async fn old_form_tokens_are_forgotten(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let then = now() - Duration::days(3);
    let first = signup(opened.list_id, "early@example.org", then);
    store.record_signup(&first).await.unwrap();
    store
        .delete_signup_records_before(now() - Duration::days(1))
        .await
        .unwrap();
    let db = opened.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM used_form_tokens").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM signup_budgets").await, 0);
    assert_eq!(
        db.count("SELECT count(*) FROM subscribers").await,
        1,
        "only the records of sign-ups go, not the people"
    );
}
