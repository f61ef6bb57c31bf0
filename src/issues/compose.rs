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
        templates::{self, MailTemplate, UNSUBSCRIBE_MARK},
    },
    store::Store,
    time::uk_date,
};

#[derive(Debug, Clone)]
pub struct ComposedIssue {
    pub subject: String,
    /// The rendered parts, split where each recipient's unsubscribe link goes.
    html: Vec<String>,
    text: Vec<String>,
}

/// What an issue template is given (the editor lists it).
#[derive(Serialize)]
pub struct IssueContext<'a> {
    pub subject: &'a str,
    pub preheader: &'a str,
    /// When it is (or was) sent, in UK words.
    pub date: String,
    pub list_name: &'a str,
    pub brand: serde_json::Value,
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
        Ok(composed.html.join(&format!("{public_url}/unsubscribe")))
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
        let split = |text: String| -> Vec<String> {
            text.split(UNSUBSCRIBE_MARK).map(str::to_owned).collect()
        };
        let (html, text) = (split(html), split(text));
        anyhow::ensure!(
            html.len() > 1 && text.len() > 1,
            "The template {:?} has no unsubscribe link in both its parts",
            issue.template
        );
        Ok(Self {
            subject: issue.subject.clone(),
            html,
            text,
        })
    }

    /// One recipient's HTML and text, with their unsubscribe link.
    pub fn personalise(&self, unsubscribe_url: &str) -> (String, String) {
        let html_url = unsubscribe_url.replace('&', "&amp;").replace('"', "&quot;");
        (self.html.join(&html_url), self.text.join(unsubscribe_url))
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
