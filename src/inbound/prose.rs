//! Messages read from their words: the bounces that older or odder systems write in
//! prose (qmail, Exim, Exchange, Yahoo, GroupWise, ...), and automatic replies. A
//! message is taken for a bounce only when its sender or subject says so, and its
//! failed addresses are the ones its own text names (not its headers, and not the
//! copy of our mail it quotes).

use mail_parser::{Message, decoders::html::html_to_text};

use super::{Kind, Reading, clean_address, is_type, severity, smtp_code, status_code_of};

/// Who sends bounces.
const BOUNCE_SENDERS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail-daemon",
    "mailerdaemon",
    "mdaemon",
    "mail delivery",
];

/// What bounces are called, lower-cased.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "returned mail",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "failure notice",
    "could not be delivered",
    "not delivered",
    "nondeliverable",
    "non-deliverable",
    "returned to sender",
    "mail system error",
    "permanent error",
    "unzustellbar",
    "non remis",
    "delivery notification",
    "mail delivery",
    "unknown user",
    "user unknown",
];

/// Words that make a bounce a notice, not a failure.
const WARNINGS: &[&str] = &[
    "delay",
    "will retry",
    "will continue",
    "still trying",
    "not yet been delivered",
    "has not been delivered yet",
    "deferred",
];

/// Where a bounce's own words end and the copy of the original begins.
const QUOTE_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "original message headers",
    "----- original message",
    "------ this is a copy",
    "the header of the original message",
    "--- the header of the original",
    "unsent message below",
    "message headers follow",
    "text of the original message",
];

/// What automatic replies are called, lower-cased.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto:",
    "autoreply",
    "auto-reply",
    "auto reply",
    "automatische antwort",
    "abwesenheit",
    "réponse automatique",
    "away from the office",
    "on leave",
    "on annual leave",
    "vacation",
];

fn lower(text: Option<&str>) -> String {
    text.unwrap_or_default().to_lowercase()
}

/// A bounce written in prose, when its sender or subject says it is one.
pub(super) fn bounce(message: &Message<'_>) -> Option<Reading> {
    let from = message.from().and_then(|a| a.first());
    let sender = format!(
        "{} {}",
        lower(from.and_then(|a| a.name())),
        lower(from.and_then(|a| a.address()))
    );
    let subject = lower(message.subject());
    let looks_like_one = BOUNCE_SENDERS.iter().any(|s| sender.contains(s))
        || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
        || is_type(message.root_part(), "multipart", "report");
    if !looks_like_one {
        return None;
    }
    let text = own_words(message);
    let lowered = text.to_lowercase();
    // The bounce's own addresses (from, to, return path) are not the ones that failed.
    let own: Vec<String> = [message.from(), message.to(), message.reply_to()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .chain(message.return_address())
        .map(str::to_lowercase)
        .collect();
    let mut recipients: Vec<String> = Vec::new();
    for address in failed_addresses(&text) {
        let key = address.to_lowercase();
        let ours = own.contains(&key)
            || BOUNCE_SENDERS
                .iter()
                .any(|s| key.starts_with(&format!("{s}@")));
        if !ours && !recipients.iter().any(|r| r.to_lowercase() == key) {
            recipients.push(address);
        }
    }
    if recipients.is_empty() {
        return None;
    }
    // A failure's code: a 2.x.x in prose is more often a version number.
    let status = status_code_of(&text, &["4", "5"]);
    let diagnostic = text
        .lines()
        .map(str::trim)
        .find(|line| {
            status.as_deref().is_some_and(|s| line.contains(s)) || smtp_code(line).is_some()
        })
        .map(|line| line.chars().take(300).collect::<String>());
    let warning = WARNINGS
        .iter()
        .any(|w| subject.contains(w) || lowered.contains(w));
    let kind = if warning && !status.as_deref().is_some_and(|s| s.starts_with('5')) {
        Kind::Warning
    } else {
        severity(status.as_deref(), diagnostic.as_deref())
    };
    Some(Reading {
        kind,
        recipients,
        status,
        diagnostic,
        message_id: None,
        read_as: "prose",
    })
}

/// An automatic reply (RFC 3834's `Auto-Submitted`, the headers autoresponders add, or
/// the subjects they write): who sent it, and nothing counted.
pub(super) fn auto_reply(message: &Message<'_>) -> Option<Reading> {
    let header = |name: &str| lower(message.header_raw(name)).trim().to_owned();
    let auto_submitted = header("Auto-Submitted");
    let flagged = (!auto_submitted.is_empty() && auto_submitted != "no")
        || !header("X-Autoreply").is_empty()
        || !header("X-Autorespond").is_empty()
        || header("Precedence") == "auto_reply";
    let subject = lower(message.subject());
    if !flagged && !AUTO_REPLY_SUBJECTS.iter().any(|s| subject.contains(s)) {
        return None;
    }
    let sender = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(clean_address);
    Some(Reading {
        kind: Kind::AutoReply,
        recipients: sender.into_iter().collect(),
        status: None,
        diagnostic: message.subject().map(str::to_owned),
        message_id: None,
        read_as: "auto-reply",
    })
}

/// The text of the message's own parts (HTML made text), up to where it starts
/// quoting the original.
fn own_words(message: &Message<'_>) -> String {
    let mut text = String::new();
    for part in &message.parts {
        if part.is_text_html() {
            text.push_str(&html_to_text(part.text_contents().unwrap_or_default()));
        } else if part.is_text() {
            text.push_str(part.text_contents().unwrap_or_default());
        }
        text.push('\n');
    }
    // ASCII lower-casing keeps every byte where it was, so the offset fits `text`.
    let lowered = text.to_ascii_lowercase();
    // A quoted copy starts at a marker, or at the first trace header it copies.
    let trace = ["\nreceived: ", "\nreturn-path: "]
        .iter()
        .filter_map(|header| lowered.find(header));
    let cut = QUOTE_MARKERS
        .iter()
        .filter_map(|marker| lowered.find(marker))
        .chain(trace)
        .min()
        .unwrap_or(text.len());
    text.truncate(cut);
    text
}

/// Every address a line names, in order.
fn addresses(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| c.is_whitespace() || "<>()[]\"',;:=".contains(c))
        .filter(|word| word.contains('@'))
        .filter_map(clean_address)
}

/// Words of the lines that say an address failed.
const FAILURE_WORDS: &[&str] = &[
    "unknown",
    "not found",
    "does not exist",
    "doesn't exist",
    "no such",
    "invalid",
    "rejected",
    "refused",
    "failed",
    "failure",
    "undeliverable",
    "unavailable",
    "disabled",
    "inactive",
    "quota",
    "full",
    "not delivered",
    "could not be delivered",
    "permanent",
    "error",
    "unrouteable",
    "no mailbox",
    "not listed",
    "bad destination",
    "unable to deliver",
    "not reach",
    "died",
    "recipient",
    "addressed to",
    "not known",
    "not been delivered",
    "no longer valid",
    "did not exactly match",
    "did not match",
];

/// The most addresses taken from one bounce.
const MAX_ADDRESSES: usize = 50;

/// Header fields a bounce may copy into its text: the addresses on them are not the
/// ones that failed.
const HEADER_LINES: &[&str] = &[
    "from:",
    "to:",
    "cc:",
    "sender:",
    "reply-to:",
    "return-path:",
    "message-id:",
    "in-reply-to:",
    "references:",
    "received:",
    "errors-to:",
    "list-",
    "x-",
    "subject:",
    "date:",
    "delivered-to:",
    "precedence:",
];

/// The addresses a bounce's text says failed: those on a line about a failure (or on
/// the line before one), and those standing alone on a line (`<jo@example.org>:` in
/// qmail, an indented address in Exim); never one on a copied header line.
fn failed_addresses(text: &str) -> Vec<String> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_ascii_lowercase())
        .collect();
    let is_header = |line: &str| HEADER_LINES.iter().any(|h| line.starts_with(h));
    let says_failure = |line: &str| {
        !is_header(line)
            && (FAILURE_WORDS.iter().any(|w| line.contains(w))
                || smtp_code(line).is_some()
                || status_code_of(line, &["4", "5"]).is_some())
    };
    let mut found = Vec::new();
    for (i, original) in text.lines().enumerate() {
        // A bounce is about one copy, or a few: a list of thousands is not read to its end.
        if found.len() >= MAX_ADDRESSES {
            break;
        }
        let line = &lines[i];
        if is_header(line) {
            continue;
        }
        // `mail from x@y` names the sender (us), not the recipient.
        let named: Vec<String> = addresses(original)
            .filter(|a| {
                let a = a.to_ascii_lowercase();
                !line.contains(&format!("mail from {a}"))
                    && !line.contains(&format!("mail from <{a}"))
            })
            .collect();
        if named.is_empty() {
            continue;
        }
        let alone = original
            .split(|c: char| c.is_whitespace() || "<>:\"".contains(c))
            .filter(|w| !w.is_empty())
            .count()
            == named.len();
        let near = i.saturating_sub(3)..(i + 3).min(lines.len());
        let nearby_says = near.clone().any(|j| j != i && says_failure(&lines[j]));
        if alone || says_failure(line) || nearby_says {
            found.extend(named);
        }
    }
    found
}
