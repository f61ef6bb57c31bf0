use super::*;

const SITE: Site = Site {
    public_url: "https://news.example/",
    link_colour: "#1d4f91",
};

const SAMPLE: &str = "# Winter news\n\nWelcome to **In Partnership**. Read the \
[Memorandum of Understanding](https://example.org/mou).\n\n## In this issue\n\n\
- Know Your Patch\n- ILP representatives\n\n1. First\n2. Second\n\n\
![Volunteers at the Stroud hub](https://example.org/hub.jpg)\n\n> A quote\n\n\
Contact <b>us</b> at <mailto:news@example.org>.\n";

#[test]
fn html_carries_its_styles_inline() {
    let html = to_html(SAMPLE, &SITE);
    assert!(html.contains("<h1 style=\"font-size:26px"));
    assert!(
        html.contains("<p style=\"margin:0 0 16px;\">Welcome to <strong>In Partnership</strong>.")
    );
    assert!(html.contains(
            "<a href=\"https://example.org/mou\" style=\"color:#1d4f91;text-decoration:underline;\">Memorandum of Understanding</a>"
        ));
    assert!(html.contains("<ul style="));
    assert!(html.contains("<ol start=\"1\" style="));
    assert!(html.contains(
            "<img src=\"https://example.org/hub.jpg\" alt=\"Volunteers at the Stroud hub\" width=\"552\" style="
        ));
    assert!(html.contains("<blockquote style="));
}

#[test]
fn raw_html_is_shown_not_passed_through() {
    let html = to_html(
        "Hello <script>alert(1)</script> <b>bold</b>\n\n<div>block</div>\n",
        &SITE,
    );
    assert!(!html.contains("<script>"));
    assert!(!html.contains("<b>"));
    assert!(!html.contains("<div>"));
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
}

#[test]
fn attributes_are_escaped() {
    let html = to_html("[x](https://example.org/?a=1&b=\"2\")\n", &SITE);
    assert!(html.contains("href=\"https://example.org/?a=1&amp;b=&quot;2&quot;\""));
}

#[test]
fn text_reads_well() {
    let text = to_text(SAMPLE);
    assert!(text.starts_with("Winter news\n===========\n\n"), "{text}");
    assert!(text.contains("Read the Memorandum of Understanding (https://example.org/mou)."));
    assert!(text.contains("In this issue\n-------------\n"));
    assert!(text.contains("- Know Your Patch\n- ILP representatives\n"));
    assert!(text.contains("1. First\n2. Second\n"));
    assert!(text.contains("[Image: Volunteers at the Stroud hub]"));
    assert!(text.contains("> A quote"));
    assert!(text.contains("news@example.org"));
    assert!(!text.contains("news@example.org (mailto"));
}

#[test]
fn images_without_alt_text_are_found() {
    assert_eq!(
        images_without_alt_text("![](a.jpg) ![ ](b.jpg) ![Described](c.jpg)"),
        vec!["a.jpg", "b.jpg"]
    );
    assert!(images_without_alt_text(SAMPLE).is_empty());
}

#[test]
fn only_web_mail_and_phone_links_are_allowed() {
    let dangerous = [
        "[a](javascript:alert(1))",
        "[a](JaVaScRiPt:alert(1))",
        "[a](javascript&#58;alert(1))",
        "[a](java&#9;script:alert(1))",
        "[a](%20javascript:alert(1))",
        "<javascript:alert(1)>",
        "[a](vbscript:msgbox)",
        "[a](data:text/html;base64,PHNjcmlwdD4=)",
        "[a](file:///etc/passwd)",
        "[a](relative/page)",
        "[a]()",
        "![a pixel](javascript:alert(1))",
        "![a picture](data:image/svg+xml;base64,PHN2Zz4=)",
        "![a picture](mailto:jo@example.org)",
        "[a][r]\n\n[r]: javascript:alert(1)",
    ];
    for markdown in dangerous {
        assert_eq!(unsafe_links(markdown).len(), 1, "{markdown:?} was allowed");
        // Stored before the rules, it still renders with no live address.
        let html = to_html(markdown, &SITE);
        assert!(!html.contains("href=") && !html.contains("src="), "{html}");
    }
    let fine = "[a](https://example.org) [b](HTTP://example.org) [c](mailto:jo@example.org) \
            [d](tel:+441452000000) [e](#top) <https://example.org/x> <jo@example.org> \
            ![f](https://example.org/a.jpg)";
    assert!(unsafe_links(fine).is_empty(), "{:?}", unsafe_links(fine));
    let html = to_html(fine, &SITE);
    assert!(html.contains("href=\"mailto:jo@example.org\""), "{html}");
    assert!(html.contains("href=\"#top\""));
}

#[test]
fn addresses_without_scheme_or_host_are_refused_with_the_fix() {
    let problem = link_problem("[site](www.example.org) and ![Logo](logo.png)").unwrap();
    assert!(
        problem.contains("“www.example.org” (write it as https://www.example.org)"),
        "{problem}"
    );
    assert!(
        problem.contains("“logo.png” (give the whole https:// address where the image is online)"),
        "{problem}"
    );
    for refused in [
        "[a](https://)",
        "[b](https:///x)",
        "[c](mailto:)",
        "![d](http://example.org/a.jpg)",
    ] {
        assert!(link_problem(refused).is_some(), "{refused}");
    }
    assert_eq!(
        link_problem("[a](http://example.org) ![b](https://example.org/b.png)"),
        None
    );
}

#[test]
fn bare_addresses_become_links_in_both_parts() {
    let md = "See https://example.org/a, or (https://example.org/b). Not `https://code`.\n";
    let html = to_html(md, &SITE);
    assert!(html.contains("<a href=\"https://example.org/a\""), "{html}");
    assert!(html.contains("<a href=\"https://example.org/b\""), "{html}");
    assert!(html.contains("<code>https://code</code>"), "{html}");
    assert!(to_text(md).contains("See https://example.org/a, or (https://example.org/b)."));
    // An address already in a link is not linked twice.
    assert_eq!(
        to_html("[https://x.org](https://x.org)", &SITE)
            .matches("<a ")
            .count(),
        1
    );
}

#[test]
fn tables_are_styled_and_quotes_read_well_as_text() {
    let html = to_html(
        "| Day | Place |\n| --- | --- |\n| Monday | Stroud |\n",
        &SITE,
    );
    assert!(
        html.contains("<table style=\"border-collapse:collapse;"),
        "{html}"
    );
    assert!(html.contains("<th style=\"border:1px solid"), "{html}");
    assert!(html.contains("<td style=\"border:1px solid"), "{html}");
    assert!(html.contains("</tr></thead><tbody><tr>"), "{html}");
    let text = to_text("Before.\n\n> First line\n>\n> Second paragraph\n\nAfter.\n");
    assert_eq!(
        text, "Before.\n\n> First line\n> \n> Second paragraph\n\nAfter.\n",
        "{text:?}"
    );
}

#[test]
fn our_images_are_made_whole_and_sized_to_the_column() {
    let hash = "0f".repeat(32);
    let md = format!(
        "![The Forest of Dean hub](/media/{hash}-1200x800.jpg)\n\n![A small logo](/media/{hash}-200x50.png)\n"
    );
    assert_eq!(link_problem(&md), None);
    let html = to_html(&md, &SITE);
    assert!(html.contains(&format!(
        "<img src=\"https://news.example/media/{hash}-1200x800.jpg\" alt=\"The Forest of Dean hub\" width=\"552\" height=\"368\" style=\"width:100%;max-width:552px;"
    )), "{html}");
    assert!(html.contains("width=\"200\" height=\"50\" style=\"width:100%;max-width:200px;"));
    // Any other relative address is still refused.
    assert!(link_problem("![A photo](/elsewhere/photo.jpg)").is_some());
    assert!(link_problem(&format!("![A photo](/media/{hash}.jpg)")).is_some());
}
