//! Composing an issue's mail. The template is rendered once per issue with a marker
//! where the recipient's unsubscribe link goes; each recipient's copy is then that
//! text with their own link spliced in. A template that fails to render fails here,
//! before anything is sent.

use anyhow::Context;
use minijinja::Value;
use serde::Serialize;

use crate::{
    issues::Issue,
    issues::markdown::{self, Site},
    templates::templates,
};

/// Stands in for the recipient's unsubscribe link while the template renders once.
const UNSUBSCRIBE_MARK: &str = "https://unsubscribe.invalid/recipient-link";

#[derive(Debug, Clone)]
pub struct ComposedIssue {
    pub subject: String,
    /// The rendered parts, split where each recipient's unsubscribe link goes.
    html: Vec<String>,
    text: Vec<String>,
}

#[derive(Serialize)]
struct IssueContext<'a> {
    subject: &'a str,
    preheader: &'a str,
    list_name: &'a str,
    /// Marked safe: it is HTML we rendered from the Markdown.
    body_html: Value,
    body_text: String,
    unsubscribe_url: &'static str,
}

impl ComposedIssue {
    pub fn compose(issue: &Issue, list_name: &str, site: &Site) -> anyhow::Result<Self> {
        let context = IssueContext {
            subject: &issue.subject,
            preheader: &issue.preheader,
            list_name,
            body_html: Value::from_safe_string(markdown::to_html(&issue.body_markdown, site)),
            body_text: markdown::to_text(&issue.body_markdown),
            unsubscribe_url: UNSUBSCRIBE_MARK,
        };
        let render = |part: &str| {
            templates()
                .render(&format!("email/issue_{}.{part}", issue.template), &context)
                .with_context(|| format!("The template {:?} does not render", issue.template))
        };
        let split = |text: String| -> Vec<String> {
            text.split(UNSUBSCRIBE_MARK).map(str::to_owned).collect()
        };
        let html = split(render("html")?);
        let text = split(render("txt")?);
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::issues::IssueStatus;

    const SITE: Site = Site {
        public_url: "https://news.example",
    };

    fn issue(body: &str) -> Issue {
        Issue {
            id: Uuid::now_v7(),
            number: 1,
            list_slug: "in-partnership".into(),
            subject: "Winter <news>".into(),
            preheader: "What is new in the partnership".into(),
            body_markdown: body.into(),
            template: "standard".into(),
            status: IssueStatus::Draft,
            send_at: None,
            finished_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            withdrawn: None,
            paused_reason: None,
        }
    }

    #[test]
    fn each_recipient_gets_their_own_link_in_both_parts() {
        let composed =
            ComposedIssue::compose(&issue("Hello **all**."), "In Partnership", &SITE).unwrap();
        let (html, text) = composed.personalise("https://n.example/unsubscribe?token=abc");
        assert!(html.contains("href=\"https://n.example/unsubscribe?token=abc\""));
        assert!(text.contains("https://n.example/unsubscribe?token=abc"));
        assert!(!html.contains(UNSUBSCRIBE_MARK) && !text.contains(UNSUBSCRIBE_MARK));
        let (other, _) = composed.personalise("https://n.example/unsubscribe?token=xyz");
        assert!(other.contains("token=xyz") && !other.contains("token=abc"));
    }

    #[test]
    fn the_body_is_html_and_the_rest_is_escaped() {
        let composed =
            ComposedIssue::compose(&issue("Hello **all**."), "In Partnership", &SITE).unwrap();
        let (html, text) = composed.personalise("https://n.example/u");
        assert!(html.contains("<p style=\"margin:0 0 16px;\">Hello <strong>all</strong>.</p>"));
        assert!(html.contains("<title>Winter &lt;news&gt;</title>"));
        assert!(html.contains("<html lang=\"en-GB\">"));
        assert!(html.contains("What is new in the partnership"));
        assert!(text.starts_with("Winter <news>\n\nHello all.\n"));
    }

    #[test]
    fn an_unknown_template_is_an_error() {
        let mut broken = issue("Hi");
        broken.template = "missing".into();
        let err = ComposedIssue::compose(&broken, "In Partnership", &SITE).unwrap_err();
        assert!(format!("{err:#}").contains("\"missing\""), "{err:#}");
    }
}
