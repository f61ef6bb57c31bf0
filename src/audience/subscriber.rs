//! Domain types that are valid by construction. The sign-up handler turns what a person
//! typed into these once, at the edge, and nothing later touches the raw strings.

use serde::{Deserialize, Serialize};
use validator::ValidateEmail;

/// An email address, trimmed, with its domain lower-cased; the local part keeps the
/// case typed, for sending, and `key` compares addresses case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberEmail(String);

impl SubscriberEmail {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("Enter your email address.".into());
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err("Enter an email address in the form name@example.org.".into());
        };
        let email = format!("{local}@{}", domain.to_lowercase());
        // The address also goes into a mail header: no control characters, ever. A
        // domain with no dot (`jo@gmail`) is legal in RFC 5321 and a typo in practice.
        if email.len() > 254
            || email.chars().any(char::is_control)
            || !domain.contains('.')
            || !email.validate_email()
        {
            return Err("Enter an email address in the form name@example.org.".into());
        }
        // `.invalid` is reserved never to exist (RFC 2606): erased people's places are
        // there, and no mail to it arrives.
        if domain.to_ascii_lowercase().ends_with(".invalid") {
            return Err("Enter an email address that can receive mail: this domain cannot.".into());
        }
        // `jo@[127.0.0.1]` is legal, and no person's newsletter address.
        if domain.starts_with('[') || domain.parse::<std::net::IpAddr>().is_ok() {
            return Err(
                "Enter an email address with a domain name, such as name@example.org.".into(),
            );
        }
        if domain.split('.').any(mixes_scripts) {
            return Err(format!(
                "The domain {domain} mixes letters from different alphabets (such as a Cyrillic \u{201c}\u{430}\u{201d} among Latin letters), which is how look-alike addresses are made. Check the address and type it again."
            ));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the address is compared by: one person per mailbox (see `mailbox_key`).
    pub fn key(&self) -> String {
        mailbox_key(&self.0)
    }
}

/// An address as it is compared: letters lower-cased, so `Jo@example.org` and
/// `JO@EXAMPLE.org` are one person. ASCII letters only, as SQLite's `lower()` and
/// PostgreSQL's under the "C" collation do, so the database's unique key agrees.
/// (Mail servers treat local parts case-insensitively in practice, whatever RFC 5321
/// allows; sending keeps the form the person typed.)
pub fn mailbox_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// The alphabet a letter belongs to, for the look-alike check: Latin, Greek, Cyrillic,
/// or another (digits and hyphens belong to none).
fn script(c: char) -> Option<u8> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{c0}'..='\u{24f}' | '\u{1e00}'..='\u{1eff}' => Some(0),
        '\u{370}'..='\u{3ff}' | '\u{1f00}'..='\u{1fff}' => Some(1),
        '\u{400}'..='\u{52f}' => Some(2),
        c if c.is_alphabetic() => Some(3),
        _ => None,
    }
}

/// Whether a domain label mixes alphabets, as `exаmple` (with a Cyrillic `а`) does.
fn mixes_scripts(label: &str) -> bool {
    let mut scripts = label.chars().filter_map(script);
    scripts
        .next()
        .is_some_and(|first| scripts.any(|s| s != first))
}

const MAX_TEXT_LEN: usize = 256;

/// Free text a person types about themselves: one line, no markup, bounded.
fn parse_text(raw: &str, what: &str) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > MAX_TEXT_LEN {
        return Err(format!(
            "{what} must be {MAX_TEXT_LEN} characters or fewer."
        ));
    }
    if text.chars().any(|c| c == '<' || c == '>' || c.is_control()) {
        return Err(format!(
            "{what} must not contain < or > or control characters."
        ));
    }
    Ok(text.to_owned())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberName(String);

impl SubscriberName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = parse_text(raw, "Your name")?;
        if name.is_empty() {
            return Err("Enter your name.".into());
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organisation(String);

impl Organisation {
    /// An empty organisation is no organisation.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let text = parse_text(raw, "Organisation")?;
        Ok((!text.is_empty()).then_some(Self(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where in Gloucestershire a subscriber works: the six districts, or the whole county.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Locality {
    Cheltenham,
    Cotswold,
    ForestOfDean,
    Gloucester,
    Stroud,
    Tewkesbury,
    CountyWide,
}

impl Locality {
    pub const ALL: [Locality; 7] = [
        Locality::Cheltenham,
        Locality::Cotswold,
        Locality::ForestOfDean,
        Locality::Gloucester,
        Locality::Stroud,
        Locality::Tewkesbury,
        Locality::CountyWide,
    ];

    /// The value stored and sent by the form.
    pub fn slug(self) -> &'static str {
        match self {
            Locality::Cheltenham => "cheltenham",
            Locality::Cotswold => "cotswold",
            Locality::ForestOfDean => "forest-of-dean",
            Locality::Gloucester => "gloucester",
            Locality::Stroud => "stroud",
            Locality::Tewkesbury => "tewkesbury",
            Locality::CountyWide => "county-wide",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Locality::Cheltenham => "Cheltenham",
            Locality::Cotswold => "Cotswold",
            Locality::ForestOfDean => "Forest of Dean",
            Locality::Gloucester => "Gloucester",
            Locality::Stroud => "Stroud",
            Locality::Tewkesbury => "Tewkesbury",
            Locality::CountyWide => "County-wide / other",
        }
    }

    /// The name for a stored slug, as people read it; an unknown slug as it is.
    pub fn name_of(slug: &str) -> String {
        Self::ALL
            .into_iter()
            .find(|l| l.slug() == slug)
            .map_or_else(|| slug.to_owned(), |l| l.label().to_owned())
    }

    /// An empty choice is no locality; anything not on the list is refused.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        Self::ALL
            .into_iter()
            .find(|l| l.slug() == raw)
            .map(Some)
            .ok_or_else(|| "Choose a locality from the list.".to_owned())
    }
}

/// A sign-up that has passed every check.
#[derive(Clone, Debug)]
pub struct NewSubscriber {
    pub email: SubscriberEmail,
    pub name: SubscriberName,
    pub organisation: Option<Organisation>,
    pub locality: Option<Locality>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_domain_lower_cased_only() {
        let email = SubscriberEmail::parse("  Jo.Bloggs@Example.ORG \n").unwrap();
        assert_eq!(email.as_str(), "Jo.Bloggs@example.org");
    }

    #[test]
    fn bad_emails_are_refused() {
        for raw in [
            "",
            "   ",
            "no-at-sign",
            "@example.org",
            "jo@",
            "jo@@example.org",
            "jo bloggs@example.org",
            "jo@example.org\r\nBcc: x@y.z",
            "jo@gmail",
            "d1@[127.0.0.1]",
            "d1@[IPv6:::1]",
            "d1@127.0.0.1",
            "jo@ex\u{430}mple.org",
            "jo@\u{440}aypal.com",
        ] {
            assert!(SubscriberEmail::parse(raw).is_err(), "{raw:?} was accepted");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(SubscriberEmail::parse(&long).is_err());
    }

    #[test]
    fn domains_in_one_alphabet_are_fine_and_mixed_ones_are_explained() {
        assert!(SubscriberEmail::parse("jo@bücher.de").is_ok());
        assert!(SubscriberEmail::parse("jo@пример.рф").is_ok());
        assert!(SubscriberEmail::parse("jo@xn--e1afmkfd.xn--p1ai").is_ok());
        let err = SubscriberEmail::parse("jo@ex\u{430}mple.org").unwrap_err();
        assert!(err.contains("different alphabets"), "{err}");
    }

    #[test]
    fn names_are_bounded_and_plain() {
        assert_eq!(SubscriberName::parse(" Jo ").unwrap().as_str(), "Jo");
        assert!(SubscriberName::parse("  ").is_err());
        assert!(SubscriberName::parse("<b>Jo</b>").is_err());
        assert!(SubscriberName::parse("Jo\u{7}").is_err());
        assert!(SubscriberName::parse(&"é".repeat(256)).is_ok());
        assert!(SubscriberName::parse(&"é".repeat(257)).is_err());
    }

    #[test]
    fn organisation_may_be_empty() {
        assert_eq!(Organisation::parse(" ").unwrap(), None);
        assert_eq!(
            Organisation::parse("GVCS").unwrap().unwrap().as_str(),
            "GVCS"
        );
        assert!(Organisation::parse("a>b").is_err());
    }

    #[test]
    fn localities_round_trip_and_unknown_is_refused() {
        for locality in Locality::ALL {
            assert_eq!(Locality::parse(locality.slug()).unwrap(), Some(locality));
        }
        assert_eq!(Locality::parse("").unwrap(), None);
        assert!(Locality::parse("bristol").is_err());
    }
}
