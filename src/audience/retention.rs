//! How long we keep people who left. Someone on no list any more (every subscription
//! ended: they unsubscribed, bounced or complained) for longer than the retention time
//! (`LEFT_RETENTION_DAYS`) is reduced to what must stay: their anonymised ledger, as
//! the record of what they agreed to and when they withdrew it, and a suppression entry
//! (a keyed hash of the address, reason `left`) so that no import or slip mails them
//! again. Erasure does the rest, as staff erasure does; confirming a new sign-up lifts
//! the entry, since then they came back themselves.

use chrono::{DateTime, Utc};

use crate::{
    audience::suppression::SuppressionReason,
    keys::KeyRing,
    store::{ConsentMethod, NewSuppression, Store, SuppressionChange},
};

/// People reduced per round, so one hour's housekeeping never holds a long transaction.
const BATCH: u32 = 100;

/// Reduces everyone who left every list before `left_before`; returns how many.
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
        let entries: Vec<NewSuppression> = people
            .iter()
            .map(|(_, email)| NewSuppression {
                keys: keys.address_keys(email),
                address: email.clone(),
                reason: SuppressionReason::Left,
                note: Some(
                    "Left every list; their details were erased after the retention time.".into(),
                ),
            })
            .collect();
        let change = SuppressionChange {
            by: "retention".into(),
            now,
        };
        // A bounce or complaint entry they have already stays as it is.
        store.add_suppressions(&entries, &change).await?;
        for (id, _) in &people {
            store
                .erase_subscriber(*id, ConsentMethod::Retention, now)
                .await?;
            reduced += 1;
        }
    }
}
