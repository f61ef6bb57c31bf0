//! Issue templates: shipped in `email_templates/issue_*`, kept in the database with
//! every version staff save, and rendered in a sandbox. A template is one HTML and one
//! text part, and nothing else: each render gets an environment of its own that holds
//! only those two, so `include`, `import` and `extends` find nothing, there is no
//! loader and no function that reads a file, and fuel bounds how long it can run.
//! `check` is what a staff member's edit must pass before it is saved.

use anyhow::Context;
use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde::Serialize;

use crate::fields::FieldError;

/// A template as it is kept: one version of one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailTemplate {
    pub name: String,
    pub version: i64,
    pub html: String,
    pub text: String,
}

/// A template that ships with the service.
#[derive(Clone, Copy, Debug)]
pub struct Shipped {
    pub name: &'static str,
    /// What it is for, in the template picker.
    pub description: &'static str,
    pub html: &'static str,
    pub text: &'static str,
}

/// The shipped templates, in the order staff see them. The first is the default.
pub const SHIPPED: &[Shipped] = &[
    Shipped {
        name: "standard",
        description: "The standard issue: the date under the title, sections and pictures.",
        html: include_str!("../../email_templates/issue_standard.html"),
        text: include_str!("../../email_templates/issue_standard.txt"),
    },
    Shipped {
        name: "announcement",
        description: "A short announcement: one message, its title on the brand colour.",
        html: include_str!("../../email_templates/issue_announcement.html"),
        text: include_str!("../../email_templates/issue_announcement.txt"),
    },
];

pub fn shipped(name: &str) -> Option<&'static Shipped> {
    SHIPPED.iter().find(|t| t.name == name)
}

/// How much work one render may do (minijinja's fuel: about one unit per instruction).
/// The shipped templates use a few hundred.
const FUEL: u64 = 100_000;
/// The largest part, in bytes.
pub const MAX_PART: usize = 100_000;
/// The most a template may make of the sample issue, both parts, in bytes.
const MAX_RENDERED: usize = 500_000;

/// Filters that build a new string or list from their input: with a repeated sequence
/// (`[body_html] * 99000`) they would build one far larger than any mail, before any
/// limit on the output could see it. Templates do without them.
const AMPLIFYING_FILTERS: &[&str] = &[
    "join",
    "replace",
    "indent",
    "tojson",
    "pprint",
    "urlencode",
    "format",
    "string",
    "list",
    "reverse",
    "sort",
    "unique",
    "batch",
    "slice",
    "map",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "items",
    "dictsort",
];

/// Collects what a render writes, and fails once it passes `MAX_RENDERED`.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_RENDERED {
            return Err(std::io::Error::other(format!(
                "the mail would be larger than {} KB",
                MAX_RENDERED / 1000
            )));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders both parts with `context`: (html, text). Each may be `MAX_RENDERED` at most.
pub fn render(
    template: &MailTemplate,
    context: &impl Serialize,
) -> anyhow::Result<(String, String)> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_formatter(crate::templates::html_formatter);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(20);
    for filter in AMPLIFYING_FILTERS {
        env.remove_filter(filter);
    }
    env.add_template_owned("issue.html", template.html.clone())
        .context("The HTML part does not parse")?;
    env.add_template_owned("issue.txt", template.text.clone())
        .context("The text part does not parse")?;
    let part = |name: &str| {
        let mut out = Capped(Vec::new());
        env.get_template(name)
            .and_then(|t| t.render_captured_to(Serde(context), &mut out))
            .with_context(|| format!("The {} part does not render", part_words(name)))?;
        String::from_utf8(out.0)
            .with_context(|| format!("The {} part is not UTF-8", part_words(name)))
    };
    Ok((part("issue.html")?, part("issue.txt")?))
}

fn part_words(name: &str) -> &'static str {
    if name.ends_with(".html") {
        "HTML"
    } else {
        "text"
    }
}

/// What makes the placeholder for a recipient's unsubscribe link.
pub const UNSUBSCRIBE_MARK: &str = "https://unsubscribe.invalid/recipient-link";
/// And for their own preference page.
pub const PREFERENCES_MARK: &str = "https://preferences.invalid/recipient-link";

/// Whether an edit may be saved: both parts parse and render with each sample (as a
/// mail and as the archive shows it; each must carry `UNSUBSCRIBE_MARK` as
/// `unsubscribe_url`), and each render passes `output_problems`.
pub fn check<T: Serialize>(html: &str, text: &str, samples: &[T]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (field, part) in [("html", html), ("text", text)] {
        if part.trim().is_empty() {
            errors.push(FieldError::new(
                field,
                format!("The {} part is empty.", part_words(field)),
            ));
        } else if part.len() > MAX_PART {
            errors.push(FieldError::new(
                field,
                format!(
                    "The {} part must be {} KB or less.",
                    part_words(field),
                    MAX_PART / 1000
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let template = MailTemplate {
        name: "draft".into(),
        version: 0,
        html: html.into(),
        text: text.into(),
    };
    for sample in samples {
        let (html_out, text_out) = match render(&template, sample) {
            Ok(parts) => parts,
            Err(err) => {
                let field = if format!("{err}").contains("HTML") {
                    "html"
                } else {
                    "text"
                };
                let reason = err
                    .chain()
                    .skip(1)
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(": ");
                return Err(vec![FieldError::new(field, format!("{err}: {reason}"))]);
            }
        };
        for problem in output_problems(&html_out, &text_out) {
            if !errors
                .iter()
                .any(|e: &FieldError| e.message == problem.message)
            {
                errors.push(problem);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What is wrong with a rendered mail: no unsubscribe link (in the HTML, as a link),
/// or HTML that is not well formed. Checked for the sample issue before a template is
/// saved, and for every issue when it is composed: a template may render differently
/// for other content.
pub fn output_problems(html: &str, text: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !html.contains(&format!("href=\"{UNSUBSCRIBE_MARK}\"")) {
        errors.push(FieldError::new(
            "html",
            "The HTML part needs the unsubscribe link: <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>.",
        ));
    }
    if !text.contains(UNSUBSCRIBE_MARK) {
        errors.push(FieldError::new(
            "text",
            "The text part needs the unsubscribe link: {{ unsubscribe_url }}.",
        ));
    }
    for problem in super::html_check::problems(html) {
        errors.push(FieldError::new("html", problem));
    }
    errors
}

#[cfg(test)]
mod tests;
