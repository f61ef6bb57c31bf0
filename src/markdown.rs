//! An issue's Markdown, rendered for mail: HTML with the styles written onto each element
//! (mail clients drop `<style>` blocks, so the CSS is inline from the start), and plain
//! text from the same events for the text part. Raw HTML in the Markdown is shown as
//! text, never passed through: a stray tag must not break every recipient's layout.
//! Links may only go to https, http, mailto and tel addresses (and `#` anchors), images
//! only come from https or http: `unsafe_links` names the others, so that saving and
//! scheduling refuse them, and rendering drops any that were stored before.

use pulldown_cmark::{
    Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd, html::push_html,
};

const LINK: &str = "color:#1d4f91;text-decoration:underline;";

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES
}

/// Escapes text for an HTML attribute value in double quotes.
fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn heading_style(level: HeadingLevel) -> &'static str {
    match level {
        HeadingLevel::H1 => "font-size:26px;line-height:1.25;margin:28px 0 12px;",
        HeadingLevel::H2 => "font-size:21px;line-height:1.3;margin:24px 0 10px;",
        _ => "font-size:18px;line-height:1.35;margin:20px 0 8px;",
    }
}

/// A link's address as a browser reads it: entities are decoded by the parser already;
/// browsers also drop tabs and line breaks anywhere and controls and spaces at the ends.
fn as_browsers_read(url: &str) -> String {
    let kept: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    kept.trim_matches(|c: char| c <= ' ').to_owned()
}

/// Whether a link (or, if `image`, an image) may point at `url`.
fn allowed(url: &str, image: bool) -> bool {
    let url = as_browsers_read(url);
    let scheme = url
        .find([':', '/', '?', '#'])
        .filter(|&end| url[end..].starts_with(':'))
        .map(|end| url[..end].to_ascii_lowercase());
    match scheme.as_deref() {
        Some("https" | "http") => true,
        Some("mailto" | "tel") => !image,
        Some(_) => false,
        // No scheme: only an anchor in the page itself (a relative address leads
        // nowhere from a mail).
        None => !image && url.starts_with('#') && url.len() > 1,
    }
}

/// An email autolink (`<jo@example.org>`) gives the bare address.
fn link_target(link_type: LinkType, dest_url: &str) -> String {
    match link_type {
        LinkType::Email => format!("mailto:{dest_url}"),
        _ => dest_url.to_owned(),
    }
}

/// Every link and image address the rules refuse, in the order they appear.
pub fn unsafe_links(markdown: &str) -> Vec<String> {
    Parser::new_ext(markdown, options())
        .filter_map(|event| match event {
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) => Some((link_target(link_type, &dest_url), false)),
            Event::Start(Tag::Image { dest_url, .. }) => Some((dest_url.to_string(), true)),
            _ => None,
        })
        .filter(|(url, image)| !allowed(url, *image))
        .map(|(url, _)| url)
        .collect()
}

/// What to tell the writer when `unsafe_links` finds any, quoting them.
pub fn link_problem(markdown: &str) -> Option<String> {
    let refused = unsafe_links(markdown);
    (!refused.is_empty()).then(|| {
        let quoted: Vec<String> = refused.iter().map(|url| format!("“{url}”")).collect();
        format!(
            "Links may only go to https://, http://, mailto: or tel: addresses, and images only come from https:// or http:// addresses. Change or remove: {}.",
            quoted.join(", ")
        )
    })
}

/// The Markdown as mail-ready HTML.
pub fn to_html(markdown: &str) -> String {
    let mut events = Vec::new();
    let mut image: Option<(String, String)> = None; // (src, alt so far)
    for event in Parser::new_ext(markdown, options()) {
        if let Some((_, alt)) = image.as_mut() {
            match event {
                Event::End(TagEnd::Image) => {
                    let (src, alt) = image.take().unwrap();
                    if !allowed(&src, true) {
                        events.push(Event::Text(alt.trim().to_owned().into()));
                        continue;
                    }
                    events.push(Event::Html(
                        format!(
                            "<img src=\"{}\" alt=\"{}\" style=\"max-width:100%;height:auto;border:0;\">",
                            attribute(&src),
                            attribute(alt.trim())
                        )
                        .into(),
                    ));
                }
                Event::Text(text) | Event::Code(text) => alt.push_str(&text),
                _ => {}
            }
            continue;
        }
        let styled = |html: String| Event::Html(html.into());
        events.push(match event {
            Event::Start(Tag::Paragraph) => styled("<p style=\"margin:0 0 16px;\">".into()),
            Event::Start(Tag::Heading { level, .. }) => {
                styled(format!("<{level} style=\"{}\">", heading_style(level)))
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            }) => {
                let title = if title.is_empty() {
                    String::new()
                } else {
                    format!(" title=\"{}\"", attribute(&title))
                };
                // A link the rules refuse (stored before they existed) leads nowhere.
                let target = link_target(link_type, &dest_url);
                let href = if allowed(&target, false) {
                    format!(" href=\"{}\"", attribute(&target))
                } else {
                    String::new()
                };
                styled(format!("<a{href}{title} style=\"{LINK}\">"))
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                image = Some((dest_url.to_string(), String::new()));
                continue;
            }
            Event::Start(Tag::List(Some(start))) => styled(format!(
                "<ol start=\"{start}\" style=\"margin:0 0 16px;padding-left:24px;\">"
            )),
            Event::Start(Tag::List(None)) => {
                styled("<ul style=\"margin:0 0 16px;padding-left:24px;\">".into())
            }
            Event::Start(Tag::Item) => styled("<li style=\"margin:0 0 6px;\">".into()),
            Event::Start(Tag::BlockQuote(_)) => styled(
                "<blockquote style=\"margin:0 0 16px;padding:0 0 0 12px;border-left:4px solid #b1b4b6;color:#484949;\">"
                    .into(),
            ),
            Event::Rule => styled(
                "<hr style=\"border:0;border-top:1px solid #b1b4b6;margin:24px 0;\">".into(),
            ),
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            other => other,
        });
    }
    let mut html = String::with_capacity(markdown.len() * 2);
    push_html(&mut html, events.into_iter());
    html
}

/// The Markdown as readable plain text: links as "text (url)", images by their alt text.
pub fn to_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let mut link_text_start = 0;
    let mut quote_depth = 0;
    let mut heading: Option<(HeadingLevel, usize)> = None;
    let newline = |out: &mut String, quote_depth: usize| {
        out.push('\n');
        for _ in 0..quote_depth {
            out.push_str("> ");
        }
    };
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some((level, out.len())),
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, start)) = heading.take() {
                    let width = out[start..].chars().count();
                    let rule = if level == HeadingLevel::H1 { '=' } else { '-' };
                    out.push('\n');
                    out.extend(std::iter::repeat_n(rule, width));
                }
                out.push_str("\n\n");
            }
            Event::End(TagEnd::Paragraph) => {
                newline(&mut out, quote_depth);
                if lists.is_empty() {
                    newline(&mut out, quote_depth);
                }
            }
            Event::Start(Tag::BlockQuote(_)) => {
                quote_depth += 1;
                out.push_str("> ");
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                quote_depth -= 1;
                out.push('\n');
            }
            Event::Start(Tag::List(start)) => lists.push(start),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) => {
                let target = link_target(link_type, &dest_url);
                links.push(if allowed(&target, false) {
                    target
                } else {
                    String::new()
                });
                link_text_start = out.len();
            }
            Event::End(TagEnd::Link) => {
                if let Some(url) = links.pop().filter(|url| !url.is_empty()) {
                    let text = out[link_text_start..].trim().to_owned();
                    let bare = url.strip_prefix("mailto:").unwrap_or(&url);
                    if text != url && text != bare {
                        out.push_str(&format!(" ({url})"));
                    }
                }
            }
            Event::Start(Tag::Image { .. }) => out.push_str("[Image: "),
            Event::End(TagEnd::Image) => out.push(']'),
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                out.push_str(&text)
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => newline(&mut out, quote_depth),
            Event::Rule => out.push_str("----------\n\n"),
            Event::End(TagEnd::TableCell) => out.push_str("  "),
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => out.push('\n'),
            _ => {}
        }
    }
    let mut text = out.trim_end().to_owned();
    text.push('\n');
    text
}

/// Images whose Markdown gives no description (`![](photo.jpg)`), by address.
pub fn images_without_alt_text(markdown: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut current: Option<(String, String)> = None;
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                current = Some((dest_url.to_string(), String::new()))
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, alt)) = current.as_mut() {
                    alt.push_str(&text);
                }
            }
            Event::End(TagEnd::Image) => {
                if let Some((src, alt)) = current.take()
                    && alt.trim().is_empty()
                {
                    missing.push(src);
                }
            }
            _ => {}
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Winter news\n\nWelcome to **In Partnership**. Read the \
[Memorandum of Understanding](https://example.org/mou).\n\n## In this issue\n\n\
- Know Your Patch\n- ILP representatives\n\n1. First\n2. Second\n\n\
![Volunteers at the Stroud hub](https://example.org/hub.jpg)\n\n> A quote\n\n\
Contact <b>us</b> at <mailto:news@example.org>.\n";

    #[test]
    fn html_carries_its_styles_inline() {
        let html = to_html(SAMPLE);
        assert!(html.contains("<h1 style=\"font-size:26px"));
        assert!(
            html.contains(
                "<p style=\"margin:0 0 16px;\">Welcome to <strong>In Partnership</strong>."
            )
        );
        assert!(html.contains(
            "<a href=\"https://example.org/mou\" style=\"color:#1d4f91;text-decoration:underline;\">Memorandum of Understanding</a>"
        ));
        assert!(html.contains("<ul style="));
        assert!(html.contains("<ol start=\"1\" style="));
        assert!(html.contains(
            "<img src=\"https://example.org/hub.jpg\" alt=\"Volunteers at the Stroud hub\" style="
        ));
        assert!(html.contains("<blockquote style="));
    }

    #[test]
    fn raw_html_is_shown_not_passed_through() {
        let html = to_html("Hello <script>alert(1)</script> <b>bold</b>\n\n<div>block</div>\n");
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<div>"));
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
    }

    #[test]
    fn attributes_are_escaped() {
        let html = to_html("[x](https://example.org/?a=1&b=\"2\")\n");
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
            let html = to_html(markdown);
            assert!(!html.contains("href=") && !html.contains("src="), "{html}");
        }
        let fine = "[a](https://example.org) [b](HTTP://example.org) [c](mailto:jo@example.org) \
            [d](tel:+441452000000) [e](#top) <https://example.org/x> <jo@example.org> \
            ![f](https://example.org/a.jpg)";
        assert!(unsafe_links(fine).is_empty(), "{:?}", unsafe_links(fine));
        let html = to_html(fine);
        assert!(html.contains("href=\"mailto:jo@example.org\""), "{html}");
        assert!(html.contains("href=\"#top\""));
    }
}
