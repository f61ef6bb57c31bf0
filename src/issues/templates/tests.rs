use super::*;
use crate::{
    brand::BrandVersion,
    issues::compose::{IssueContext, sample_issue},
};

fn check_with(html: &str, text: &str) -> Result<(), Vec<FieldError>> {
    let issue = sample_issue();
    let brand = BrandVersion::first();
    let mut in_browser = IssueContext::new(&issue, &brand, "https://news.example");
    in_browser.in_browser = true;
    check(
        html,
        text,
        &[
            IssueContext::new(&issue, &brand, "https://news.example"),
            in_browser,
        ],
    )
}

fn messages(result: Result<(), Vec<FieldError>>) -> Vec<String> {
    result
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
}

#[test]
fn the_shipped_templates_are_the_ones_staff_can_choose_and_pass_the_checks() {
    let names: Vec<&str> = SHIPPED.iter().map(|t| t.name).collect();
    assert_eq!(names, crate::issues::TEMPLATES);
    assert_eq!(crate::issues::DEFAULT_TEMPLATE, SHIPPED[0].name);
    for shipped in SHIPPED {
        assert_eq!(
            messages(check_with(shipped.html, shipped.text)),
            Vec::<String>::new(),
            "{}",
            shipped.name
        );
    }
}

#[test]
fn a_template_without_the_unsubscribe_link_is_refused() {
    let standard = shipped("standard").unwrap();
    let html = standard.html.replace(
        "href=\"{{ unsubscribe_url }}\"",
        "href=\"https://example.org\"",
    );
    let text = standard.text.replace("{{ unsubscribe_url }}", "");
    let found = messages(check_with(&html, &text));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("html: The HTML part needs the unsubscribe link"));
    assert!(found[1].starts_with("text: The text part needs the unsubscribe link"));
    // Only as text, not as a link, is not enough either.
    let html = standard.html.replace(
        "href=\"{{ unsubscribe_url }}\"",
        "href=\"#\" title=\"{{ unsubscribe_url }}\"",
    );
    assert!(messages(check_with(&html, standard.text))[0].contains("needs the unsubscribe link"));
}

#[test]
fn a_template_cannot_reach_outside_itself() {
    let standard = shipped("standard").unwrap();
    for reach in [
        "{% include \"/etc/passwd\" %}",
        "{% include \"pages/admin_login.html\" %}",
        "{% extends \"email/layout.html\" %}",
        "{% include \"email/confirmation.html\" %}",
    ] {
        let html = standard.html.replace("<body", &format!("{reach}<body"));
        let found = messages(check_with(&html, standard.text));
        assert!(
            !found.is_empty() && found[0].starts_with("html: The HTML part does not render"),
            "{reach}: {found:?}"
        );
    }
    // A template that makes a huge mail is refused.
    let doubling = format!(
        "{{% set a = 'x' %}}{}{{{{ a }}}}",
        "{% set a = a ~ a %}".repeat(20)
    );
    let html = standard.html.replace("<body", &format!("{doubling}<body"));
    let found = messages(check_with(&html, standard.text));
    assert!(found[0].contains("larger than 500 KB"), "{found:?}");
    // What only the archive shows is checked too.
    let html = standard.html.replace(
        "<body",
        "{% if in_browser %}<script>steal()</script>{% endif %}<body",
    );
    let found = messages(check_with(&html, standard.text));
    assert!(
        found.iter().any(|f| f.contains("cannot use <script>")),
        "{found:?}"
    );
    // Filters that would build a huge string from a repeated list are not there.
    let html = standard
        .html
        .replace("<body", "{{ ([body_html] * 99000) | join }}<body");
    let found = messages(check_with(&html, standard.text));
    assert!(found[0].contains("does not render"), "{found:?}");
    // A loop that would run for ever runs out of fuel.
    let html = standard.html.replace(
        "<body",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}<body",
    );
    let found = messages(check_with(&html, standard.text));
    assert!(found[0].contains("fuel"), "{found:?}");
}

#[test]
fn mistakes_are_named_with_their_part() {
    let standard = shipped("standard").unwrap();
    let found = messages(check_with(
        &standard
            .html
            .replace("{{ subject }}</title>", "{{ subject </title>"),
        standard.text,
    ));
    assert!(
        found[0].starts_with("html: The HTML part does not parse"),
        "{found:?}"
    );
    let found = messages(check_with(
        standard.html,
        &format!("{} {{{{ nonsense }}}}", standard.text),
    ));
    assert!(
        found[0].starts_with("text: The text part does not render"),
        "{found:?}"
    );
    assert!(found[0].contains("undefined"), "{found:?}");
    let found = messages(check_with(
        &standard.html.replace("</h1>", "</h2>"),
        standard.text,
    ));
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("html: ") && f.contains("</h2>")),
        "{found:?}"
    );
    assert_eq!(messages(check_with(" ", "")).len(), 2);
}
