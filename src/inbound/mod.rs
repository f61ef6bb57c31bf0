//! What comes back from the mail world: bounces, complaints, auto-replies. `read` turns
//! one raw message into a `Reading` (what kind it is, which addresses failed, the
//! status code and the receiver's words, and the Message-ID of the mail it is about),
//! in plain Rust with nothing stored: the same reading serves `newsletter bounces
//! parse` (a person asking why) and, later, the pipeline that acts on it.
//!
//! Standard reports are read by their structure: RFC 3464 delivery status
//! notifications (and RFC 6533's `message/global-delivery-status`) in `report`, and
//! RFC 5965 feedback reports, of which only `Feedback-Type: abuse` is a complaint. The
//! bounces older or odder systems write in prose (qmail, Exim, Exchange, Yahoo, ...)
//! are read from their text in `prose`, and auto-replies (RFC 3834) are told apart
//! there too. What none of these understands is `Unknown`: kept for a person, never
//! counted.

pub mod imap;
pub mod intake;
mod prose;
mod report;
pub mod return_path;
pub mod verdict;
pub mod webhooks;

use mail_parser::{Message, MessageParser, MimeHeaders};
use serde::Serialize;

/// What a message that came back is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The address does not work, for good: the subscription ends.
    Hard,
    /// It failed this time (a full mailbox, a refusal by policy, a 4xx): counted, and
    /// enough of them count as a hard bounce.
    Soft,
    /// A delay or another notice that is not a failure: nothing is counted.
    Warning,
    /// The person reported the mail as spam (`Feedback-Type: abuse`).
    Complaint,
    /// An out-of-office or other automatic answer: not a bounce.
    AutoReply,
    /// Sent to a copy's unsubscribe address (`List-Unsubscribe`'s `mailto:`): its
    /// recipient asks to leave.
    Unsubscribe,
    /// Not understood: kept for a person to look at, never counted.
    Unknown,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Hard,
        Kind::Soft,
        Kind::Warning,
        Kind::Complaint,
        Kind::AutoReply,
        Kind::Unsubscribe,
        Kind::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hard => "hard",
            Kind::Soft => "soft",
            Kind::Warning => "warning",
            Kind::Complaint => "complaint",
            Kind::AutoReply => "auto-reply",
            Kind::Unsubscribe => "unsubscribe",
            Kind::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| anyhow::anyhow!("Unknown kind of inbound message {text:?}"))
    }

    /// Whether it counts against the address.
    pub fn is_failure(self) -> bool {
        matches!(self, Kind::Hard | Kind::Soft)
    }
}

/// What one message that came back says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reading {
    pub kind: Kind,
    /// The addresses it is about: those that failed, or who complained.
    pub recipients: Vec<String>,
    /// The RFC 3463 status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The receiving system's own words.
    pub diagnostic: Option<String>,
    /// The Message-ID of the mail it is about, from the copy or headers it quotes.
    pub message_id: Option<String>,
    /// How it was read: `delivery-status`, `feedback-report`, `prose`, `auto-reply`,
    /// `unsubscribe-address` (by the address it came to), or `none`.
    pub read_as: &'static str,
}

impl Reading {
    fn unknown() -> Self {
        Reading {
            kind: Kind::Unknown,
            recipients: Vec::new(),
            status: None,
            diagnostic: None,
            message_id: None,
            read_as: "none",
        }
    }
}

/// Reads one raw message (RFC 5322, as it arrived).
pub fn read(raw: &[u8]) -> Reading {
    match MessageParser::default().parse(raw) {
        Some(message) => read_message(&message),
        None => Reading::unknown(),
    }
}

/// Reads one raw message and finds the copy it is about (see `attribute`), parsing it
/// once. `mailbox` is `BOUNCE_ADDRESS`.
pub fn read_for(
    raw: &[u8],
    mailbox: &str,
    ring: &crate::keys::KeyRing,
) -> (Reading, Option<return_path::CopyRef>) {
    match MessageParser::default().parse(raw) {
        Some(message) => attribute(&message, read_message(&message), mailbox, ring),
        None => (Reading::unknown(), None),
    }
}

fn read_message(message: &Message<'_>) -> Reading {
    let mut reading = report::delivery_status(message)
        .or_else(|| report::feedback(message))
        .or_else(|| prose::bounce(message))
        .or_else(|| prose::auto_reply(message))
        .unwrap_or_else(Reading::unknown);
    if reading.message_id.is_none() {
        reading.message_id = quoted_message_id(message);
    }
    reading
}

/// The copy a message is about, and what it is once that is known: the address it came
/// to names the copy (one of our return addresses, or an unsubscribe address), or else
/// the Message-ID of the copy it quotes does.
fn attribute(
    message: &Message<'_>,
    mut reading: Reading,
    mailbox: &str,
    ring: &crate::keys::KeyRing,
) -> (Reading, Option<return_path::CopyRef>) {
    use return_path::{CopyRef, Returned};
    let returned = ["Delivered-To", "X-Original-To", "Envelope-To", "To"]
        .into_iter()
        .filter_map(|name| message.header_raw(name))
        .flat_map(|value| value.split(','))
        .map(|value| {
            let value = value.trim();
            value
                .rsplit_once('<')
                .map_or(value, |(_, address)| address.trim_end_matches('>'))
        })
        .find_map(|address| Returned::from_address(address, mailbox, ring));
    let copy = match returned {
        Some(Returned::Unsubscribe(copy)) => {
            reading.kind = Kind::Unsubscribe;
            reading.read_as = "unsubscribe-address";
            Some(copy)
        }
        Some(Returned::Bounce(copy)) => Some(copy),
        None => reading
            .message_id
            .as_deref()
            .and_then(|id| CopyRef::from_message_id(id, ring)),
    };
    (reading, copy)
}

/// The Message-ID of the original mail, from a quoted copy (`message/rfc822`) or its
/// headers (`text/rfc822-headers`).
fn quoted_message_id(message: &Message<'_>) -> Option<String> {
    message
        .parts
        .iter()
        .skip(1)
        .find_map(|part| match part.message() {
            Some(quoted) => quoted.message_id().map(str::to_owned),
            None if is_type(part, "text", "rfc822-headers") => MessageParser::default()
                .parse_headers(part.contents())
                .and_then(|quoted| quoted.message_id().map(str::to_owned)),
            None => None,
        })
}

/// Whether `part` is of this MIME type (case-insensitive).
fn is_type(part: &mail_parser::MessagePart<'_>, ctype: &str, subtype: &str) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case(subtype))
    })
}

/// An address as it should be compared: trimmed of `<>` and white space.
fn clean_address(text: &str) -> Option<String> {
    let address = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches(['>', '.', ',', ';', ':'])
        .trim();
    let (local, domain) = address.rsplit_once('@')?;
    // A dot-atom local part (RFC 5322: no empty, leading or trailing dot: Google's
    // `david...@gmail.com` is a hidden address, not one) and a host name.
    let plausible = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !address
            .chars()
            .any(|c| c.is_whitespace() || "<>()[]\",;".contains(c))
        && domain.contains('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-']);
    plausible.then(|| address.to_owned())
}

/// How serious a failure is, from its status code or, failing that, the SMTP reply.
/// A full mailbox, an oversized message or a refusal by policy (`5.7.x`: often a spam
/// filter) says nothing about whether the address works, so those are soft.
fn severity(status: Option<&str>, diagnostic: Option<&str>) -> Kind {
    // Words that say the mailbox is full, or the message too big, whatever the code.
    let words = diagnostic.unwrap_or_default().to_ascii_lowercase();
    let full = [
        "quota",
        "mailbox full",
        "mailbox is full",
        "storage space",
        "exceeded storage",
        "too large",
        "message size",
        "size limit",
    ];
    if full.iter().any(|w| words.contains(w)) {
        return Kind::Soft;
    }
    if let Some(status) = status {
        let mut parts = status.split('.');
        let class = parts.next().unwrap_or_default();
        let subject = parts.next().unwrap_or_default();
        let detail = parts.next().unwrap_or_default();
        return match (class, subject, detail) {
            ("5", "2", "2") | ("5", "3", "4") | ("5", "7", _) => Kind::Soft,
            ("5", _, _) => Kind::Hard,
            _ => Kind::Soft,
        };
    }
    // 552: storage exceeded (RFC 5321), like 5.2.2.
    match diagnostic.and_then(smtp_code) {
        Some(code) if code.starts_with('4') || code == "552" => Kind::Soft,
        _ => Kind::Hard,
    }
}

/// The first SMTP reply code (`550`) in a text.
fn smtp_code(text: &str) -> Option<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 3 && matches!(word.as_bytes()[0], b'4' | b'5'))
}

/// The first RFC 3463 status code (`5.1.1`) in a text, of the classes in `classes`.
fn status_code_of(text: &str, classes: &[&str]) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|word| word.trim_matches('.'))
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && classes.contains(&parts[0])
                && parts[1..]
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// The first RFC 3463 status code (`5.1.1`) in a report's field.
fn status_code(text: &str) -> Option<String> {
    status_code_of(text, &["2", "4", "5"])
}

#[cfg(test)]
mod tests;
