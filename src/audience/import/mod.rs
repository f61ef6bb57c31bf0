//! Importing subscribers from a CSV file, from the web UI and from
//! `newsletter admin import-subscribers` alike:
//!
//! 1. `read_csv` checks every row as the sign-up form would and says why it refuses one.
//! 2. `create` records the import (who, which file, the lawful basis) with each row and
//!    its verdict: the preview. People already subscribed are left unchanged, and people
//!    who unsubscribed are refused: only they can subscribe again.
//! 3. `apply` imports the rows still to import, a batch per transaction, and records
//!    each row's outcome beside it: the report. Imported people are either confirmed
//!    (consent event `import`) or sent a confirmation mail (event `signup`, method
//!    `import`), as the importer chose; either event points to the import.
//!
//! The rows are personal data: they are deleted `REPORT_DAYS` after the import, and
//! erasure deletes a person's rows at once. The import's own record stays.

use chrono::Utc;
use uuid::Uuid;

use crate::{
    audience::subscriber::{
        Locality, NewSubscriber, Organisation, SubscriberEmail, SubscriberName, mailbox_key,
    },
    keys::KeyRing,
    store::{ImportBatch, ImportedPerson, Invitation, Store},
};

const SUPPRESSED: &str = "On the suppression list (mail to them bounced, they reported spam, they were erased, or staff added them): only they can subscribe again, by signing up themselves.";

/// The longest source note.
const NOTE_MAX: usize = 1000;

/// The lawful basis must be written down: what the list is and why these people may
/// be mailed.
pub fn source_note_problem(note: &str) -> Option<String> {
    let note = note.trim();
    if note.chars().count() < 10 {
        return Some(
            "Say where these people’s details came from and why they may be emailed (10 characters or more)."
                .into(),
        );
    }
    if note.chars().count() > NOTE_MAX {
        return Some(format!(
            "The source note must be {NOTE_MAX} characters or fewer."
        ));
    }
    None
}

mod reading;
pub mod rules;

pub use reading::{ParsedFile, read_csv};
pub use rules::{
    BATCH, ImportCounts, ImportRecord, ImportRow, Mode, REPORT_DAYS, RowStatus, outcome,
    report_cutoff, settled,
};

/// Refuses a row, keeping no more of its values than a person needs to find it.
fn refuse(row: &mut ImportRow, reason: String) {
    for value in [
        &mut row.email,
        &mut row.name,
        &mut row.organisation,
        &mut row.locality,
    ] {
        if value.chars().count() > 300 {
            *value = value.chars().take(300).collect::<String>() + "…";
        }
    }
    // Stored as a subscriber's would be, so erasing that person finds this row too.
    if let Ok(email) = SubscriberEmail::parse(&row.email) {
        row.email = email.as_str().to_owned();
    }
    row.status = RowStatus::Refused;
    row.reason = Some(reason);
}

/// A row's values as a subscriber, checked as the sign-up form checks them.
pub fn check(row: &ImportRow) -> Result<NewSubscriber, String> {
    if row.email.is_empty() {
        return Err("No email address.".into());
    }
    let email = SubscriberEmail::parse(&row.email)
        .map_err(|_| format!("“{}” is not an email address.", row.email))?;
    if row.name.is_empty() {
        return Err("No name.".into());
    }
    let name = SubscriberName::parse(&row.name)?;
    let organisation = Organisation::parse(&row.organisation)?;
    // An unknown locality is no locality (`read_csv` says so in the row's report).
    let wanted = row.locality.to_lowercase();
    let locality = Locality::ALL
        .into_iter()
        .find(|l| l.slug() == wanted || l.label().to_lowercase() == wanted);
    Ok(NewSubscriber {
        email,
        name,
        organisation,
        locality,
    })
}

/// Records the import and its rows, each with the verdict it would have now: the
/// preview. Its rows are checked against the subscribers already on the list.
pub async fn create(
    store: &dyn Store,
    keys: &KeyRing,
    import: &ImportRecord,
    mut rows: Vec<ImportRow>,
) -> anyhow::Result<()> {
    for chunk in rows.chunks_mut(BATCH as usize) {
        let emails: Vec<String> = chunk
            .iter()
            .filter(|r| r.status == RowStatus::Ready)
            .map(|r| r.email.clone())
            .collect();
        let statuses = store.subscription_statuses(import.list_id, &emails).await?;
        // Someone on the suppression list (bounced, complained, erased, or added by
        // staff) is not imported: only they can come back, by signing up.
        let row_keys: Vec<Vec<[u8; 32]>> = emails.iter().map(|e| keys.address_keys(e)).collect();
        let suppressed = store.suppressed(&row_keys.concat()).await?;
        let mut ready_keys = row_keys.iter();
        for row in chunk.iter_mut().filter(|r| r.status == RowStatus::Ready) {
            let on_the_list = ready_keys
                .next()
                .is_some_and(|keys| keys.iter().any(|k| suppressed.contains(k)));
            let settled = statuses
                .get(&mailbox_key(&row.email))
                .and_then(|status| settled(*status));
            match (settled, on_the_list) {
                (Some((status, reason)), _) => {
                    row.status = status;
                    row.reason = reason.map(str::to_owned);
                }
                (None, true) => {
                    row.status = RowStatus::Refused;
                    row.reason = Some(SUPPRESSED.to_owned());
                }
                (None, false) => {}
            }
        }
    }
    store
        .delete_import_rows_before(report_cutoff(import.created_at))
        .await?;
    store.create_import(import, &rows).await
}

/// What `apply` needs to write confirmation mails.
pub struct Inviter<'a> {
    pub secret: &'a KeyRing,
    /// The list they are imported into.
    pub list: &'a crate::store::MailingList,
    pub ttl: std::time::Duration,
}

/// Imports every row still to import, `BATCH` rows per transaction, calling
/// `progress` with the number done after each. The caller has claimed the import
/// (`Store::start_import`), so no one else applies it at the same time.
pub async fn apply(
    store: &dyn Store,
    import: &ImportRecord,
    inviter: &Inviter<'_>,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<()> {
    let mut done = 0;
    let mut last_line = 0;
    loop {
        let rows = store
            .import_rows(import.id, Some(RowStatus::Ready), last_line, 0, BATCH)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        last_line = last.line;
        let now = Utc::now();
        let mut people = Vec::with_capacity(rows.len());
        for row in &rows {
            let subscriber = check(row).map_err(|problem| {
                anyhow::anyhow!("Line {} no longer passes the checks: {problem}", row.line)
            })?;
            let invitation = match import.mode {
                Mode::Confirmed => None,
                Mode::Invite => Some(Invitation::new(
                    inviter.secret,
                    crate::sending::outbox::ListNames::of(std::slice::from_ref(inviter.list)),
                    inviter.ttl,
                    subscriber.email.as_str(),
                    now,
                    true,
                )?),
            };
            people.push(ImportedPerson {
                line: row.line,
                subscriber,
                new_subscriber_id: Uuid::now_v7(),
                event_id: Uuid::now_v7(),
                invitation,
            });
        }
        store
            .import_subscribers(&ImportBatch {
                import_id: import.id,
                list_id: import.list_id,
                mode: import.mode,
                now,
                people: &people,
            })
            .await?;
        done += rows.len();
        progress(done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> ParsedFile {
        read_csv(text.as_bytes(), Mode::Confirmed).unwrap()
    }

    fn verdicts(file: &ParsedFile) -> Vec<(i64, RowStatus, Option<&str>)> {
        file.rows
            .iter()
            .map(|r| (r.line, r.status, r.reason.as_deref()))
            .collect()
    }

    #[test]
    fn good_rows_are_ready_and_stored_as_the_form_would_store_them() {
        let file = read(
            "\u{feff}Email Address,Full name,Organization,District,Phone\n\
             \" Jo@Example.ORG \",Jo Bloggs,GVCS,Forest of Dean,0123\n\
             al@example.org,Al,,stroud,\n",
        );
        assert_eq!(file.ignored_columns, ["Phone"]);
        assert_eq!(
            file.rows[0],
            ImportRow {
                line: 2,
                email: "Jo@example.org".into(),
                name: "Jo Bloggs".into(),
                organisation: "GVCS".into(),
                locality: "forest-of-dean".into(),
                status: RowStatus::Ready,
                reason: None,
            }
        );
        assert_eq!(file.rows[1].locality, "stroud");
        assert_eq!(file.rows[1].status, RowStatus::Ready);
    }

    #[test]
    fn each_bad_row_says_why() {
        let file = read(
            "email,name,locality,status\n\
             ,No Address,,\n\
             not-an-address,Someone,,\n\
             jo@example.org,,,\n\
             al@example.org,Al,Bristol,\n\
             bo@example.org,<b>Bo</b>,,\n\
             cy@example.org,Cy,,unsubscribed\n\
             di@example.org,Di,,pending\n\
             ed@example.org,Ed,,\n\
             ED@Example.org,Ed again,,\n",
        );
        let reasons: Vec<_> = file
            .rows
            .iter()
            .map(|r| (r.line, r.reason.clone().unwrap_or_default()))
            .collect();
        assert!(reasons[0].1.contains("No email address"));
        assert!(
            reasons[1]
                .1
                .contains("“not-an-address” is not an email address")
        );
        assert!(reasons[2].1.contains("No name"));
        // An unknown locality is left out, not the person, and the report says so.
        assert_eq!(file.rows[3].status, RowStatus::Ready);
        assert_eq!(file.rows[3].locality, "");
        assert!(
            reasons[3]
                .1
                .contains("“Bristol” is not one of the localities")
        );
        assert!(reasons[4].1.contains("must not contain <"));
        assert!(reasons[5].1.contains("Marked unsubscribed"));
        assert!(reasons[6].1.contains("Marked pending"));
        assert_eq!(reasons[7], (9, String::new()));
        assert_eq!(reasons[8], (10, "The same address as line 9.".into()));
        assert_eq!(
            file.rows
                .iter()
                .filter(|r| r.status == RowStatus::Ready)
                .count(),
            2
        );
    }

    #[test]
    fn first_and_last_names_are_joined() {
        let file = read(
            "Email Address,First Name,Last Name,Locality\n\
             jo@example.org,Jo,Bloggs,Gloucester City\n\
             al@example.org,Al,,\n",
        );
        assert_eq!(file.rows[0].name, "Jo Bloggs");
        assert_eq!(file.rows[0].status, RowStatus::Ready);
        assert_eq!(file.rows[1].name, "Al");
        assert!(
            file.ignored_columns.is_empty(),
            "{:?}",
            file.ignored_columns
        );
    }

    #[test]
    fn pending_people_may_be_invited() {
        let file = read_csv(
            b"email,name,status\ndi@example.org,Di,pending\n",
            Mode::Invite,
        )
        .unwrap();
        assert_eq!(verdicts(&file), [(2, RowStatus::Ready, None)]);
    }

    #[test]
    fn semicolons_and_tabs_are_understood_and_our_export_reads_back() {
        for text in [
            "email;name\njo@example.org;Jo\n",
            "email\tname\njo@example.org\tJo\n",
        ] {
            assert_eq!(read(text).rows[0].name, "Jo");
        }
        let export = "email,name,organisation,locality,status,signed_up\n\
                      jo@example.org,'=Jo,'@org,cotswold,confirmed,2026-11-01T10:00:00+00:00\n";
        let file = read(export);
        assert_eq!(file.ignored_columns, ["signed_up"]);
        assert_eq!(file.rows[0].name, "=Jo");
        assert_eq!(file.rows[0].organisation, "@org");
        assert_eq!(file.rows[0].status, RowStatus::Ready);
    }

    #[test]
    fn files_that_cannot_be_imported_are_refused_whole() {
        for (data, expected) in [
            (&b""[..], "empty"),
            (b"email,name\n", "nobody in it"),
            (b"address,who\njo@example.org,Jo\n", "no “email” column"),
            (
                b"email,organisation\njo@example.org,X\n",
                "no “name” column",
            ),
            (b"email,name\njo@example.org,J\xf6\n", "not UTF-8"),
        ] {
            let err = read_csv(data, Mode::Confirmed).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn the_source_note_is_required() {
        assert!(source_note_problem("  ").is_some());
        assert!(source_note_problem("list").is_some());
        assert!(source_note_problem("Attendees of the VCSE Assembly, 2026").is_none());
        assert!(source_note_problem(&"x".repeat(1001)).is_some());
    }
}
