//! Erasing a person, and how long we keep people who left.
//!
//! Every erasure (staff, the API, the person on their own page, the retention rule)
//! goes through `erase`: first a suppression entry of the kind `left` (a keyed hash of
//! the address, never the address), so that no import or slip mails them again; then
//! their personal data goes, and the anonymised ledger stays with the erasure in it.
//! Confirming a sign-up of their own lifts the entry: then they came back themselves.
//!
//! Someone on no list any more (every subscription ended: they unsubscribed, bounced or
//! complained) for longer than the retention time (`LEFT_RETENTION_DAYS`) is erased so
//! by the hourly housekeeping (`reduce_departed`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    audience::suppression::SuppressionReason,
    keys::KeyRing,
    store::{ConsentMethod, NewSuppression, Removal, Store, SuppressionChange},
};

/// People reduced per round, so one hour's housekeeping never holds a long transaction.
const BATCH: u32 = 100;

/// Erases the subscriber `id`, whose address is `email`, as done by `method`.
pub async fn erase(
    store: &dyn Store,
    keys: &KeyRing,
    (id, email): (Uuid, &str),
    method: ConsentMethod,
    now: DateTime<Utc>,
) -> anyhow::Result<Removal> {
    let entry = NewSuppression {
        keys: keys.address_keys(email),
        address: email.to_owned(),
        reason: SuppressionReason::Left,
        note: Some(format!("Erased ({}).", method.as_str())),
    };
    let change = SuppressionChange {
        by: method.as_str().to_owned(),
        now,
    };
    // A bounce or complaint entry they have already stays as it is; someone erased
    // before has no address left to suppress.
    if !crate::audience::subscription::is_erased_address(email) {
        store.add_suppressions(&[entry], &change).await?;
    }
    store.erase_subscriber(id, method, now).await
}

/// Erases everyone who left every list before `left_before`; returns how many.
pub async fn reduce_departed(
    store: &dyn Store,
    keys: &KeyRing,
    left_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let mut reduced = 0;
    loop {
        let people = store.departed_before(left_before, BATCH).await?;
        if people.is_empty() {
            return Ok(reduced);
        }
        for (id, email) in &people {
            erase(store, keys, (*id, email), ConsentMethod::Retention, now).await?;
            reduced += 1;
        }
    }
}
