//! Composing an issue's mail. The template is rendered once per issue with a marker
//! where the recipient's unsubscribe link goes; each recipient's copy is then that
//! text with their own link spliced in. A template that fails to render fails here,
//! before anything is sent.
//!
//! An issue that has started sending renders with the template and brand versions it
//! recorded then (`versions`), so a later edit of either changes no copy of it.

use anyhow::Context;
use chrono::Utc;
use minijinja::Value;
use serde::Serialize;

use crate::{
    brand::BrandVersion,
    issues::{
        Issue,
        markdown::{self, Site},
        templates::{self, MailTemplate, PREFERENCES_MARK, UNSUBSCRIBE_MARK},
    },
    sending::quoted_printable,
    store::Store,
    time::uk_date,
};

#[derive(Debug, Clone)]
pub struct ComposedIssue {
    pub subject: String,
    /// The rendered parts, split where each recipient's own links go.
    html: Vec<Piece>,
    text: Vec<Piece>,
}

/// A piece of a composed part: text as rendered (or encoded), or the place of a
/// recipient's link.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<T = String> {
    Text(T),
    Unsubscribe,
    Preferences,
}

/// An issue's parts in quoted-printable, encoded once for all its copies: each copy
/// encodes only its own links (`sending::quoted_printable`).
#[derive(Debug, Clone)]
pub struct EncodedIssue {
    html: Vec<Piece<Vec<u8>>>,
    text: Vec<Piece<Vec<u8>>>,
}

impl EncodedIssue {
    /// One recipient's HTML and text, encoded, with their own links.
    pub fn personalise(&self, links: &RecipientLinks) -> (Vec<u8>, Vec<u8>) {
        let join = |pieces: &[Piece<Vec<u8>>], unsubscribe: &str, preferences: &str| {
            let mut out = Vec::with_capacity(pieces.iter().map(Piece::len).sum::<usize>() + 400);
            for piece in pieces {
                match piece {
                    Piece::Text(encoded) => out.extend_from_slice(encoded),
                    Piece::Unsubscribe => quoted_printable::encode_piece(unsubscribe, &mut out),
                    Piece::Preferences => quoted_printable::encode_piece(preferences, &mut out),
                }
            }
            out
        };
        (
            join(
                &self.html,
                &attribute(&links.unsubscribe),
                &attribute(&links.preferences),
            ),
            join(&self.text, &links.unsubscribe, &links.preferences),
        )
    }
}

impl Piece<Vec<u8>> {
    fn len(&self) -> usize {
        match self {
            Piece::Text(encoded) => encoded.len(),
            _ => 0,
        }
    }
}

/// A link as an HTML attribute's value.
fn attribute(url: &str) -> String {
    url.replace('&', "&amp;").replace('"', "&quot;")
}

/// One recipient's own links, which go where the template put `unsubscribe_url` and
/// `preferences_url`.
#[derive(Debug, Clone)]
pub struct RecipientLinks {
    pub unsubscribe: String,
    pub preferences: String,
}

/// `text` cut at each mark of a recipient's link.
fn pieces(mut text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    loop {
        let next = [
            (UNSUBSCRIBE_MARK, Piece::Unsubscribe),
            (PREFERENCES_MARK, Piece::Preferences),
        ]
        .into_iter()
        .filter_map(|(mark, piece)| text.find(mark).map(|at| (at, mark.len(), piece)))
        .min_by_key(|(at, _, _)| *at);
        let Some((at, len, piece)) = next else {
            pieces.push(Piece::Text(text.to_owned()));
            return pieces;
        };
        pieces.push(Piece::Text(text[..at].to_owned()));
        pieces.push(piece);
        text = &text[at + len..];
    }
}

/// The pieces joined, with `unsubscribe` and `preferences` in their places.
fn joined(pieces: &[Piece], unsubscribe: &str, preferences: &str) -> String {
    let mut out = String::new();
    for piece in pieces {
        out.push_str(match piece {
            Piece::Text(text) => text,
            Piece::Unsubscribe => unsubscribe,
            Piece::Preferences => preferences,
        });
    }
    out
}

/// What an issue template is given (the editor lists it).
#[derive(Serialize)]
pub struct IssueContext<'a> {
    pub subject: &'a str,
    pub preheader: &'a str,
    /// When it is (or was) sent, in UK words.
    pub date: String,
    pub list_name: &'a str,
    pub brand: minijinja::Value,
    /// The logo's whole address, if there is one.
    pub logo_url: Option<String>,
    pub public_url: &'a str,
    /// Marked safe: it is HTML we rendered from the Markdown.
    pub body_html: Value,
    pub body_text: String,
    /// The issue in a browser (its page in the archive).
    pub archive_url: String,
    pub signup_url: String,
    pub unsubscribe_url: &'a str,
    /// The recipient's own page (their details and newsletters).
    pub preferences_url: &'a str,
    /// Rendering for the archive page rather than a mail.
    pub in_browser: bool,
}

impl<'a> IssueContext<'a> {
    pub fn new(issue: &'a Issue, brand: &'a BrandVersion, public_url: &'a str) -> Self {
        let site = Site {
            public_url,
            link_colour: &brand.brand.link_colour,
        };
        Self {
            subject: &issue.subject,
            preheader: &issue.preheader,
            date: uk_date(issue.send_at.unwrap_or_else(Utc::now)),
            list_name: &brand.brand.newsletter,
            brand: brand.for_templates(),
            logo_url: brand
                .brand
                .logo
                .as_ref()
                .map(|logo| format!("{public_url}{}", logo.path)),
            public_url,
            body_html: Value::from_safe_string(markdown::to_html(&issue.body_markdown, &site)),
            body_text: markdown::to_text(&issue.body_markdown),
            archive_url: format!("{public_url}/archive/{}", issue.slug()),
            signup_url: format!("{public_url}/"),
            unsubscribe_url: UNSUBSCRIBE_MARK,
            preferences_url: PREFERENCES_MARK,
            in_browser: false,
        }
    }
}

/// The template and brand an issue renders with: those it recorded when it started
/// sending, or the current ones before that. `Err(Missing)` if its template (or that
/// version of the brand) is not there: the issue cannot be rendered.
pub async fn versions(
    store: &dyn Store,
    issue: &Issue,
) -> anyhow::Result<Result<(MailTemplate, BrandVersion), Missing>> {
    let template = match issue.template_version {
        Some(version) => store.template_version(&issue.template, version).await?,
        None => store.current_template(&issue.template).await?,
    };
    let Some(template) = template else {
        return Ok(Err(Missing(format!(
            "There is no template called {:?}.",
            issue.template
        ))));
    };
    let brand = match issue.brand_version {
        Some(version) => match store.brand_version(version).await? {
            Some(brand) => brand,
            None => {
                return Ok(Err(Missing(format!(
                    "There is no version {version} of the brand."
                ))));
            }
        },
        None => store.current_brand().await?,
    };
    Ok(Ok((template, brand)))
}

/// What an issue needs to be rendered and is not there.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Missing(pub String);

impl ComposedIssue {
    pub fn compose(
        issue: &Issue,
        template: &MailTemplate,
        brand: &BrandVersion,
        public_url: &str,
    ) -> anyhow::Result<Self> {
        Self::render(issue, template, IssueContext::new(issue, brand, public_url))
    }

    /// The issue as its archive page shows it: the mail, without a way out of it.
    pub fn in_browser(
        issue: &Issue,
        template: &MailTemplate,
        brand: &BrandVersion,
        public_url: &str,
    ) -> anyhow::Result<String> {
        let mut context = IssueContext::new(issue, brand, public_url);
        context.in_browser = true;
        let composed = Self::render(issue, template, context)?;
        Ok(joined(
            &composed.html,
            &format!("{public_url}/unsubscribe"),
            &format!("{public_url}/preferences"),
        ))
    }

    fn render(
        issue: &Issue,
        template: &MailTemplate,
        context: IssueContext,
    ) -> anyhow::Result<Self> {
        let (html, text) = templates::render(template, &context)
            .with_context(|| format!("The template {:?} does not render", issue.template))?;
        // The template passed its checks with the sample issue; this issue may take it
        // down another path.
        let problems = templates::output_problems(&html, &text);
        anyhow::ensure!(
            problems.is_empty(),
            "The template {:?} makes a mail that cannot be sent with this issue: {}",
            issue.template,
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (html, text) = (pieces(&html), pieces(&text));
        anyhow::ensure!(
            html.contains(&Piece::Unsubscribe) && text.contains(&Piece::Unsubscribe),
            "The template {:?} has no unsubscribe link in both its parts",
            issue.template
        );
        Ok(Self {
            subject: issue.subject.clone(),
            html,
            text,
        })
    }

    /// The parts in quoted-printable, for `EncodedIssue::personalise`.
    pub fn encoded(&self) -> EncodedIssue {
        let encode = |pieces: &[Piece]| {
            pieces
                .iter()
                .map(|piece| match piece {
                    Piece::Text(text) => {
                        let mut encoded = Vec::with_capacity(text.len() + text.len() / 8);
                        quoted_printable::encode_piece(text, &mut encoded);
                        Piece::Text(encoded)
                    }
                    Piece::Unsubscribe => Piece::Unsubscribe,
                    Piece::Preferences => Piece::Preferences,
                })
                .collect()
        };
        EncodedIssue {
            html: encode(&self.html),
            text: encode(&self.text),
        }
    }

    /// One recipient's HTML and text, with their own links.
    pub fn personalise(&self, links: &RecipientLinks) -> (String, String) {
        (
            joined(
                &self.html,
                &attribute(&links.unsubscribe),
                &attribute(&links.preferences),
            ),
            joined(&self.text, &links.unsubscribe, &links.preferences),
        )
    }
}

/// An issue to try a template on: a bit of everything staff write.
pub fn sample_issue() -> Issue {
    let now = Utc::now();
    Issue {
        id: uuid::Uuid::nil(),
        number: 0,
        list_slug: String::new(),
        subject: "Winter news from the partnership".into(),
        preheader: "Know Your Patch, new hubs, and dates for the spring".into(),
        body_markdown: SAMPLE_BODY.into(),
        template: String::new(),
        status: super::IssueStatus::Draft,
        send_at: Some(now),
        finished_at: None,
        created_at: now,
        updated_at: now,
        withdrawn: None,
        paused_reason: None,
        template_version: None,
        brand_version: None,
        sent_anyway: None,
        segment: None,
    }
}

const SAMPLE_BODY: &str = "Welcome to the winter issue. This quarter the partnership met \
in Stroud and agreed how [Know Your Patch](https://example.org/kyp) meetings will run in \
2027.\n\n## In this issue\n\n- Integrated Locality Partnerships\n- New community hubs\n- \
Dates for your diary\n\n## Integrated Locality Partnerships\n\nEach of the six localities \
now has a voluntary sector representative. **Contact them** through the hub nearest you.\n\n\
> We are stronger when we plan together.\n\n| Locality | Meets |\n| --- | --- |\n| Stroud | \
Second Tuesday |\n| Forest of Dean | First Thursday |\n";

#[cfg(test)]
mod tests;
