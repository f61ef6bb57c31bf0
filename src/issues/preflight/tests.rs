use super::*;
use crate::{
    brand::BrandVersion,
    issues::{
        compose::{ComposedIssue, sample_issue},
        templates::{MailTemplate, SHIPPED},
    },
};

const CLEAN_MAIL: &str = "<!DOCTYPE html><html lang=\"en\"><body style=\"background:#f3f2f1\"><table style=\"background:#ffffff\"><tr><td style=\"color:#0b0c0c\">Hi</td></tr></table></body></html>";

fn rules(markdown: &str) -> Vec<(&'static str, Severity)> {
    check(markdown, CLEAN_MAIL)
        .findings
        .into_iter()
        .map(|f| (f.rule, f.severity))
        .collect()
}

#[test]
fn a_real_looking_issue_gets_its_findings() {
    let markdown = "\
Welcome to the winter issue of In Partnership.

![IMG_2041.JPG](/media/0000000000000000000000000000000000000000000000000000000000000000-1200x800.jpg)

#### Know Your Patch

The dates for the spring are out: [click here](https://example.org/kyp).

SPACES ARE LIMITED SO BOOK EARLY PLEASE

See https://example.org/ilp for the [https://example.org/ilp](https://example.org/ilp).

![image](https://elsewhere.example/banner.png)
";
    let report = check(markdown, CLEAN_MAIL);
    let found: Vec<(&str, Severity)> = report
        .findings
        .iter()
        .map(|f| (f.rule, f.severity))
        .collect();
    assert_eq!(
        found,
        [
            ("alt_text", Severity::Problem),
            ("alt_text", Severity::Problem),
            ("link_text", Severity::Problem),
            ("link_text", Severity::Problem),
            ("link_text", Severity::Problem),
            ("headings", Severity::Problem),
            ("capitals", Severity::Problem),
            ("hosted_elsewhere", Severity::Advice),
        ]
    );
    assert!(report.has_problems());
    let messages: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages[0].contains("described as “IMG_2041.JPG”, which is a file name"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("“image”, a word for any picture"),
        "{}",
        messages[1]
    );
    assert!(messages[2].contains("“click here”"));
    assert!(messages[3].contains("bare web address"));
    assert!(
        messages[4].contains("“https://example.org/ilp”, a bare web address"),
        "written out in the text"
    );
    assert!(
        messages[5].contains("heading 4 after a heading 1") && messages[5].contains("Make it ##.")
    );
    assert!(messages[6].contains("“SPACES ARE LIMITED SO BOOK EARLY PLEASE”"));
}

#[test]
fn good_writing_passes() {
    let markdown = "\
Welcome to the winter issue.

![Volunteers at the Stroud hub sorting donations](/media/0000000000000000000000000000000000000000000000000000000000000000-1200x800.jpg)

## Know Your Patch

Read [the Know Your Patch dates for the spring](https://example.org/kyp).

### Stroud

The NHS and the VCSE sector meet on Tuesdays. Contact <news@example.org>.
";
    assert_eq!(rules(markdown), []);
    // Up again by more than one is fine; a first heading 1 is only advice.
    assert_eq!(
        rules("# Title\n\n## A\n\n#### B\n"),
        [
            ("headings", Severity::Problem),
            ("headings", Severity::Advice)
        ]
    );
    assert_eq!(rules("## A\n\n### B\n\n## C\n"), []);
}

#[test]
fn reading_age_is_estimated() {
    let simple = "We met in Stroud. It was a good day. We had tea and cake. We talked about the hubs. \
The hubs help people in the town. They are open on Mondays. Come and see us. Bring a friend.";
    let age = check(simple, CLEAN_MAIL).reading_age.unwrap();
    assert!((5..=9).contains(&age), "{age}");
    let dense = "The Integrated Locality Partnership's commissioning intentions necessitate \
comprehensive stakeholder engagement, incorporating organisational perspectives regarding \
sustainability, accountability, infrastructure development and interdisciplinary \
collaboration, notwithstanding considerable administrative complexity and substantial \
governance requirements across constituent organisations throughout Gloucestershire.";
    let report = check(dense, CLEAN_MAIL);
    assert!(report.reading_age.unwrap() > 20, "{:?}", report.reading_age);
    assert_eq!(report.findings[0].rule, "reading_age");
    assert_eq!(report.findings[0].severity, Severity::Advice);
    assert_eq!(check("Too short to tell.", CLEAN_MAIL).reading_age, None);
}

#[test]
fn a_mail_gmail_would_clip_gets_advice() {
    let long = format!(
        "<!DOCTYPE html><html><body><p>{}</p></body></html>",
        "word ".repeat(25_000)
    );
    let report = check("Hi", &long);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        (report.findings[0].rule, report.findings[0].severity),
        ("size", Severity::Advice)
    );
    assert!(
        report.findings[0].message.contains("125 KB"),
        "{}",
        report.findings[0].message
    );
}

#[test]
fn colour_pairs_under_aa_in_the_mail_are_problems() {
    let html = "<!DOCTYPE html><html><body><div style=\"display:none;color:#f3f2f1;background:#f3f2f1\">hidden preheader</div>\
<table style=\"background:#ffdd00\"><tr><td style=\"color:#ffffff\">Low</td><td><a style=\"color:#ffffff\">Same pair</a></td></tr></table>\
<p style=\"color:#999999\">Grey on white</p></body></html>";
    let found: Vec<String> = check("Hi", html)
        .findings
        .into_iter()
        .map(|f| f.message)
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("#ffffff on #ffdd00: a contrast of 1.34 to 1"),
        "{}",
        found[0]
    );
    assert!(found[1].contains("#999999 on #ffffff"), "{}", found[1]);
}

#[test]
fn every_shipped_template_with_the_default_brand_has_no_contrast_problem() {
    let issue = sample_issue();
    for shipped in SHIPPED {
        let template = MailTemplate {
            name: shipped.name.into(),
            version: 1,
            html: shipped.html.into(),
            text: shipped.text.into(),
        };
        let composed = ComposedIssue::compose(
            &issue,
            &template,
            &BrandVersion::first(),
            "https://n.example",
        )
        .unwrap();
        let (html, _) = composed.personalise(&crate::issues::compose::RecipientLinks {
            unsubscribe: "https://n.example/u".into(),
            preferences: "https://n.example/p".into(),
        });
        let report = check(&issue.body_markdown, &html);
        assert!(
            !report.has_problems(),
            "{}: {:?}",
            shipped.name,
            report.findings
        );
    }
}
