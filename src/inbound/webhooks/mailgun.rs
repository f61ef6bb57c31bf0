//! Mailgun's event webhooks (`failed`, `complained`). Each call is signed: an HMAC-SHA256
//! of its timestamp and token under the signing key (`MAILGUN_WEBHOOK_SIGNING_KEY`),
//! and a call more than 15 minutes old is refused (a replayed one is taken once, by its
//! event id). The copy is named by the envelope sender Mailgun saw, or our Message-ID.

use ring::hmac;
use serde_json::Value;

use super::{Event, Refusal, WebhookSettings, failure, reading, same, text};
use crate::inbound::Kind;

/// How old a signed call may be, in seconds.
const FRESH: i64 = 15 * 60;

/// The signature Mailgun makes for a timestamp and token: hex HMAC-SHA256.
pub fn signature(key: &str, timestamp: &str, token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    let tag = hmac::sign(&key, format!("{timestamp}{token}").as_bytes());
    crate::tokens::to_hex(tag.as_ref())
}

/// Checks the call's signature and reads its event.
pub fn read(body: &[u8], settings: &WebhookSettings, now: i64) -> Result<Option<Event>, Refusal> {
    let Some(key) = &settings.mailgun_key else {
        return Err(Refusal::NotConfigured("MAILGUN_WEBHOOK_SIGNING_KEY"));
    };
    let call: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Unreadable("The body is not a Mailgun event (JSON).".into()))?;
    let signed = &call["signature"];
    let (Some(timestamp), Some(token), Some(given)) = (
        text(signed, "timestamp"),
        text(signed, "token"),
        text(signed, "signature"),
    ) else {
        return Err(Refusal::Forged("The call is not signed".into()));
    };
    if !same(
        signature(key, &timestamp, &token).as_bytes(),
        given.to_ascii_lowercase().as_bytes(),
    ) {
        return Err(Refusal::Forged("The signature does not match".into()));
    }
    if timestamp
        .parse::<i64>()
        .map_or(true, |t| (now - t).abs() > FRESH)
    {
        return Err(Refusal::Forged(
            "The signed call is too old (or from the future)".into(),
        ));
    }
    let event = &call["event-data"];
    let recipient = text(event, "recipient");
    let message_id = text(&event["message"]["headers"], "message-id");
    let status_words = &event["delivery-status"];
    let diagnostic = text(status_words, "message").or_else(|| text(status_words, "description"));
    let status = text(status_words, "enhanced-code")
        .or_else(|| diagnostic.as_deref().and_then(crate::inbound::status_code));
    let reading = match text(event, "event").as_deref() {
        Some("failed") => {
            let permanent = text(event, "severity").as_deref() == Some("permanent");
            let kind = failure(permanent, status.as_deref(), diagnostic.as_deref());
            reading(kind, recipient, status, diagnostic, message_id, "mailgun")
        }
        Some("complained") => reading(
            Kind::Complaint,
            recipient,
            None,
            None,
            message_id,
            "mailgun",
        ),
        _ => return Ok(None),
    };
    Ok(Some(Event {
        id: format!("mailgun:{}", text(event, "id").unwrap_or(token)),
        reading,
        envelope_sender: text(&event["envelope"], "sender"),
        reference: None,
        raw: serde_json::to_vec(event).unwrap_or_default(),
    }))
}
