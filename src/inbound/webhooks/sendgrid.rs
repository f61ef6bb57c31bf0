//! SendGrid's signed event webhook. Each call carries an ECDSA (P-256, SHA-256)
//! signature of its timestamp and body, checked with the verification key SendGrid
//! shows (`SENDGRID_WEBHOOK_PUBLIC_KEY`, base64); a call more than 15 minutes old is
//! refused. A call holds many events; `bounce` (with `type` bounce or blocked) and `spamreport` are ours to
//! act on, named by our Message-ID (`smtp-id`).

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;

use super::{Event, Refusal, WebhookSettings, failure, reading, text};
use crate::inbound::Kind;

/// How old a signed call may be, in seconds.
const FRESH: i64 = 15 * 60;

/// The DER that starts every P-256 public key (SubjectPublicKeyInfo) before its point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// SendGrid's verification key: a P-256 point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationKey(Vec<u8>);

impl VerificationKey {
    /// From the base64 key SendGrid shows (a SubjectPublicKeyInfo).
    pub fn parse(base64: &str) -> anyhow::Result<Self> {
        let der = STANDARD
            .decode(base64.trim())
            .map_err(|_| anyhow::anyhow!("SENDGRID_WEBHOOK_PUBLIC_KEY is not base64"))?;
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == 65 && point[0] == 4 => Ok(Self(point.to_vec())),
            _ => anyhow::bail!(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 public key (copy the verification key from SendGrid's Mail Settings, Event Webhook)"
            ),
        }
    }

    /// The base64 SubjectPublicKeyInfo of a P-256 point, as SendGrid shows it.
    pub fn encode(point: &[u8]) -> String {
        STANDARD.encode([&P256_SPKI_PREFIX[..], point].concat())
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

/// Checks the call's signature (its two headers) and reads its events.
pub fn read(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    settings: &WebhookSettings,
    now: i64,
) -> Result<Vec<Event>, Refusal> {
    let Some(key) = &settings.sendgrid_key else {
        return Err(Refusal::NotConfigured("SENDGRID_WEBHOOK_PUBLIC_KEY"));
    };
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(Refusal::Forged("The call is not signed".into()));
    };
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| Refusal::Forged("The signature is not base64".into()))?;
    let signed = [timestamp.as_bytes(), body].concat();
    if !key.verifies(&signed, &signature) {
        return Err(Refusal::Forged("The signature does not match".into()));
    }
    if timestamp
        .trim()
        .parse::<i64>()
        .map_or(true, |t| (now - t).abs() > FRESH)
    {
        return Err(Refusal::Forged(
            "The signed call is too old (or from the future)".into(),
        ));
    }
    let events: Vec<Value> = serde_json::from_slice(body)
        .map_err(|_| Refusal::Unreadable("The body is not a list of SendGrid events.".into()))?;
    Ok(events.iter().filter_map(event).collect())
}

fn event(event: &Value) -> Option<Event> {
    let recipient = text(event, "email");
    let message_id = text(event, "smtp-id");
    let diagnostic = text(event, "reason").or_else(|| text(event, "response"));
    let status = text(event, "status")
        .and_then(|s| crate::inbound::status_code(&s))
        .or_else(|| diagnostic.as_deref().and_then(crate::inbound::status_code));
    let reading = match text(event, "event").as_deref() {
        Some("bounce") => {
            // `blocked` is SendGrid's word for a refusal that may pass next time.
            let permanent = text(event, "type").as_deref() != Some("blocked");
            let kind = failure(permanent, status.as_deref(), diagnostic.as_deref());
            reading(kind, recipient, status, diagnostic, message_id, "sendgrid")
        }
        Some("spamreport") => reading(
            Kind::Complaint,
            recipient,
            None,
            None,
            message_id,
            "sendgrid",
        ),
        _ => return None,
    };
    Some(Event {
        id: format!("sendgrid:{}", text(event, "sg_event_id")?),
        reading,
        envelope_sender: None,
        reference: None,
        raw: serde_json::to_vec(event).unwrap_or_default(),
    })
}
