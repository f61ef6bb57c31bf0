//! The newsletter's brand and wording, as admins set them in the browser: names, logo,
//! colours, who sends it and where they are, the privacy notice, the sign-up page's
//! introduction and the consent sentence. Every save is a new version (the mails of an
//! issue keep the version they went out with), and the consent sentence is versioned
//! on its own so that the ledger keeps the words each person agreed to.
//!
//! The rules are here, in plain Rust: what each field may hold, and that every colour
//! pair passes WCAG 2.2 AA (a failing pair is refused with its ratio).

pub mod contrast;

use serde::{Deserialize, Serialize};

use crate::fields::FieldError;
use contrast::{AA_TEXT, Colour, ratio_words};

/// The brand a fresh install has: exactly what the service showed before it could be
/// changed.
pub fn default_brand() -> Brand {
    Brand {
        organisation: "Gloucestershire VCSE Strategic Partnership".into(),
        newsletter: "In Partnership".into(),
        description: "the quarterly newsletter of the Gloucestershire VCSE Strategic Partnership"
            .into(),
        logo: None,
        header_colour: "#1d4f91".into(),
        header_text_colour: "#ffffff".into(),
        link_colour: "#1d4f91".into(),
        postal_address: String::new(),
        contact: String::new(),
        privacy_url: String::new(),
        signup_intro: "Every quarter we write about how the voluntary, community and social enterprise sector in Gloucestershire works with the NHS, the county council and other partners in One Gloucestershire. We will send you an email to confirm your address first.".into(),
        consent_text: DEFAULT_CONSENT.into(),
    }
}

/// The consent sentence of the first version, `signup-2026-11`.
pub const DEFAULT_CONSENT: &str = "I would like to receive In Partnership, the quarterly newsletter of the \
Gloucestershire VCSE Strategic Partnership, by email. I can unsubscribe at any time with the link \
at the foot of every issue.";
pub const DEFAULT_CONSENT_VERSION: &str = "signup-2026-11";

/// What the brand says and how it looks. Kept as JSON: a field added later reads as
/// its default in the versions saved before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Brand {
    pub organisation: String,
    /// The newsletter's name, in every header and subject line.
    pub newsletter: String,
    /// What the newsletter is, to follow its name: "In Partnership, {description}".
    pub description: String,
    pub logo: Option<Logo>,
    /// The header band's background, and the text on it.
    pub header_colour: String,
    pub header_text_colour: String,
    /// Links, on white.
    pub link_colour: String,
    /// Where the sender is, as it is written on an envelope (lines).
    pub postal_address: String,
    /// How to reach the sender: an email address or a web address.
    pub contact: String,
    /// The privacy notice, an https address.
    pub privacy_url: String,
    pub signup_intro: String,
    pub consent_text: String,
}

impl Default for Brand {
    fn default() -> Self {
        default_brand()
    }
}

/// The logo: one of our images, and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logo {
    /// `/media/...`
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub alt: String,
}

/// The height a logo is shown at, in mails and pages.
pub const LOGO_HEIGHT: u32 = 48;

impl Logo {
    /// The width it is shown at, at `LOGO_HEIGHT`.
    pub fn shown_width(&self) -> u32 {
        (self.width * LOGO_HEIGHT)
            .div_ceil(self.height.max(1))
            .max(1)
    }
}

/// A brand as it was saved: its version, and the version of its consent sentence.
#[derive(Debug, Serialize)]
pub struct BrandVersion {
    pub version: i64,
    pub consent_version: String,
    #[serde(flatten)]
    pub brand: Brand,
    /// `for_templates`, made once: every page and mail shows the brand. A version is
    /// not changed once saved; the stores and the brand cache make new ones.
    #[serde(skip)]
    view: std::sync::OnceLock<minijinja::Value>,
}

/// A clone makes its own template value: it may be changed before it is shown.
impl Clone for BrandVersion {
    fn clone(&self) -> Self {
        Self::new(
            self.version,
            self.consent_version.clone(),
            self.brand.clone(),
        )
    }
}

impl BrandVersion {
    pub fn new(version: i64, consent_version: String, brand: Brand) -> Self {
        Self {
            version,
            consent_version,
            brand,
            view: Default::default(),
        }
    }

    /// The brand before anyone has changed it.
    pub fn first() -> Self {
        Self::new(1, DEFAULT_CONSENT_VERSION.into(), default_brand())
    }

    /// What templates (pages and mails) see as `brand`: the fields, with the contact as
    /// a link (`contact_href`), the logo's shown width (`logo.shown_width`), the
    /// address's lines (`address_lines`, and joined by commas: `address_line`) and the
    /// introduction's paragraphs. Made once, and shared (a clone is a reference count).
    pub fn for_templates(&self) -> minijinja::Value {
        self.view
            .get_or_init(|| minijinja::Value::from(minijinja::value::Serde(self.view())))
            .clone()
    }

    fn view(&self) -> serde_json::Value {
        let mut view = serde_json::to_value(self).unwrap_or_default();
        view["contact_href"] = self.brand.contact_href().into();
        if let Some(logo) = &self.brand.logo {
            view["logo"]["shown_width"] = logo.shown_width().into();
        }
        let lines: Vec<&str> = self
            .brand
            .postal_address
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        view["address_line"] = lines.join(", ").into();
        view["address_lines"] = lines.into();
        view["intro_paragraphs"] = paragraphs(&self.brand.signup_intro).into();
        view
    }

    /// The hash of the consent sentence, as the ledger records it.
    pub fn consent_hash(&self) -> String {
        crate::tokens::sha256_hex(self.brand.consent_text.as_bytes())
    }
}

/// The name a new consent sentence's version gets: the day and the start of its hash,
/// so the same words always get the same name.
pub fn consent_version_name(text: &str, today: chrono::NaiveDate) -> String {
    let hash = crate::tokens::sha256_hex(text.as_bytes());
    format!("signup-{}-{}", today.format("%Y-%m-%d"), &hash[..8])
}

/// Limits, in characters.
const MAX_NAME: usize = 120;
const MAX_LINE: usize = 300;
const MAX_ADDRESS: usize = 400;
const MAX_TEXT: usize = 2_000;

impl Brand {
    /// Checks every field, normalises colours and trims text; the problems by field.
    pub fn check(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut required = |field: &'static str, value: &mut String, max: usize, what: &str| {
            *value = value.trim().to_owned();
            if value.is_empty() {
                errors.push(FieldError::new(field, format!("Enter {what}.")));
            } else if value.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("Keep {what} to {max} characters or fewer."),
                ));
            }
        };
        required(
            "organisation",
            &mut self.organisation,
            MAX_NAME,
            "the organisation's name",
        );
        required(
            "newsletter",
            &mut self.newsletter,
            MAX_NAME,
            "the newsletter's name",
        );
        required(
            "description",
            &mut self.description,
            MAX_LINE,
            "what the newsletter is",
        );
        required(
            "signup_intro",
            &mut self.signup_intro,
            MAX_TEXT,
            "the sign-up page's introduction",
        );
        required(
            "consent_text",
            &mut self.consent_text,
            MAX_TEXT,
            "the consent sentence",
        );
        for (field, value, max, what) in [
            (
                "postal_address",
                &mut self.postal_address,
                MAX_ADDRESS,
                "the postal address",
            ),
            ("contact", &mut self.contact, MAX_LINE, "the contact"),
            (
                "privacy_url",
                &mut self.privacy_url,
                MAX_LINE,
                "the privacy notice's address",
            ),
        ] {
            *value = value.trim().replace("\r\n", "\n");
            if value.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("Keep {what} to {max} characters or fewer."),
                ));
            }
        }
        for (field, value) in [
            ("organisation", &self.organisation),
            ("newsletter", &self.newsletter),
            ("description", &self.description),
            ("contact", &self.contact),
            ("privacy_url", &self.privacy_url),
        ] {
            if value.chars().any(char::is_control) {
                errors.push(FieldError::new(field, "Keep it to one line."));
            }
        }
        if !self.privacy_url.is_empty() && !is_web_address(&self.privacy_url) {
            errors.push(FieldError::new(
                "privacy_url",
                "Give the privacy notice's whole address, starting https://.",
            ));
        }
        if !self.contact.is_empty() && !is_web_address(&self.contact) && !is_email(&self.contact) {
            errors.push(FieldError::new(
                "contact",
                "Give an email address (such as news@example.org) or a whole web address starting https://.",
            ));
        }
        for (field, value, what) in [
            (
                "header_colour",
                &mut self.header_colour,
                "the header colour",
            ),
            (
                "header_text_colour",
                &mut self.header_text_colour,
                "the header's text colour",
            ),
            ("link_colour", &mut self.link_colour, "the link colour"),
        ] {
            match Colour::parse(value) {
                Some(c) => *value = c.to_string(),
                None => errors.push(FieldError::new(
                    field,
                    format!("Give {what} as a hex colour, such as #1d4f91."),
                )),
            }
        }
        let pairs = self.contrast_pairs();
        for (field, what, front, back) in pairs {
            if let (Some(front), Some(back)) = (front, back) {
                let ratio = front.contrast(back);
                if ratio < AA_TEXT {
                    errors.push(FieldError::new(
                        field,
                        format!(
                            "The contrast of {what} ({front} on {back}) is {}; WCAG 2.2 AA needs at least 4.5 to 1. Choose a darker or lighter colour.",
                            ratio_words(ratio)
                        ),
                    ));
                }
            }
        }
        if let Some(logo) = &mut self.logo {
            logo.alt = logo.alt.trim().to_owned();
            if logo.alt.is_empty() || logo.alt.chars().count() > MAX_LINE {
                errors.push(FieldError::new(
                    "logo_alt",
                    "Say what the logo says (usually the organisation's name), in 300 characters or fewer.",
                ));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// The colour pairs text sits in that must pass AA: (the field to blame, what the
    /// pair is, text, background); a colour that does not parse is None.
    pub fn contrast_pairs(
        &self,
    ) -> [(&'static str, &'static str, Option<Colour>, Option<Colour>); 2] {
        [
            (
                "header_text_colour",
                "the header's text on the header colour",
                Colour::parse(&self.header_text_colour),
                Colour::parse(&self.header_colour),
            ),
            (
                "link_colour",
                "links on white",
                Colour::parse(&self.link_colour),
                Some(Colour::WHITE),
            ),
        ]
    }

    /// The contact as a link: `mailto:` for an address.
    pub fn contact_href(&self) -> Option<String> {
        if self.contact.is_empty() {
            None
        } else if is_email(&self.contact) {
            Some(format!("mailto:{}", self.contact))
        } else {
            Some(self.contact.clone())
        }
    }
}

/// Text split where a blank line is.
pub fn paragraphs(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_web_address(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
        && !text.contains(char::is_whitespace)
}

fn is_email(text: &str) -> bool {
    crate::audience::subscriber::SubscriberEmail::parse(text).is_ok()
}

#[cfg(test)]
mod tests;
