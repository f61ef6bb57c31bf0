//! Subscriptions and their consent ledger: leaving, erasure, and what staff read
//! about the people on a list.

use crate::audience::segment::Segment;
use crate::audience::subscription::{SubscriptionStatus, UnsubscribeOutcome};
use anyhow::Context;
use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::tokens::UnsubscribeToken;

/// How a consent event came about: the request's origin and the wording shown.
#[derive(Clone, Debug)]
pub struct ConsentContext {
    pub method: ConsentMethod,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentMethod {
    Form,
    Api,
    Link,
    /// RFC 8058: the mail client's own unsubscribe button.
    OneClick,
    /// A bounce or complaint that came back by mail (IMAP or the pipe).
    Mail,
    /// A bounce or complaint a relay provider reported by webhook.
    Webhook,
    /// A mail to `List-Unsubscribe`'s `mailto:` address.
    Mailto,
    /// Staff, in the web UI.
    Admin,
    /// The person, on their preference page.
    Preferences,
    /// The retention rule: they left every list long ago (`audience::retention`).
    Retention,
}

impl ConsentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMethod::Form => "form",
            ConsentMethod::Api => "api",
            ConsentMethod::Link => "link",
            ConsentMethod::OneClick => "one-click",
            ConsentMethod::Mail => "mail",
            ConsentMethod::Webhook => "webhook",
            ConsentMethod::Mailto => "mailto",
            ConsentMethod::Admin => "admin",
            ConsentMethod::Preferences => "preferences",
            ConsentMethod::Retention => "retention",
        }
    }
}

/// A subscriber of a list, as staff see them.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberSummary {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub organisation: Option<String>,
    pub locality: Option<String>,
    pub status: SubscriptionStatus,
    pub created_at: DateTime<Utc>,
}

/// One entry of a subscriber's consent ledger.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    /// The list it was about.
    pub list_name: String,
    pub kind: String,
    pub method: String,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub wording_version: Option<String>,
    /// The issue whose link it came from.
    pub issue_subject: Option<String>,
    /// The import that made it, and the lawful basis the importer gave.
    pub import_id: Option<Uuid>,
    pub import_note: Option<String>,
    /// For a bounce or complaint: the status code and the receiving system's words.
    pub evidence: Option<String>,
}

#[derive(Clone, Debug)]
pub struct UnsubscribeRequest {
    pub token: UnsubscribeToken,
    /// Leave every list, not only the token's ("leave everything").
    pub everything: bool,
    pub consent: ConsentContext,
    pub now: DateTime<Utc>,
}

/// Which of a list's subscribers to show, a page at a time: those whose address, name
/// or organisation contains `search`, in `status` (any, if none), in `segment`.
#[derive(Clone, Debug)]
pub struct SubscriberQuery<'a> {
    pub list_id: Uuid,
    pub search: &'a str,
    pub status: Option<SubscriptionStatus>,
    pub segment: Option<&'a Segment>,
    pub offset: u32,
    pub limit: u32,
}

impl<'a> SubscriberQuery<'a> {
    /// Everyone on the list matching `search`, in any status.
    pub fn search(list_id: Uuid, search: &'a str, offset: u32, limit: u32) -> Self {
        Self {
            list_id,
            search,
            status: None,
            segment: None,
            offset,
            limit,
        }
    }

    /// The `FROM … WHERE …` both stores run (`like` is `LIKE` or `ILIKE`): `$1` the
    /// list, `$2` the search pattern, `$3` the status or null, the segment's values
    /// after them. Only our own text is in it; every value is bound.
    pub(super) fn matching(&self, like: &str) -> crate::audience::segment::Filter {
        let segment = self.segment.cloned().unwrap_or_default().filter(4);
        crate::audience::segment::Filter {
            condition: format!(
                "FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
                 WHERE sub.list_id = $1
                   AND (s.email {like} $2 ESCAPE '\\' OR s.name {like} $2 ESCAPE '\\'
                        OR coalesce(s.organisation, '') {like} $2 ESCAPE '\\')
                   AND (CAST($3 AS TEXT) IS NULL OR sub.status = $3)
                   AND {}",
                segment.condition
            ),
            params: segment.params,
        }
    }

    pub(super) fn pattern(&self) -> String {
        contains_pattern(self.search)
    }

    pub(super) fn status(&self) -> Option<&'static str> {
        self.status.map(SubscriptionStatus::as_str)
    }
}

/// A page of a list's subscribers, and how many match in all.
#[derive(Clone, Debug)]
pub struct SubscriberPage {
    pub subscribers: Vec<SubscriberSummary>,
    pub total: i64,
}

/// One UTC day's sign-ups and unsubscribes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayCounts {
    pub day: chrono::NaiveDate,
    pub signups: i64,
    pub unsubscribes: i64,
}

impl DayCounts {
    /// From (day as `YYYY-MM-DD`, sign-ups, unsubscribes) rows, as both stores read them.
    pub(super) fn from_rows(rows: Vec<(String, i64, i64)>) -> anyhow::Result<Vec<Self>> {
        rows.into_iter()
            .map(|(day, signups, unsubscribes)| {
                Ok(DayCounts {
                    day: day.parse().context("A day that is not a date")?,
                    signups,
                    unsubscribes,
                })
            })
            .collect()
    }
}

/// How many of a list's subscribers are in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberCounts {
    pub pending: i64,
    pub confirmed: i64,
    pub unsubscribed: i64,
    pub bounced: i64,
    pub complained: i64,
}

impl SubscriberCounts {
    /// From (status, count) rows, as both stores read them.
    pub(super) fn from_rows(rows: Vec<(String, i64)>) -> anyhow::Result<Self> {
        let mut counts = Self::default();
        for (status, count) in rows {
            *counts.of(SubscriptionStatus::parse(&status)?) = count;
        }
        Ok(counts)
    }

    fn of(&mut self, status: SubscriptionStatus) -> &mut i64 {
        match status {
            SubscriptionStatus::Pending => &mut self.pending,
            SubscriptionStatus::Confirmed => &mut self.confirmed,
            SubscriptionStatus::Unsubscribed => &mut self.unsubscribed,
            SubscriptionStatus::Bounced => &mut self.bounced,
            SubscriptionStatus::Complained => &mut self.complained,
        }
    }

    /// Each status with its count, in `SubscriptionStatus::ALL`'s order.
    pub fn by_status(mut self) -> Vec<(SubscriptionStatus, i64)> {
        SubscriptionStatus::ALL
            .into_iter()
            .map(|status| (status, *self.of(status)))
            .collect()
    }
}

/// A LIKE pattern that matches text containing `search` (trimmed), with `\`, `%` and
/// `_` escaped so that they match themselves (`ESCAPE '\'`).
pub(super) fn contains_pattern(search: &str) -> String {
    let mut pattern = String::from("%");
    for c in search.trim().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

use super::Removal;

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Ends a subscription and records who asked, how, and from which issue.
    async fn unsubscribe(&self, request: &UnsubscribeRequest)
    -> anyhow::Result<UnsubscribeOutcome>;
    /// How many of the list's subscribers are in each status.
    async fn subscriber_counts(&self, list_id: Uuid) -> anyhow::Result<SubscriberCounts>;
    /// How many people an issue to the list and segment would reach now.
    async fn reach(&self, list_id: Uuid, segment: Option<&Segment>) -> anyhow::Result<i64>;
    /// A page of the list's subscribers that the query matches, by address; and how
    /// many match in all.
    async fn subscribers(&self, query: &SubscriberQuery<'_>) -> anyhow::Result<SubscriberPage>;
    /// Every list the person has a subscription to (in any status), by list id.
    async fn subscriptions_of(
        &self,
        subscriber_id: Uuid,
    ) -> anyhow::Result<Vec<(Uuid, SubscriptionStatus)>>;
    async fn subscriber(
        &self,
        id: Uuid,
        list_id: Uuid,
    ) -> anyhow::Result<Option<SubscriberSummary>>;
    /// The next `limit` subscribers of the list after the address `after`, by address:
    /// a whole list can be read a page at a time, however long it is. The places
    /// erased people leave are not among them.
    async fn subscribers_after(
        &self,
        list_id: Uuid,
        after: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<SubscriberSummary>>;
    /// Everything the subscriber agreed to or withdrew, oldest first.
    async fn consent_ledger(&self, subscriber_id: Uuid) -> anyhow::Result<Vec<ConsentRecord>>;
    /// Removes the subscriber's personal data everywhere it is kept (their row, the
    /// ledger's IPs and user agents, queued mail, relay replies that may quote the
    /// address), ends their subscriptions, and records the erasure on each of their
    /// lists, as done by `method` (staff, or the person on their own page).
    async fn erase_subscriber(
        &self,
        id: Uuid,
        method: ConsentMethod,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Removal>;
    /// Up to `limit` people, with their addresses, who are on no list now (every
    /// subscription ended, or pending with no link that works since `left_before`) and
    /// whose subscriptions last changed before `left_before`; the erased are not among
    /// them.
    async fn departed_before(
        &self,
        left_before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<(Uuid, String)>>;
    /// The status on the list of each of these addresses that has a subscription, by
    /// mailbox key (`audience::subscriber::mailbox_key`).
    async fn subscription_statuses(
        &self,
        list_id: Uuid,
        emails: &[String],
    ) -> anyhow::Result<HashMap<String, SubscriptionStatus>>;
    /// Sign-ups and unsubscribes per UTC day since `since`, for the days that had any.
    async fn daily_signups_and_unsubscribes(
        &self,
        list_id: Uuid,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<DayCounts>>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_search_matches_its_own_wildcards_literally() {
        assert_eq!(super::contains_pattern(" jo "), "%jo%");
        assert_eq!(super::contains_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
    }
}
