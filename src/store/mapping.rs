//! Rows to values, once for both backends. Each backend says how it reads a column of
//! each kind (`Columns`, in its `rows.rs`, where its time encoding lives); what a row
//! makes is said here, so the two cannot drift apart.

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    ConsentRecord, DeliveryJob, InboundSummary, IssueStats, KnownCopy, MailingList, MediaFile,
    MediaItem, OutboxMail, SubscriberSummary, SuppressionEntry,
};
use crate::{
    audience::{
        import::rules::{ImportRecord, ImportRow, Mode, RowStatus},
        segment::Segment,
        subscription::SubscriptionStatus,
        suppression::SuppressionReason,
    },
    inbound::{Kind, verdict::Outcome},
    issues::{Issue, IssueStatus, Withdrawal, media::Format},
    staff::{Role, StaffUser},
};

/// A row's columns by name, each read as the value it holds.
pub(super) trait Columns {
    fn text(&self, column: &str) -> anyhow::Result<String>;
    fn maybe_text(&self, column: &str) -> anyhow::Result<Option<String>>;
    fn id(&self, column: &str) -> anyhow::Result<Uuid>;
    fn maybe_id(&self, column: &str) -> anyhow::Result<Option<Uuid>>;
    /// A 64-bit integer: a count, a line number.
    fn number(&self, column: &str) -> anyhow::Result<i64>;
    /// A 32-bit integer: an attempt count.
    fn maybe_number(&self, column: &str) -> anyhow::Result<Option<i64>>;
    fn small_number(&self, column: &str) -> anyhow::Result<i32>;
    fn flag(&self, column: &str) -> anyhow::Result<bool>;
    fn maybe_bytes(&self, column: &str) -> anyhow::Result<Option<Vec<u8>>>;
    fn time(&self, column: &str) -> anyhow::Result<DateTime<Utc>>;
    fn maybe_time(&self, column: &str) -> anyhow::Result<Option<DateTime<Utc>>>;
}

pub(super) fn mailing_list(row: &impl Columns) -> anyhow::Result<MailingList> {
    Ok(MailingList {
        id: row.id("id")?,
        slug: row.text("slug")?,
        name: row.text("name")?,
        description: row.text("description")?,
        public: row.flag("public")?,
    })
}

pub(super) fn brand_version(row: &impl Columns) -> anyhow::Result<crate::brand::BrandVersion> {
    let mut brand: crate::brand::Brand =
        serde_json::from_str(&row.text("brand")?).context("A saved brand is not valid JSON")?;
    // The ledger's words are the consent table's.
    brand.consent_text = row.text("consent_text")?;
    Ok(crate::brand::BrandVersion::new(
        row.number("version")?,
        row.text("consent_version")?,
        brand,
    ))
}

pub(super) fn mail_template(
    row: &impl Columns,
) -> anyhow::Result<crate::issues::templates::MailTemplate> {
    Ok(crate::issues::templates::MailTemplate {
        name: row.text("name")?,
        version: row.number("version")?,
        html: row.text("html")?,
        text: row.text("text")?,
    })
}

pub(super) fn template_version_info(
    row: &impl Columns,
) -> anyhow::Result<super::TemplateVersionInfo> {
    Ok(super::TemplateVersionInfo {
        version: row.number("version")?,
        shipped: row.flag("shipped")?,
        created_by: row.text("created_by")?,
        created_at: row.time("created_at")?,
    })
}

fn media_format(row: &impl Columns) -> anyhow::Result<Format> {
    let content_type = row.text("content_type")?;
    [Format::Jpeg, Format::Png, Format::Gif]
        .into_iter()
        .find(|f| f.content_type() == content_type)
        .with_context(|| format!("Unknown image type {content_type:?}"))
}

fn pixels(row: &impl Columns, column: &str) -> anyhow::Result<u32> {
    u32::try_from(row.small_number(column)?).with_context(|| format!("A negative {column}"))
}

pub(super) fn media_file(row: &impl Columns) -> anyhow::Result<MediaFile> {
    Ok(MediaFile {
        format: media_format(row)?,
        width: pixels(row, "width")?,
        height: pixels(row, "height")?,
        bytes: row.maybe_bytes("bytes")?.unwrap_or_default(),
    })
}

pub(super) fn media_item(row: &impl Columns) -> anyhow::Result<MediaItem> {
    Ok(MediaItem {
        hash: row.text("hash")?,
        format: media_format(row)?,
        width: pixels(row, "width")?,
        height: pixels(row, "height")?,
        byte_count: i64::from(row.small_number("byte_count")?),
        file_name: row.text("file_name")?,
        uploaded_by: row.text("uploaded_by")?,
        created_at: row.time("created_at")?,
    })
}

/// An issue from the columns the backends' `issue_select!` names.
pub(super) fn issue(row: &impl Columns) -> anyhow::Result<Issue> {
    Ok(Issue {
        id: row.id("id")?,
        number: row.number("number")?,
        list_slug: row.text("list_slug")?,
        subject: row.text("subject")?,
        preheader: row.text("preheader")?,
        body_markdown: row.text("body_markdown")?,
        template: row.text("template")?,
        status: IssueStatus::parse(&row.text("status")?)?,
        send_at: row.maybe_time("send_at")?,
        finished_at: row.maybe_time("finished_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        withdrawn: match row.maybe_time("withdrawn_at")? {
            Some(at) => Some(Withdrawal {
                at,
                by: row.text("withdrawn_by")?,
            }),
            None => None,
        },
        paused_reason: row.maybe_text("paused_reason")?,
        template_version: row.maybe_number("template_version")?,
        brand_version: row.maybe_number("brand_version")?,
        sent_anyway: match (
            row.maybe_text("sent_anyway_by")?,
            row.maybe_time("sent_anyway_at")?,
        ) {
            (Some(by), Some(at)) => Some(Withdrawal { at, by }),
            _ => None,
        },
        segment: row
            .maybe_text("segment")?
            .map(|json| Segment::from_json(&json))
            .transpose()?,
    })
}

pub(super) fn issue_stats(row: &impl Columns) -> anyhow::Result<IssueStats> {
    Ok(IssueStats {
        recipients: row.number("recipients")?,
        sent: row.number("sent")?,
        failed: row.number("failed")?,
        pending: row.number("pending")?,
        skipped: row.number("skipped")?,
        cancelled: row.number("cancelled")?,
        unsubscribed: row.number("unsubscribed")?,
        hard_bounces: row.number("hard_bounces")?,
        soft_bounces: row.number("soft_bounces")?,
        complaints: row.number("complaints")?,
    })
}

pub(super) fn outbox_mail(row: &impl Columns) -> anyhow::Result<OutboxMail> {
    Ok(OutboxMail {
        id: row.id("id")?,
        subscriber_id: row.maybe_id("subscriber_id")?,
        kind: row.text("kind")?,
        recipient: row.text("recipient")?,
        payload: row.text("payload")?,
        sealed_secret: row.maybe_bytes("sealed_secret")?,
        attempts: row.small_number("attempts")?,
        past_suppression: row.flag("past_suppression")?,
        claimed_by: row.id("claimed_by")?,
    })
}

pub(super) fn delivery_job(row: &impl Columns) -> anyhow::Result<DeliveryJob> {
    Ok(DeliveryJob {
        issue_id: row.id("issue_id")?,
        subscriber_id: row.id("subscriber_id")?,
        list_id: row.id("list_id")?,
        email: row.text("email")?,
        still_subscribed: row.flag("still_subscribed")?,
        attempts: row.small_number("attempts")?,
        claimed_by: row.id("claimed_by")?,
    })
}

/// A staff user from a row with `id`, `email` and `role`.
pub(super) fn staff_user(row: &impl Columns) -> anyhow::Result<StaffUser> {
    Ok(StaffUser {
        id: row.id("id")?,
        email: row.text("email")?,
        role: Role::parse(&row.text("role")?)?,
    })
}

pub(super) fn subscriber_summary(row: &impl Columns) -> anyhow::Result<SubscriberSummary> {
    Ok(SubscriberSummary {
        id: row.id("id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        organisation: row.maybe_text("organisation")?,
        locality: row.maybe_text("locality")?,
        status: SubscriptionStatus::parse(&row.text("status")?)?,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn person(row: &impl Columns) -> anyhow::Result<super::Person> {
    Ok(super::Person {
        id: row.id("id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        organisation: row.maybe_text("organisation")?,
        locality: row.maybe_text("locality")?,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn consent_record(row: &impl Columns) -> anyhow::Result<ConsentRecord> {
    Ok(ConsentRecord {
        list_name: row.text("list_name")?,
        kind: row.text("kind")?,
        method: row.text("method")?,
        occurred_at: row.time("occurred_at")?,
        ip: row.maybe_text("ip")?,
        user_agent: row.maybe_text("user_agent")?,
        wording_version: row.maybe_text("wording_version")?,
        issue_subject: row.maybe_text("issue_subject")?,
        import_id: row.maybe_id("import_id")?,
        import_note: row.maybe_text("import_note")?,
        evidence: match (
            row.maybe_text("evidence_status")?,
            row.maybe_text("evidence_words")?,
        ) {
            (None, None) => None,
            (status, words) => Some(
                [status, words]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": "),
            ),
        },
    })
}

pub(super) fn import_record(row: &impl Columns) -> anyhow::Result<ImportRecord> {
    Ok(ImportRecord {
        id: row.id("id")?,
        list_id: row.id("list_id")?,
        created_by: row.text("created_by")?,
        file_name: row.text("file_name")?,
        source_note: row.text("source_note")?,
        mode: Mode::parse(&row.text("mode")?).context("An import has an unknown mode")?,
        created_at: row.time("created_at")?,
        applied_at: row.maybe_time("applied_at")?,
    })
}

pub(super) fn import_row(row: &impl Columns) -> anyhow::Result<ImportRow> {
    Ok(ImportRow {
        line: row.number("line")?,
        email: row.text("email")?,
        name: row.text("name")?,
        organisation: row.text("organisation")?,
        locality: row.text("locality")?,
        status: RowStatus::parse(&row.text("status")?)
            .context("An imported row has an unknown status")?,
        reason: row.maybe_text("reason")?,
    })
}

/// The copy a message is about, from the backends' `known_copy` queries.
pub(super) fn known_copy(row: &impl Columns) -> anyhow::Result<KnownCopy> {
    Ok(KnownCopy {
        issue: match (row.maybe_id("issue_id")?, row.maybe_id("list_id")?) {
            (Some(issue), Some(list)) => Some((issue, list)),
            _ => None,
        },
        subscriber_id: row.maybe_id("subscriber_id")?,
        outbox_id: row.maybe_id("outbox_id")?,
        recipient: row.text("recipient")?,
    })
}

pub(super) fn inbound_summary(row: &impl Columns) -> anyhow::Result<InboundSummary> {
    let recipients = match row.maybe_text("recipients")? {
        Some(json) => serde_json::from_str(&json).context("Stored recipients that are not JSON")?,
        None => Vec::new(),
    };
    Ok(InboundSummary {
        id: row.id("id")?,
        received_at: row.time("received_at")?,
        source: row.text("source")?,
        kind: Kind::parse(&row.text("kind")?)?,
        outcome: Outcome::parse(&row.text("outcome")?)?,
        status: row.maybe_text("status_code")?,
        diagnostic: row.maybe_text("diagnostic")?,
        recipients,
        read_as: row.text("read_as")?,
        issue_id: row.maybe_id("issue_id")?,
        subscriber_id: row.maybe_id("subscriber_id")?,
        email: row
            .maybe_text("email")?
            .filter(|email| !crate::audience::subscription::is_erased_address(email)),
    })
}

pub(super) fn suppression_entry(row: &impl Columns) -> anyhow::Result<SuppressionEntry> {
    let key = row
        .maybe_bytes("address_key")?
        .context("A suppression without its key")?;
    Ok(SuppressionEntry {
        key: crate::tokens::to_hex(&key),
        email: row
            .maybe_text("email")?
            .filter(|email| !crate::audience::subscription::is_erased_address(email)),
        subscriber_id: row.maybe_id("subscriber_id")?,
        domain: row.text("domain")?,
        reason: SuppressionReason::parse(&row.text("reason")?)?,
        added_by: row.text("added_by")?,
        note: row.maybe_text("note")?,
        inbound_id: row.maybe_id("inbound_id")?,
        created_at: row.time("created_at")?,
    })
}
