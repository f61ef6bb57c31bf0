//! Templates: the public pages (`src/pages/`) and the service's own mails
//! (`email_templates/`, but for the issue templates, which staff edit: see
//! `issues::templates`), in one minijinja environment, compiled into the binary and
//! parsed once at start-up. Files ending in `.html` are HTML-escaped; `.txt` files are not.

use std::sync::LazyLock;

use anyhow::Context;
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, escape_formatter,
    value::{Serde, Value, ValueKind},
};
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    ("pages/layout.html", include_str!("pages/layout.html")),
    ("pages/signup.html", include_str!("pages/signup.html")),
    (
        "pages/preferences.html",
        include_str!("pages/preferences.html"),
    ),
    (
        "pages/preferences_request.html",
        include_str!("pages/preferences_request.html"),
    ),
    (
        "pages/admin_lists.html",
        include_str!("pages/admin_lists.html"),
    ),
    (
        "pages/admin_list.html",
        include_str!("pages/admin_list.html"),
    ),
    (
        "pages/admin_list_fields.html",
        include_str!("pages/admin_list_fields.html"),
    ),
    (
        "pages/admin_list_picker.html",
        include_str!("pages/admin_list_picker.html"),
    ),
    (
        "pages/check_inbox.html",
        include_str!("pages/check_inbox.html"),
    ),
    ("pages/confirm.html", include_str!("pages/confirm.html")),
    ("pages/message.html", include_str!("pages/message.html")),
    (
        "pages/admin_login.html",
        include_str!("pages/admin_login.html"),
    ),
    (
        "pages/admin_layout.html",
        include_str!("pages/admin_layout.html"),
    ),
    (
        "pages/admin_dashboard.html",
        include_str!("pages/admin_dashboard.html"),
    ),
    (
        "pages/admin_issues.html",
        include_str!("pages/admin_issues.html"),
    ),
    (
        "pages/admin_issue.html",
        include_str!("pages/admin_issue.html"),
    ),
    (
        "pages/admin_templates.html",
        include_str!("pages/admin_templates.html"),
    ),
    (
        "pages/admin_template.html",
        include_str!("pages/admin_template.html"),
    ),
    (
        "pages/admin_brand.html",
        include_str!("pages/admin_brand.html"),
    ),
    (
        "pages/admin_bounces.html",
        include_str!("pages/admin_bounces.html"),
    ),
    (
        "pages/admin_subscribers.html",
        include_str!("pages/admin_subscribers.html"),
    ),
    (
        "pages/admin_subscriber.html",
        include_str!("pages/admin_subscriber.html"),
    ),
    (
        "pages/admin_send_now.html",
        include_str!("pages/admin_send_now.html"),
    ),
    (
        "pages/admin_account.html",
        include_str!("pages/admin_account.html"),
    ),
    (
        "pages/admin_password.html",
        include_str!("pages/admin_password.html"),
    ),
    (
        "pages/admin_forgot.html",
        include_str!("pages/admin_forgot.html"),
    ),
    (
        "pages/admin_two_factor.html",
        include_str!("pages/admin_two_factor.html"),
    ),
    (
        "pages/admin_two_factor_setup.html",
        include_str!("pages/admin_two_factor_setup.html"),
    ),
    (
        "pages/admin_recovery_codes.html",
        include_str!("pages/admin_recovery_codes.html"),
    ),
    (
        "pages/admin_users.html",
        include_str!("pages/admin_users.html"),
    ),
    (
        "pages/admin_tokens.html",
        include_str!("pages/admin_tokens.html"),
    ),
    (
        "pages/admin_imports.html",
        include_str!("pages/admin_imports.html"),
    ),
    (
        "pages/admin_import.html",
        include_str!("pages/admin_import.html"),
    ),
    (
        "pages/unsubscribe.html",
        include_str!("pages/unsubscribe.html"),
    ),
    (
        "email/layout.html",
        include_str!("../email_templates/layout.html"),
    ),
    (
        "email/confirmation.html",
        include_str!("../email_templates/confirmation.html"),
    ),
    (
        "email/confirmation.txt",
        include_str!("../email_templates/confirmation.txt"),
    ),
    (
        "email/already_subscribed.html",
        include_str!("../email_templates/already_subscribed.html"),
    ),
    (
        "email/already_subscribed.txt",
        include_str!("../email_templates/already_subscribed.txt"),
    ),
    (
        "email/preferences_link.txt",
        include_str!("../email_templates/preferences_link.txt"),
    ),
    (
        "email/preferences_link.html",
        include_str!("../email_templates/preferences_link.html"),
    ),
    (
        "email/staff_invite.html",
        include_str!("../email_templates/staff_invite.html"),
    ),
    (
        "email/staff_invite.txt",
        include_str!("../email_templates/staff_invite.txt"),
    ),
    (
        "email/staff_reset.html",
        include_str!("../email_templates/staff_reset.html"),
    ),
    (
        "email/staff_reset.txt",
        include_str!("../email_templates/staff_reset.txt"),
    ),
    (
        "email/welcome.html",
        include_str!("../email_templates/welcome.html"),
    ),
    (
        "email/welcome.txt",
        include_str!("../email_templates/welcome.txt"),
    ),
    ("pages/archive.html", include_str!("pages/archive.html")),
    ("pages/feed.xml", include_str!("pages/feed.xml")),
];

pub struct Templates {
    env: Environment<'static>,
}

static TEMPLATES_PARSED: LazyLock<Templates> =
    LazyLock::new(|| Templates::load().expect("the compiled-in templates parse (a test checks)"));

/// The templates, parsed on first use.
pub fn templates() -> &'static Templates {
    &TEMPLATES_PARSED
}

impl Templates {
    pub fn load() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.set_formatter(html_formatter);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .with_context(|| format!("Failed to parse the template {name}"))?;
        }
        Ok(Self { env })
    }

    pub fn render(&self, name: &str, context: &impl Serialize) -> anyhow::Result<String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(Serde(context)))
            .with_context(|| format!("Failed to render the template {name}"))
    }
}

/// minijinja's HTML escaping also escapes `/`, which turns every link in a mail into
/// `https:&#x2f;&#x2f;...`: valid, but mail clients and link checkers do not all agree.
/// Escape only what HTML needs; leave undefined, none and safe values to minijinja.
pub(crate) fn html_formatter(
    out: &mut Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    let plain = matches!(value.kind(), ValueKind::String | ValueKind::Number);
    if *state.auto_escape() != AutoEscape::Html || value.is_safe() || !plain {
        return escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped).map_err(|_| {
        Error::new(
            ErrorKind::WriteFailure,
            "Failed to write a template's output",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        Templates::load().unwrap();
    }

    #[test]
    fn every_template_file_is_registered() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (folder, prefix) in [("src/pages", "pages"), ("email_templates", "email")] {
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let file = entry.unwrap().file_name().into_string().unwrap();
                if let Some(issue) = file.strip_prefix("issue_") {
                    let name = issue.split('.').next().unwrap();
                    assert!(
                        crate::issues::templates::shipped(name).is_some(),
                        "{folder}/{file} is not in issues::templates::SHIPPED"
                    );
                    continue;
                }
                let name = format!("{prefix}/{file}");
                assert!(
                    TEMPLATES.iter().any(|(n, _)| *n == name),
                    "{folder}/{file} is not in TEMPLATES"
                );
            }
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let templates = Templates::load().unwrap();
        let context = serde_json::json!({
            "brand": crate::brand::BrandVersion::first().for_templates(),
            "public_url": "https://news.example",
            "list_name": "In <Partnership>",
            "confirm_url": "https://example.org/c?token=a&b",
            "expires": "1 December 2026",
        });
        let html = templates
            .render("email/confirmation.html", &context)
            .unwrap();
        assert!(html.contains("In &lt;Partnership&gt;"));
        let text = templates
            .render("email/confirmation.txt", &context)
            .unwrap();
        assert!(text.contains("https://example.org/c?token=a&b"));
    }
}
