//! The suppression list: addresses no mail goes to, whatever their subscription says.
//! An entry is made by a hard bounce or a complaint (the pipeline in `inbound`), or by
//! staff (one address, or a CSV from a previous provider), and is kept as a keyed hash
//! of the address (`KeyRing::address_keys`), so that erasing a person leaves their
//! suppression in force without leaving their address.
//!
//! The rules, in plain Rust for both stores: a sign-up from a suppressed address gets a
//! confirmation mail at most once a month; confirming lifts a bounce (they fixed their
//! mailbox) or their having left (they came back), never a complaint, which only staff
//! lift.

use chrono::{DateTime, Duration, Utc};

/// Why an address is suppressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuppressionReason {
    /// Hard bounces (or enough soft ones): the address does not take mail.
    Bounce,
    /// The person reported a mail as spam.
    Complaint,
    /// Added by staff.
    Manual,
    /// From a previous provider's suppression list.
    Import,
    /// They left every list long enough ago that only this and their anonymised ledger
    /// are kept (`audience::retention`).
    Left,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 5] = [
        SuppressionReason::Bounce,
        SuppressionReason::Complaint,
        SuppressionReason::Manual,
        SuppressionReason::Import,
        SuppressionReason::Left,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Bounce => "bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Manual => "manual",
            SuppressionReason::Import => "import",
            SuppressionReason::Left => "left",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| anyhow::anyhow!("Unknown suppression reason {text:?}"))
    }

    /// Whether the person confirming a subscription lifts it: a bounce, since a
    /// mailbox that works again is what a confirmation shows; and their having left,
    /// since they came back themselves.
    pub fn lifted_by_confirming(self) -> bool {
        matches!(self, SuppressionReason::Bounce | SuppressionReason::Left)
    }

    /// The reasons confirming lifts, as stored.
    pub fn lifted_by_confirming_names() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|r| r.lifted_by_confirming())
            .map(Self::as_str)
            .collect()
    }
}

/// How often a suppressed address may be sent a confirmation mail when it signs up.
pub const ADMISSION_INTERVAL: Duration = Duration::days(30);

/// Whether a sign-up from a suppressed address gets its confirmation mail, given when
/// the last one past the suppression went.
pub fn admits_confirmation(last_admitted_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_admitted_at.is_none_or(|at| now - at >= ADMISSION_INTERVAL)
}

/// The part of an address staff see beside an entry: its domain, lower-cased.
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A suppression list from another service, read: the addresses, and the lines that
/// hold none.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SuppressionFile {
    pub addresses: Vec<String>,
    /// (line, what it held, why it is not taken).
    pub refused: Vec<(u64, String, String)>,
}

/// Reads a CSV suppression list as Mailchimp, SendGrid, Mailgun, Postmark or a
/// spreadsheet write it: a header naming the address column (`email`, `email address`,
/// `address`, `recipient`), or no header and an address first on each line. Commas,
/// semicolons or tabs; UTF-8. The other columns are not used.
pub fn read_suppression_csv(data: &[u8]) -> Result<SuppressionFile, String> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let text = std::str::from_utf8(data)
        .map_err(|_| "The file is not UTF-8 text: save it as CSV UTF-8.".to_owned())?;
    let first_line = text.lines().next().unwrap_or("");
    if first_line.trim().is_empty() {
        return Err("The file is empty.".into());
    }
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| (first_line.matches(char::from(*d)).count(), *d == b','))
        .unwrap_or(b',');
    let headerless = first_line.contains('@');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(!headerless)
        .from_reader(data);
    let column = if headerless {
        0
    } else {
        let headers = reader
            .headers()
            .map_err(|e| format!("The first line could not be read: {e}"))?;
        let key = |h: &str| -> String {
            h.trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect()
        };
        headers
            .iter()
            .position(|h| {
                matches!(
                    key(h).as_str(),
                    "email" | "emailaddress" | "address" | "recipient" | "mail"
                )
            })
            .ok_or_else(|| {
                format!(
                    "No column holds the addresses: name it “email”. The first line has: {}.",
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })?
    };
    let mut file = SuppressionFile::default();
    for record in reader.records() {
        let record = record.map_err(|e| format!("The file could not be read: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        let value = record.get(column).unwrap_or("").trim();
        if value.is_empty() && record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        match crate::audience::subscriber::SubscriberEmail::parse(value) {
            Ok(address) => file.addresses.push(address.as_str().to_owned()),
            Err(problem) => file.refused.push((line, value.to_owned(), problem)),
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppressed_address_is_invited_once_a_month() {
        let now = Utc::now();
        assert!(admits_confirmation(None, now));
        assert!(!admits_confirmation(Some(now - Duration::days(29)), now));
        assert!(admits_confirmation(Some(now - Duration::days(30)), now));
    }

    #[test]
    fn confirming_lifts_a_bounce_and_having_left_only() {
        use SuppressionReason::*;
        for reason in SuppressionReason::ALL {
            assert_eq!(SuppressionReason::parse(reason.as_str()).unwrap(), reason);
            assert_eq!(
                reason.lifted_by_confirming(),
                matches!(reason, Bounce | Left),
                "{reason:?}"
            );
        }
        assert_eq!(
            SuppressionReason::lifted_by_confirming_names(),
            ["bounce", "left"]
        );
    }

    #[test]
    fn a_suppression_list_is_read_from_what_other_services_export() {
        let mailchimp =
            "Email Address,First Name,REASON\njo@example.org,Jo,hard\nnot an address,Sam,hard\n";
        let read = read_suppression_csv(mailchimp.as_bytes()).unwrap();
        assert_eq!(read.addresses, ["jo@example.org"]);
        assert_eq!(read.refused.len(), 1);
        assert_eq!(read.refused[0].0, 3);
        let sendgrid = "created;email;reason\n1700000000;sam@example.org;550\n";
        assert_eq!(
            read_suppression_csv(sendgrid.as_bytes()).unwrap().addresses,
            ["sam@example.org"]
        );
        let bare = "a@example.org\nb@example.org\n\n";
        assert_eq!(
            read_suppression_csv(bare.as_bytes())
                .unwrap()
                .addresses
                .len(),
            2
        );
        assert!(
            read_suppression_csv(b"name,phone\nJo,1\n")
                .unwrap_err()
                .contains("email")
        );
    }

    #[test]
    fn the_domain_is_kept_lower_cased() {
        assert_eq!(domain_of("Jo@NHS.Net"), "nhs.net");
        assert_eq!(domain_of("no-at-sign"), "");
    }
}
