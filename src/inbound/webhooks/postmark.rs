//! Postmark's bounce and spam-complaint webhooks. Postmark does not sign its calls; it
//! sends the basic auth written into the webhook's URL
//! (`https://USER:PASSWORD@news.example.org/webhooks/postmark`), which is checked here
//! (`POSTMARK_WEBHOOK_USER`, `POSTMARK_WEBHOOK_PASSWORD`). The copy is named by the
//! metadata each copy carries (`X-PM-Metadata-newsletter-copy`).

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;

use super::{COPY_METADATA, Event, Refusal, WebhookSettings, failure, reading, same, text};
use crate::inbound::Kind;

/// Checks the call's `Authorization` header and reads its event.
pub fn read(
    authorization: Option<&str>,
    body: &[u8],
    settings: &WebhookSettings,
) -> Result<Option<Event>, Refusal> {
    let Some((user, password)) = &settings.postmark else {
        return Err(Refusal::NotConfigured(
            "POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD",
        ));
    };
    let expected = format!("{user}:{password}");
    let given = authorization
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
        .unwrap_or_default();
    if !same(&given, expected.as_bytes()) {
        return Err(Refusal::Forged(
            "The webhook's credentials do not match".into(),
        ));
    }
    let event: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Unreadable("The body is not a Postmark event (JSON).".into()))?;
    let recipient = text(&event, "Email");
    let reading = match text(&event, "RecordType").as_deref() {
        Some("Bounce") => {
            let kind_name = text(&event, "Type").unwrap_or_default();
            let details = text(&event, "Details").or_else(|| text(&event, "Description"));
            let status = details.as_deref().and_then(crate::inbound::status_code);
            let kind = match kind_name.as_str() {
                "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated" => {
                    failure(true, status.as_deref(), details.as_deref())
                }
                "SpamComplaint" => Kind::Complaint,
                "AutoResponder" => Kind::AutoReply,
                "SoftBounce" | "Transient" | "DnsError" | "MailboxFull" | "SpamNotification" => {
                    Kind::Soft
                }
                _ => Kind::Unknown,
            };
            reading(kind, recipient, status, details, None, "postmark")
        }
        Some("SpamComplaint") => reading(Kind::Complaint, recipient, None, None, None, "postmark"),
        _ => return Ok(None),
    };
    Ok(Some(Event {
        id: format!(
            "postmark:{}:{}",
            text(&event, "RecordType").unwrap_or_default(),
            event["ID"]
        ),
        reading,
        envelope_sender: None,
        reference: text(&event["Metadata"], COPY_METADATA),
        raw: body.to_vec(),
    }))
}
