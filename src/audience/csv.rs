//! Subscribers as CSV, the one format staff take lists in and out of the newsletter:
//! the same columns from the web UI and from `newsletter admin export-subscribers`.

use crate::store::SubscriberSummary;

/// Rows read from the database at a time, so a list of any length takes constant memory.
pub const PAGE: u32 = 1000;

/// The columns, in order.
pub const HEADER: [&str; 6] = [
    "email",
    "name",
    "organisation",
    "locality",
    "status",
    "signed_up",
];

/// A cell as a spreadsheet will not run: text that starts like a formula gets a `'`.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

pub fn header() -> anyhow::Result<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(HEADER)?;
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("Failed to write CSV: {e}"))
}

pub fn rows(subscribers: &[SubscriberSummary]) -> anyhow::Result<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    for s in subscribers {
        out.write_record([
            cell(&s.email),
            cell(&s.name),
            cell(s.organisation.as_deref().unwrap_or("")),
            cell(s.locality.as_deref().unwrap_or("")),
            s.status.as_str().to_owned(),
            s.created_at.to_rfc3339(),
        ])?;
    }
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("Failed to write CSV: {e}"))
}
