//! An issue's Markdown, rendered for mail: HTML with the styles written onto each element
//! (mail clients drop `<style>` blocks, so the CSS is inline from the start), and plain
//! text from the same events for the text part. Raw HTML in the Markdown is shown as
//! text, never passed through: a stray tag must not break every recipient's layout.
//! Links may only go to https, http, mailto and tel addresses with somewhere to go (and
//! `#` anchors), images only come from https or our own library (`/media/...`):
//! `unsafe_links` names the others, so that saving and scheduling refuse them, and
//! rendering drops any that were stored before. A bare web address in the text becomes
//! a link; tables, quotes and images are made to read well in mail clients.

use crate::issues::media::{MEDIA_PATH, MediaName};
use pulldown_cmark::{
    Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd, html::push_html,
};

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
    // `https:` alone, or `https:///x`, goes nowhere: a web address needs a host.
    let has_host = || {
        url.split_once("://")
            .is_some_and(|(_, rest)| rest.chars().next().is_some_and(|c| !"/?#".contains(c)))
    };
    match scheme.as_deref() {
        Some("https") => has_host(),
        Some("http") => !image && has_host(),
        Some("mailto" | "tel") => !image && url.len() > scheme.map_or(0, |s| s.len() + 1),
        Some(_) => false,
        // No scheme: only an anchor in the page itself (a relative address leads
        // nowhere from a mail), or one of our own images (made whole when rendered).
        None if image => MediaName::from_url(&url).is_some(),
        None => url.starts_with('#') && url.len() > 1,
    }
}

/// What a refused address was probably meant to be: `www.example.org` and
/// `example.org/page` are web addresses without their `https://`.
fn meant(url: &str) -> Option<String> {
    let url = as_browsers_read(url);
    let host = url.split(['/', '?', '#']).next().unwrap_or_default();
    let looks_like_a_host = host.contains('.')
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    (looks_like_a_host && !url.contains(':')).then(|| format!("https://{url}"))
}

/// An email autolink (`<jo@example.org>`) gives the bare address.
fn link_target(link_type: LinkType, dest_url: &str) -> String {
    match link_type {
        LinkType::Email => format!("mailto:{dest_url}"),
        _ => dest_url.to_owned(),
    }
}

/// Every image's address.
fn images_of(markdown: &str) -> Vec<String> {
    Parser::new_ext(markdown, options())
        .filter_map(|event| match event {
            Event::Start(Tag::Image { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .collect()
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

/// What to tell the writer when `unsafe_links` finds any, quoting them, with the fix
/// where it is plain (`www.example.org` is `https://www.example.org`).
pub fn link_problem(markdown: &str) -> Option<String> {
    let refused = unsafe_links(markdown);
    (!refused.is_empty()).then(|| {
        let images = images_of(markdown);
        let quoted: Vec<String> = refused
            .iter()
            .map(|url| match meant(url).filter(|_| !images.contains(url)) {
                Some(fixed) => format!("“{url}” (write it as {fixed})"),
                None if images.contains(url) => format!(
                    "“{url}” (give the whole https:// address where the image is online)"
                ),
                None => format!("“{url}”"),
            })
            .collect();
        format!(
            "Links must be whole addresses: https://, http://, mailto: or tel:, and images must come from https:// addresses (or be added with the editor's image upload). Change or remove: {}.",
            quoted.join(", ")
        )
    })
}

/// The parser's events, with bare web addresses in the text (`see https://x.org/a.`)
/// made into links, as mail programs and readers expect. Both renderings use this.
fn events(markdown: &str) -> Vec<Event<'_>> {
    let mut out = Vec::new();
    let mut in_link = 0usize;
    for event in Parser::new_ext(markdown, options()) {
        match &event {
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => in_link += 1,
            Event::End(TagEnd::Link | TagEnd::Image) => in_link = in_link.saturating_sub(1),
            Event::Text(text) if in_link == 0 && text.contains("://") => {
                linkify(text, &mut out);
                continue;
            }
            _ => {}
        }
        out.push(event);
    }
    out
}

/// Text with each `https://...` or `http://...` in it as a link.
fn linkify<'a>(text: &str, out: &mut Vec<Event<'a>>) {
    let mut rest = text;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let tail = &rest[start..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        // A sentence's full stop or a closing bracket is not part of the address.
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', '"']);
        if start > 0 {
            out.push(Event::Text(rest[..start].to_owned().into()));
        }
        if allowed(url, false) {
            out.push(Event::Start(Tag::Link {
                link_type: LinkType::Autolink,
                dest_url: url.to_owned().into(),
                title: "".into(),
                id: "".into(),
            }));
            out.push(Event::Text(url.to_owned().into()));
            out.push(Event::End(TagEnd::Link));
        } else {
            out.push(Event::Text(url.to_owned().into()));
        }
        rest = &tail[url.len()..];
    }
    if !rest.is_empty() {
        out.push(Event::Text(rest.to_owned().into()));
    }
}

const CELL: &str = "border:1px solid #b1b4b6;padding:6px 8px;text-align:left;vertical-align:top;";

/// The width of the mail's column (600 less its padding): Outlook for Windows shows an
/// image at its natural size unless told.
const IMAGE_WIDTH: u32 = 552;

/// What the HTML needs beyond the Markdown.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// PUBLIC_URL: our own images (`/media/...`) are given whole, as a mail has no page
    /// for an address to be relative to.
    pub public_url: &'a str,
    /// The brand's colour for links (checked against white when it was saved).
    pub link_colour: &'a str,
}

/// An `<img>` for `src`, at the width of the column or less. One of ours has its size
/// in its address, so it gets its height too (and its whole address).
fn image_tag(src: &str, alt: &str, site: &Site) -> String {
    let ours = src.starts_with(MEDIA_PATH)
        || src
            .strip_prefix(site.public_url.trim_end_matches('/'))
            .is_some_and(|path| path.starts_with(MEDIA_PATH));
    let size = match MediaName::from_url(src).filter(|_| ours) {
        Some(name) => {
            let width = name.width.min(IMAGE_WIDTH);
            let height = (u64::from(name.height) * u64::from(width))
                .div_ceil(u64::from(name.width.max(1)))
                .max(1);
            format!(
                "width=\"{width}\" height=\"{height}\" style=\"width:100%;max-width:{width}px;height:auto;border:0;\""
            )
        }
        None => format!(
            "width=\"{IMAGE_WIDTH}\" style=\"width:100%;max-width:{IMAGE_WIDTH}px;height:auto;border:0;\""
        ),
    };
    let src = if src.starts_with(MEDIA_PATH) {
        format!("{}{src}", site.public_url.trim_end_matches('/'))
    } else {
        src.to_owned()
    };
    format!(
        "<img src=\"{}\" alt=\"{}\" {size}>",
        attribute(&src),
        attribute(alt)
    )
}

/// The Markdown as mail-ready HTML.
pub fn to_html(markdown: &str, site: &Site) -> String {
    let mut rendered = Vec::new();
    let mut image: Option<(String, String)> = None; // (src, alt so far)
    let mut in_head = false;
    for event in events(markdown) {
        if let Some((_, alt)) = image.as_mut() {
            match event {
                Event::End(TagEnd::Image) => {
                    let (src, alt) = image.take().unwrap();
                    if !allowed(&src, true) {
                        rendered.push(Event::Text(alt.trim().to_owned().into()));
                        continue;
                    }
                    rendered.push(Event::Html(image_tag(&src, alt.trim(), site).into()));
                }
                Event::Text(text) | Event::Code(text) => alt.push_str(&text),
                _ => {}
            }
            continue;
        }
        let styled = |html: String| Event::Html(html.into());
        rendered.push(match event {
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
                styled(format!(
                    "<a{href}{title} style=\"color:{};text-decoration:underline;\">",
                    site.link_colour
                ))
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
            Event::Start(Tag::Table(_)) => styled(
                "<table style=\"border-collapse:collapse;width:100%;margin:0 0 16px;font-size:15px;\">"
                    .into(),
            ),
            Event::End(TagEnd::Table) => styled("</tbody></table>".into()),
            Event::Start(Tag::TableHead) => {
                in_head = true;
                styled("<thead><tr>".into())
            }
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                styled("</tr></thead><tbody>".into())
            }
            Event::Start(Tag::TableRow) => styled("<tr>".into()),
            Event::End(TagEnd::TableRow) => styled("</tr>".into()),
            Event::Start(Tag::TableCell) if in_head => {
                styled(format!("<th style=\"{CELL}background:#f3f2f1;\">"))
            }
            Event::Start(Tag::TableCell) => styled(format!("<td style=\"{CELL}\">")),
            Event::End(TagEnd::TableCell) if in_head => styled("</th>".into()),
            Event::End(TagEnd::TableCell) => styled("</td>".into()),
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            other => other,
        });
    }
    let mut html = String::with_capacity(markdown.len() * 2);
    push_html(&mut html, rendered.into_iter());
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
    for event in events(markdown) {
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
                // The quote's last paragraph left empty "> " lines: none after it.
                let kept = out.trim_end_matches(['>', ' ', '\n']).len();
                out.truncate(kept);
                out.push('\n');
                newline(&mut out, quote_depth);
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
mod tests;
