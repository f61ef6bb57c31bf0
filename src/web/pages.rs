//! Rendering the public pages. Every page shares the layout in `src/pages/layout.html`.

use axum::{
    http::header,
    response::{Html, IntoResponse, Response},
};
use serde::Serialize;

use crate::templates::templates;

/// A page that says one thing: a result, or a problem and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct MessagePage {
    pub title: String,
    pub paragraphs: Vec<String>,
    /// Shows a link back to the sign-up form.
    pub offer_signup: bool,
}

impl MessagePage {
    pub fn new(title: &str, paragraphs: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
            offer_signup: false,
        }
    }

    pub fn offering_signup(mut self) -> Self {
        self.offer_signup = true;
        self
    }
}

pub fn render_page(page: &MessagePage) -> Html<String> {
    render("pages/message.html", page.title.as_str(), page)
}

/// Renders `template` with `context` plus the layout's `title`, `brand` and
/// `list_name` (the newsletter's name).
pub fn render(template: &str, title: &str, context: &impl Serialize) -> Html<String> {
    #[derive(Serialize)]
    struct WithLayout<'a, C: Serialize> {
        title: &'a str,
        list_name: &'a str,
        brand: minijinja::Value,
        #[serde(flatten)]
        context: &'a C,
    }
    let brand = super::branding::brand();
    let context = WithLayout {
        title,
        list_name: &brand.brand.newsletter,
        brand: brand.for_templates(),
        context,
    };
    match templates().render(template, &context) {
        Ok(html) => Html(html),
        // The templates are compiled in and tested; this is a bug, not a person's mistake.
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "A page failed to render");
            Html("<!DOCTYPE html><html lang=\"en-GB\"><title>Error</title><p>Sorry, this page could not be shown.</p></html>".into())
        }
    }
}

/// A page that carries a token: not cached, and not sent on in a Referer.
pub fn private(response: impl IntoResponse) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        response,
    )
        .into_response()
}
