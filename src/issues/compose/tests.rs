use uuid::Uuid;

use super::*;
use crate::issues::templates::shipped;

fn issue(body: &str) -> Issue {
    Issue {
        id: Uuid::now_v7(),
        subject: "Winter <news>".into(),
        preheader: "What is new in the partnership".into(),
        body_markdown: body.into(),
        template: "standard".into(),
        send_at: Some(
            chrono::DateTime::parse_from_rfc3339("2026-12-03T09:00:00Z")
                .unwrap()
                .into(),
        ),
        ..sample_issue()
    }
}

fn template(name: &str) -> MailTemplate {
    let shipped = shipped(name).unwrap();
    MailTemplate {
        name: name.into(),
        version: 1,
        html: shipped.html.into(),
        text: shipped.text.into(),
    }
}

fn compose(issue: &Issue, name: &str) -> ComposedIssue {
    ComposedIssue::compose(
        issue,
        &template(name),
        &BrandVersion::first(),
        "https://news.example",
    )
    .unwrap()
}

#[test]
fn each_recipient_gets_their_own_link_in_both_parts() {
    let composed = compose(&issue("Hello **all**."), "standard");
    let (html, text) = composed.personalise(&links("https://n.example/unsubscribe?token=abc"));
    assert!(html.contains("href=\"https://n.example/unsubscribe?token=abc\""));
    assert!(text.contains("https://n.example/unsubscribe?token=abc"));
    assert!(!html.contains(UNSUBSCRIBE_MARK) && !text.contains(UNSUBSCRIBE_MARK));
    let (other, _) = composed.personalise(&links("https://n.example/unsubscribe?token=xyz"));
    assert!(other.contains("token=xyz") && !other.contains("token=abc"));
}

#[test]
fn every_shipped_template_has_the_title_the_date_and_a_way_to_the_browser() {
    for name in crate::issues::TEMPLATES {
        let issue = issue("Hello **all**.");
        let (html, text) = compose(&issue, name).personalise(&links("https://n.example/u"));
        assert!(
            html.contains("<p style=\"margin:0 0 16px;\">Hello <strong>all</strong>.</p>"),
            "{name}"
        );
        assert!(
            html.contains("<title>Winter &lt;news&gt;</title>"),
            "{name}"
        );
        assert!(html.contains(">Winter &lt;news&gt;</h1>"), "{name}");
        assert!(html.contains("3 December 2026"), "{name}");
        assert!(html.contains("<html lang=\"en-GB\">"), "{name}");
        assert!(html.contains("What is new in the partnership"), "{name}");
        let archive = format!("https://news.example/archive/{}", issue.slug());
        assert!(html.contains(&format!("<a href=\"{archive}\"")), "{name}");
        assert!(html.contains(">View in your browser</a>"), "{name}");
        assert!(
            text.contains("Hello all.") && text.contains(&archive),
            "{name}"
        );
        assert_eq!(
            super::super::html_check::problems(&html),
            Vec::<String>::new(),
            "{name}"
        );
    }
}

#[test]
fn the_browser_copy_has_no_way_out_and_no_link_to_itself() {
    let issue = issue("Hello.");
    let html = ComposedIssue::in_browser(
        &issue,
        &template("standard"),
        &BrandVersion::first(),
        "https://news.example",
    )
    .unwrap();
    assert!(!html.contains(UNSUBSCRIBE_MARK));
    assert!(!html.contains("View in your browser"));
    assert!(html.contains("href=\"https://news.example/unsubscribe\""));
    assert!(html.contains(">Past issues</a>"));
}

#[test]
fn the_brand_is_in_the_mail() {
    let mut brand = BrandVersion::first();
    brand.brand.header_colour = "#0b0c0c".into();
    brand.brand.link_colour = "#00703c".into();
    brand.brand.postal_address = "Unit 4, Brunel Mall\nStroud GL5 2BP".into();
    brand.brand.privacy_url = "https://glos-vcse.org.uk/privacy".into();
    brand.brand.logo = Some(crate::brand::Logo {
        path: "/media/logo.png".into(),
        width: 400,
        height: 100,
        alt: "Gloucestershire VCSE Alliance".into(),
    });
    let issue = issue("See [the plan](https://example.org/plan).");
    let composed = ComposedIssue::compose(
        &issue,
        &template("standard"),
        &brand,
        "https://news.example",
    )
    .unwrap();
    let (html, text) = composed.personalise(&links("https://n.example/u"));
    assert!(html.contains("background:#0b0c0c;"));
    assert!(html.contains("<a href=\"https://example.org/plan\" style=\"color:#00703c;"));
    assert!(html.contains("<img src=\"https://news.example/media/logo.png\" alt=\"Gloucestershire VCSE Alliance\" width=\"192\" height=\"48\""));
    assert!(html.contains(
        "Gloucestershire VCSE Strategic Partnership, Unit 4, Brunel Mall, Stroud GL5 2BP"
    ));
    assert!(text.contains("How we use your information: https://glos-vcse.org.uk/privacy"));
}

#[test]
fn an_unknown_variable_is_an_error() {
    let mut broken = template("standard");
    broken.html = broken
        .html
        .replace("{{ subject }}</h1>", "{{ subjet }}</h1>");
    let err = ComposedIssue::compose(&issue("Hi"), &broken, &BrandVersion::first(), "https://x")
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("\"standard\" does not render"),
        "{err:#}"
    );
}

/// A recipient's links, both from one address.
fn links(unsubscribe: &str) -> RecipientLinks {
    RecipientLinks {
        unsubscribe: unsubscribe.to_owned(),
        preferences: unsubscribe.replace("/unsubscribe", "/preferences"),
    }
}

#[test]
fn an_encoded_copy_reads_as_the_plain_one_in_every_shipped_template() {
    for name in crate::issues::TEMPLATES {
        let composed = compose(
            &issue("Café **news** — with a long line. ".repeat(9).as_str()),
            name,
        );
        let links = RecipientLinks {
            unsubscribe: format!(
                "https://n.example/unsubscribe?token={}&a=b",
                "t".repeat(120)
            ),
            preferences: "https://n.example/preferences?token=p\"q".into(),
        };
        let (html, text) = composed.personalise(&links);
        let (encoded_html, encoded_text) = composed.encoded().personalise(&links);
        let decode = crate::sending::quoted_printable::decode;
        assert_eq!(decode(&encoded_html), html.replace('\n', "\r\n"), "{name}");
        assert_eq!(decode(&encoded_text), text.replace('\n', "\r\n"), "{name}");
        assert!(
            encoded_html
                .split(|&b| b == b'\n')
                .all(|line| line.len() <= 77),
            "{name}"
        );
    }
}
