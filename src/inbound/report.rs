//! Reports with a structure: RFC 3464 delivery status notifications and RFC 5965
//! feedback reports. Their fields are read as the RFCs define them: blocks of header
//! fields, the first about the message, each later one about one recipient.

use mail_parser::Message;

use super::{Kind, Reading, clean_address, is_type, severity, status_code};

/// One block of `Name: value` fields, names lower-cased, continuation lines unfolded.
fn fields(block: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    fields
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A typed value (`rfc822; jo@example.org`, `smtp; 550 ...`) without its type.
fn untyped(value: &str) -> &str {
    value.split_once(';').map_or(value, |(_, v)| v).trim()
}

/// The blocks of a report part: split at blank lines.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .map(fields)
        .filter(|block| !block.is_empty())
        .collect()
}

struct Recipient {
    address: String,
    action: String,
    status: Option<String>,
    diagnostic: Option<String>,
}

/// An RFC 3464 (or RFC 6533) delivery status notification.
pub(super) fn delivery_status(message: &Message<'_>) -> Option<Reading> {
    let part = message.parts.iter().find(|part| {
        is_type(part, "message", "delivery-status")
            || is_type(part, "message", "global-delivery-status")
    })?;
    let text = String::from_utf8_lossy(part.contents());
    let recipients = blocks(&text)
        .iter()
        .filter_map(|block| {
            // The address as we sent it, if the report keeps it; the final one may be
            // an alias it was forwarded to.
            let address = field(block, "original-recipient")
                .or_else(|| field(block, "final-recipient"))
                .map(untyped)
                .and_then(clean_address)?;
            Some(Recipient {
                address,
                action: field(block, "action")
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                status: field(block, "status").and_then(status_code),
                diagnostic: field(block, "diagnostic-code")
                    .or_else(|| field(block, "status"))
                    .map(|d| untyped(d).to_owned()),
            })
        })
        .fold(Vec::new(), |mut unique: Vec<Recipient>, r| {
            if !unique
                .iter()
                .any(|u| u.address.eq_ignore_ascii_case(&r.address))
            {
                unique.push(r);
            }
            unique
        });
    if recipients.is_empty() {
        return None;
    }
    // A failure names the worst of the failed recipients; without one, it is a notice.
    // Some systems write `failure` or `error`, or leave the action out of a 5.x.x.
    let failed: Vec<&Recipient> = recipients
        .iter()
        .filter(|r| {
            r.action.starts_with("fail")
                || r.action.starts_with("error")
                || (r.action.is_empty() && r.status.as_deref().is_some_and(|s| s.starts_with('5')))
        })
        .collect();
    let kind_of = |r: &Recipient| severity(r.status.as_deref(), r.diagnostic.as_deref());
    let (kind, named): (Kind, Vec<&Recipient>) = if failed.is_empty() {
        (Kind::Warning, recipients.iter().collect())
    } else if failed.iter().any(|r| kind_of(r) == Kind::Hard) {
        (Kind::Hard, failed)
    } else {
        (Kind::Soft, failed)
    };
    let first = named.first()?;
    Some(Reading {
        kind,
        recipients: named.iter().map(|r| r.address.clone()).collect(),
        status: first.status.clone(),
        diagnostic: first.diagnostic.clone(),
        message_id: None,
        read_as: "delivery-status",
    })
}

/// An RFC 5965 feedback report: a complaint when its type is `abuse`.
pub(super) fn feedback(message: &Message<'_>) -> Option<Reading> {
    let part = message
        .parts
        .iter()
        .find(|part| is_type(part, "message", "feedback-report"))?;
    let text = String::from_utf8_lossy(part.contents());
    let report = blocks(&text).into_iter().next().unwrap_or_default();
    let feedback_type = field(&report, "feedback-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Who complained: the report says, or the quoted original's `To` does.
    let recipient = field(&report, "original-rcpt-to")
        .map(untyped)
        .and_then(clean_address)
        .or_else(|| {
            message.parts.iter().skip(1).find_map(|part| {
                let quoted = part.message()?;
                quoted.to()?.first()?.address().and_then(clean_address)
            })
        });
    Some(Reading {
        kind: if feedback_type == "abuse" {
            Kind::Complaint
        } else {
            Kind::Unknown
        },
        recipients: recipient.into_iter().collect(),
        status: None,
        diagnostic: Some(format!("Feedback-Type: {feedback_type}")),
        message_id: None,
        read_as: "feedback-report",
    })
}
