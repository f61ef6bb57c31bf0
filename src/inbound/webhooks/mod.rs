//! What relay providers report by webhook: Amazon SES (through SNS), Postmark, Mailgun
//! and SendGrid. Each provider's module checks that a call is really from it (a
//! signature, or credentials) and reads its events into the same `Reading` a bounce
//! mail gives, with what names the copy (the envelope sender the provider saw, our
//! Message-ID, or the reference we gave it). `Intake::take_event` then takes each one
//! through the pipeline. An event that names no copy of ours counts against nobody.

pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod ses;

use super::Reading;

/// What each provider needs to be believed; a provider with nothing set has no webhook.
#[derive(Clone, Debug, Default)]
pub struct WebhookSettings {
    /// `SES_SNS_TOPIC_ARNS`: the SNS topics SES notifications may come from.
    pub ses_topics: Vec<String>,
    /// `SNS_CERT_HOSTS`: hosts besides `sns.<region>.amazonaws.com` that may serve SNS
    /// signing certificates (for a test; plain http only from this machine).
    pub sns_cert_hosts: Vec<String>,
    /// `POSTMARK_WEBHOOK_USER` and `POSTMARK_WEBHOOK_PASSWORD`: the basic auth in the
    /// webhook's URL.
    pub postmark: Option<(String, String)>,
    /// `MAILGUN_WEBHOOK_SIGNING_KEY`.
    pub mailgun_key: Option<String>,
    /// `SENDGRID_WEBHOOK_PUBLIC_KEY`: the signed event webhook's verification key.
    pub sendgrid_key: Option<sendgrid::VerificationKey>,
}

/// One event a provider reported, read.
#[derive(Clone, Debug)]
pub struct Event {
    /// The provider's own id for the event: the same event sent again is taken once.
    pub id: String,
    pub reading: Reading,
    /// The envelope sender the provider saw: our return address for the copy.
    pub envelope_sender: Option<String>,
    /// The reference we gave the provider for the copy (Postmark's metadata).
    pub reference: Option<String>,
    /// The event as it came, kept as the evidence.
    pub raw: Vec<u8>,
}

/// Why a webhook call is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The provider's webhook is not set up here.
    NotConfigured(&'static str),
    /// The signature or credentials do not check out.
    Forged(String),
    /// Not what the provider sends.
    Unreadable(String),
}

/// The metadata key Postmark is given (as `X-PM-Metadata-newsletter-copy`) for each
/// copy, and reports back.
pub const COPY_METADATA: &str = "newsletter-copy";

/// `a` and `b` are equal, compared in constant time.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// A string field of a JSON object, trimmed, if it is there and not empty.
pub(crate) fn text(value: &serde_json::Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The angle brackets around a Message-ID, taken off.
pub(crate) fn bare_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// What a failure the provider reports is: `permanent` as our own reading of its
/// status code and words would have it (a full mailbox is soft however it is labelled),
/// and anything else soft.
pub(crate) fn failure(
    permanent: bool,
    status: Option<&str>,
    diagnostic: Option<&str>,
) -> super::Kind {
    if permanent {
        super::severity(status, diagnostic)
    } else {
        super::Kind::Soft
    }
}

/// A reading of one event.
pub(crate) fn reading(
    kind: super::Kind,
    recipient: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
    message_id: Option<String>,
    read_as: &'static str,
) -> Reading {
    Reading {
        kind,
        recipients: recipient
            .and_then(|r| super::clean_address(&r))
            .into_iter()
            .collect(),
        status,
        diagnostic,
        message_id: message_id
            .map(|id| bare_message_id(&id))
            .filter(|id| !id.is_empty()),
        read_as,
    }
}
