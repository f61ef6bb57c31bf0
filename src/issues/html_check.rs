//! Whether a mail's HTML is well formed, before a template that makes it can be saved:
//! the WHATWG tokenizer's parse errors (a stray `<`, an attribute given twice, a comment
//! left open), elements closed in the order they were opened, and what every mail needs
//! (a doctype, `<html lang>`, a `<title>`, and alt text on every image). The W3C checker
//! runs over the shipped templates in CI; this is what a staff member's edit must pass.

use html5gum::{Token, Tokenizer, emitters::default::DefaultEmitter};

/// Elements that have no end tag.
pub(super) const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Elements whose end tag HTML lets be left out (the parser closes them).
const OPTIONAL_END: &[&str] = &[
    "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "head", "body",
    "html", "colgroup",
];

/// A few characters of `html` around `at`, to find a mistake by.
fn near(html: &str, at: usize) -> String {
    let start = html.floor_char_boundary(at.saturating_sub(20));
    let end = html.ceil_char_boundary((at + 20).min(html.len()));
    html[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The problems found, each a sentence; none if the HTML is well formed.
pub fn problems(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let (mut doctype, mut lang, mut title) = (false, false, false);
    let mut emitter = DefaultEmitter::<usize>::new_with_span();
    emitter.naively_switch_states(true);
    for token in Tokenizer::new_with_emitter(html, emitter).flatten() {
        match token {
            Token::Doctype(d) => {
                doctype = String::from_utf8_lossy(&d.name).eq_ignore_ascii_case("html")
            }
            Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                let attribute = |key: &str| {
                    tag.attributes
                        .get(key.as_bytes())
                        .map(|v| String::from_utf8_lossy(&v.value).into_owned())
                };
                match name.as_str() {
                    "html" => lang = attribute("lang").is_some_and(|l| !l.trim().is_empty()),
                    "title" => title = true,
                    "img" if attribute("alt").is_none() => found.push(format!(
                        "An image has no alt attribute (give alt=\"\" if it only decorates): {}.",
                        attribute("src").unwrap_or_default()
                    )),
                    "script" | "iframe" | "object" | "embed" | "form" | "input" | "button"
                    | "base" | "frame" | "frameset" | "applet" => found.push(format!(
                        "Mails cannot use <{name}>: mail programs remove it or refuse the mail."
                    )),
                    "meta" if attribute("http-equiv").is_some() => found.push(
                        "Mails cannot use <meta http-equiv>: it can send the reader elsewhere."
                            .into(),
                    ),
                    _ => {}
                }
                if !VOID.contains(&name.as_str()) && !tag.self_closing {
                    open.push(name);
                }
            }
            Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                match open.iter().rposition(|o| *o == name) {
                    Some(at) => {
                        let unclosed: Vec<String> = open
                            .drain(at..)
                            .skip(1)
                            .filter(|o| !OPTIONAL_END.contains(&o.as_str()))
                            .collect();
                        if let Some(inner) = unclosed.first() {
                            found.push(format!("<{inner}> is not closed before </{name}>."));
                        }
                    }
                    None if VOID.contains(&name.as_str())
                        || OPTIONAL_END.contains(&name.as_str()) => {}
                    None => found.push(format!("</{name}> closes nothing that is open.")),
                }
            }
            Token::Error(error) => found.push(format!(
                "HTML parse error ({}) on line {}, at “{}”.",
                error.value,
                html[..html.floor_char_boundary(error.span.start)]
                    .lines()
                    .count()
                    .max(1),
                near(html, error.span.start)
            )),
            _ => {}
        }
    }
    let unclosed: Vec<&String> = open
        .iter()
        .filter(|o| !OPTIONAL_END.contains(&o.as_str()))
        .collect();
    if let Some(first) = unclosed.first() {
        found.push(format!("<{first}> is never closed."));
    }
    if !doctype {
        found.push("The HTML must start with <!DOCTYPE html>.".into());
    }
    if !lang {
        found.push("The <html> element needs a lang attribute, such as lang=\"en-GB\".".into());
    }
    if !title {
        found.push("The HTML needs a <title>.".into());
    }
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\"><title>T</title></head>\n<body><table><tr><td><p>One<p>Two <img src=\"a.png\" alt=\"\"><br></td></tr></table></body></html>";

    #[test]
    fn well_formed_html_passes() {
        assert_eq!(problems(GOOD), Vec::<String>::new());
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                GOOD.replace("</td>", "<div></td>"),
                "<div> is not closed before </td>.",
            ),
            (
                GOOD.replace("<br>", "<br></span>"),
                "</span> closes nothing that is open.",
            ),
            (
                GOOD.replace(" alt=\"\"", ""),
                "An image has no alt attribute",
            ),
            (
                GOOD.replace("<!DOCTYPE html>", ""),
                "must start with <!DOCTYPE html>",
            ),
            (
                GOOD.replace(" lang=\"en-GB\"", ""),
                "needs a lang attribute",
            ),
            (GOOD.replace("<title>T</title>", ""), "needs a <title>"),
            (
                GOOD.replace("<br>", "<br class=a class=b>"),
                "HTML parse error",
            ),
            (
                GOOD.replace("<br>", "<script>x()</script>"),
                "cannot use <script>",
            ),
            (
                GOOD.replace("</table>", "<!-- never ends"),
                "HTML parse error",
            ),
        ];
        for (html, expected) in cases {
            let found = problems(&html);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{expected:?} not in {found:?}"
            );
        }
    }
}
