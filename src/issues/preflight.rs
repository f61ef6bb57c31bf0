//! The accessibility preflight: what an issue is checked for before it can be scheduled.
//! Problems block scheduling unless a staff member chooses to send it anyway (and that is
//! recorded, with who); advice is shown and blocks nothing.
//!
//! From the Markdown: images without a meaningful description, link text that says
//! nothing, skipped heading levels, paragraphs in capitals, images hosted elsewhere, and
//! a reading-age estimate. From the mail as it will go out (template and brand): every
//! pair of text and background colours under WCAG 2.2 AA.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Serialize;

use crate::brand::contrast::{AA_TEXT, Colour, ratio_words};
use crate::issues::media::MediaName;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks scheduling, unless sent anyway.
    Problem,
    Advice,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// Which rule: `alt_text`, `link_text`, `headings`, `capitals`, `contrast`,
    /// `hosted_elsewhere`, `reading_age`, `size`.
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    fn problem(rule: &'static str, message: String) -> Self {
        Self {
            rule,
            severity: Severity::Problem,
            message,
        }
    }

    fn advice(rule: &'static str, message: String) -> Self {
        Self {
            rule,
            severity: Severity::Advice,
            message,
        }
    }
}

/// Gmail shows no more of a mail's HTML than this, in bytes.
const GMAIL_CLIPS: usize = 102 * 1024;

/// Everything the preflight found, problems first.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// The body's reading age in years (Flesch–Kincaid grade + 5), if it is long enough
    /// to tell.
    pub reading_age: Option<u32>,
}

impl Report {
    pub fn problems(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
    }

    pub fn has_problems(&self) -> bool {
        self.problems().next().is_some()
    }
}

/// Checks an issue: its Markdown, and its mail's HTML as it will be sent.
pub fn check(markdown: &str, mail_html: &str) -> Report {
    let mut findings = Vec::new();
    let body = Body::read(markdown);
    for (src, alt) in &body.images {
        if let Some(why) = meaningless_alt(alt, src) {
            findings.push(Finding::problem(
                "alt_text",
                format!("The image {} is described as “{alt}”, {why}. Say what it shows and why it is there.", file_name(src)),
            ));
        }
        if !src.starts_with("/media/") {
            findings.push(Finding::advice(
                "hosted_elsewhere",
                format!("The image {} is on another site: it can change or vanish after the issue is sent, and mail programs cannot size it before it loads. Upload it instead.", file_name(src)),
            ));
        }
    }
    for text in &body.links {
        if let Some(why) = empty_link_text(text) {
            findings.push(Finding::problem(
                "link_text",
                format!("A link says “{text}”, {why}. Give it words that say where it goes: [the Know Your Patch dates](https://…)."),
            ));
        }
    }
    findings.extend(body.heading_findings());
    for paragraph in &body.capitals {
        findings.push(Finding::problem(
            "capitals",
            format!("“{}” is written in capitals, which is harder to read and is read out letter by letter by some screen readers. Write it in ordinary case (use **bold** to stress it).", shortened(paragraph)),
        ));
    }
    findings.extend(contrast_findings(mail_html));
    if mail_html.len() > GMAIL_CLIPS {
        findings.push(Finding::advice(
            "size",
            format!("The mail's HTML is {} KB: Gmail shows only the first 102 KB of a mail and hides the rest (the way out at its foot included) behind “View entire message”. Shorten it, or split it in two.", mail_html.len() / 1000),
        ));
    }
    let reading_age = reading_age(&body.sentences);
    if let Some(age) = reading_age.filter(|age| *age > 14) {
        findings.push(Finding::advice(
            "reading_age",
            format!("The body reads at the level of a {age}-year-old. Plain English aims at 9 to 14: shorter sentences and everyday words help everyone, and people reading in a second language most."),
        ));
    }
    findings.sort_by_key(|f| f.severity != Severity::Problem);
    Report {
        findings,
        reading_age,
    }
}

/// What the body is made of, for the rules.
#[derive(Default)]
struct Body {
    images: Vec<(String, String)>,
    /// The words of each link, and each web address written out in the text (which
    /// becomes a link whose words are the address).
    links: Vec<String>,
    headings: Vec<(HeadingLevel, String)>,
    /// Paragraphs written in capitals.
    capitals: Vec<String>,
    /// The text of each block, for the reading age.
    sentences: Vec<String>,
}

impl Body {
    fn read(markdown: &str) -> Self {
        let mut body = Body::default();
        let mut image: Option<(String, String)> = None;
        let mut link: Option<String> = None;
        let mut heading: Option<(HeadingLevel, String)> = None;
        let mut block = String::new();
        for event in Parser::new_ext(
            markdown,
            Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
        ) {
            match event {
                Event::Start(Tag::Image { dest_url, .. }) => {
                    image = Some((dest_url.to_string(), String::new()))
                }
                Event::End(TagEnd::Image) => body.images.extend(image.take()),
                Event::Start(Tag::Link { .. }) => link = Some(String::new()),
                Event::End(TagEnd::Link) => body.links.extend(link.take()),
                Event::Start(Tag::Heading { level, .. }) => heading = Some((level, String::new())),
                Event::End(TagEnd::Heading(_)) => {
                    if let Some((level, text)) = heading.take() {
                        body.sentences.push(text.clone());
                        body.headings.push((level, text));
                    }
                    block.clear();
                }
                Event::Text(text) | Event::Code(text) => {
                    if let Some((_, alt)) = image.as_mut() {
                        alt.push_str(&text);
                        continue;
                    }
                    match link.as_mut() {
                        Some(words) => words.push_str(&text),
                        None => body.links.extend(
                            text.split_whitespace()
                                .filter(|w| w.starts_with("https://") || w.starts_with("http://"))
                                .map(|w| w.trim_end_matches(['.', ',', ')', ';', ':']).to_owned()),
                        ),
                    }
                    if let Some((_, words)) = heading.as_mut() {
                        words.push_str(&text);
                    } else {
                        block.push_str(&text);
                    }
                }
                Event::SoftBreak | Event::HardBreak => block.push(' '),
                Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::TableCell) => {
                    let text = block.trim().to_owned();
                    if in_capitals(&text) {
                        body.capitals.push(text.clone());
                    }
                    if !text.is_empty() {
                        body.sentences.push(text);
                    }
                    block.clear();
                }
                _ => {}
            }
        }
        body
    }

    /// The mail's title is its heading 1; the body's headings may go down one level at
    /// a time (and back up any number).
    fn heading_findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut previous = 1;
        for (level, text) in &self.headings {
            let level = *level as usize;
            if level == 1 {
                findings.push(Finding::advice(
                    "headings",
                    format!("“{text}” is a heading 1 (#), like the issue's title above it. Sections read better as ## headings."),
                ));
            }
            if level > previous + 1 {
                findings.push(Finding::problem(
                    "headings",
                    format!("The heading “{text}” is a heading {level} after a heading {previous}: a level is skipped, and people who move by headings lose their place. Make it {}.", "#".repeat(previous + 1)),
                ));
            }
            previous = level;
        }
        findings
    }
}

fn file_name(src: &str) -> String {
    let name = src.rsplit('/').next().unwrap_or(src);
    if MediaName::from_url(src).is_some() {
        "you uploaded".into()
    } else {
        format!("“{name}”")
    }
}

fn shortened(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().take(8).collect();
    if text.split_whitespace().count() > 8 {
        words.push("…");
    }
    words.join(" ")
}

/// Words that describe no picture.
const EMPTY_ALT: &[&str] = &[
    "image",
    "picture",
    "photo",
    "photograph",
    "img",
    "graphic",
    "pic",
    "logo",
    "icon",
    "banner",
    "screenshot",
    "untitled",
    "alt",
    "alt text",
    "placeholder",
];

fn normalised(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why an image's description says nothing, if it does not.
fn meaningless_alt(alt: &str, src: &str) -> Option<&'static str> {
    let words = normalised(alt);
    let alt = alt.trim();
    let lower = alt.to_ascii_lowercase();
    let looks_like_a_file = [".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".heic"]
        .iter()
        .any(|e| lower.ends_with(e))
        || (!alt.contains(' ')
            && alt.chars().any(|c| c.is_ascii_digit())
            && alt.chars().any(|c| c == '_' || c == '-'))
        || ["img_", "img-", "dsc", "pxl_", "screenshot "]
            .iter()
            .any(|p| lower.starts_with(p));
    let named_as_the_file = src
        .rsplit('/')
        .next()
        .map(|f| normalised(f.rsplit_once('.').map_or(f, |(stem, _)| stem)))
        .is_some_and(|stem| stem == words);
    if words.is_empty() {
        Some("which says nothing")
    } else if EMPTY_ALT.contains(&words.as_str())
        || EMPTY_ALT.iter().any(|w| {
            words
                .strip_prefix(w)
                .is_some_and(|rest| rest.trim().chars().all(|c| c.is_ascii_digit()))
        })
    {
        Some("a word for any picture")
    } else if looks_like_a_file || named_as_the_file {
        Some("which is a file name")
    } else {
        None
    }
}

/// Link words that say nothing of where they go.
const EMPTY_LINK: &[&str] = &[
    "click here",
    "here",
    "click",
    "read more",
    "more",
    "learn more",
    "find out more",
    "more info",
    "more information",
    "this",
    "this link",
    "link",
    "click this link",
    "details",
    "go",
    "see here",
    "this page",
    "website",
    "continue",
];

fn empty_link_text(text: &str) -> Option<&'static str> {
    let words = normalised(text);
    let text = text.trim();
    if EMPTY_LINK.contains(&words.as_str()) {
        Some("which does not say where it goes")
    } else if text.contains("://") || text.starts_with("www.") {
        Some("a bare web address, which screen readers read out character by character")
    } else {
        None
    }
}

/// A paragraph of at least four words with letters, none of them small.
fn in_capitals(text: &str) -> bool {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let words = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    words >= 4 && letters.len() >= 12 && letters.iter().all(|c| !c.is_lowercase())
}

/// Syllables in a word, by its groups of vowels (a silent final e aside).
fn syllables(word: &str) -> usize {
    let word = word.to_ascii_lowercase();
    let mut count = 0;
    let mut in_vowels = false;
    for c in word.chars() {
        let vowel = "aeiouy".contains(c);
        if vowel && !in_vowels {
            count += 1;
        }
        in_vowels = vowel;
    }
    if word.ends_with('e') && !word.ends_with("le") && count > 1 {
        count -= 1;
    }
    count.max(1)
}

/// The reading age of the blocks: Flesch–Kincaid grade level plus five, from at least
/// 30 words.
fn reading_age(blocks: &[String]) -> Option<u32> {
    let (mut words, mut sentences, mut syllable_count) = (0usize, 0usize, 0usize);
    for block in blocks {
        let block_words: Vec<&str> = block
            .split_whitespace()
            .filter(|w| !w.contains("://") && w.chars().any(char::is_alphabetic))
            .collect();
        if block_words.is_empty() {
            continue;
        }
        words += block_words.len();
        syllable_count += block_words
            .iter()
            .map(|w| syllables(&w.chars().filter(|c| c.is_alphabetic()).collect::<String>()))
            .sum::<usize>();
        sentences += block
            .split(['.', '!', '?'])
            .filter(|s| s.chars().any(char::is_alphabetic))
            .count()
            .max(1);
    }
    if words < 30 {
        return None;
    }
    let grade = 0.39 * words as f64 / sentences as f64
        + 11.8 * syllable_count as f64 / words as f64
        - 15.59;
    Some((grade.max(0.0) + 5.0).round() as u32)
}

/// A colour from an inline style: `color:` or `background(-color):`.
fn style_colour(style: &str, property: &str) -> Option<Colour> {
    style.split(';').find_map(|declaration| {
        let (name, value) = declaration.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        let wanted = if property == "background" {
            name == "background" || name == "background-color"
        } else {
            name == property
        };
        if !wanted {
            return None;
        }
        value.split_whitespace().find_map(Colour::parse)
    })
}

/// Every pair of text and background colour in the mail under AA, once each.
fn contrast_findings(html: &str) -> Vec<Finding> {
    use super::html_check::VOID;
    use html5gum::{Token, Tokenizer};
    // (element, text colour, background, hidden)
    let mut stack: Vec<(String, Colour, Colour, bool)> = Vec::new();
    let mut seen = Vec::new();
    let mut findings = Vec::new();
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                let (colour, background, hidden) = stack.last().map_or(
                    (Colour::parse("#0b0c0c").unwrap(), Colour::WHITE, false),
                    |(_, c, b, h)| (*c, *b, *h),
                );
                let style = tag
                    .attributes
                    .get(b"style".as_slice())
                    .map(|v| String::from_utf8_lossy(&v.value).to_ascii_lowercase())
                    .unwrap_or_default();
                let hidden = hidden || style.replace(' ', "").contains("display:none");
                let text = style_colour(&style, "color");
                let back = style_colour(&style, "background");
                let (colour, background) = (text.unwrap_or(colour), back.unwrap_or(background));
                if (text.is_some() || back.is_some()) && !hidden && name != "img" {
                    let ratio = colour.contrast(background);
                    if ratio < AA_TEXT && !seen.contains(&(colour, background)) {
                        seen.push((colour, background));
                        findings.push(Finding::problem(
                            "contrast",
                            format!("The template puts text of {colour} on {background}: a contrast of {}, under the 4.5 to 1 WCAG 2.2 AA needs. Change the template's colours (or the brand's).", ratio_words(ratio)),
                        ));
                    }
                }
                if !VOID.contains(&name.as_str()) && !tag.self_closing {
                    stack.push((name, colour, background, hidden));
                }
            }
            Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                if let Some(at) = stack.iter().rposition(|(n, ..)| *n == name) {
                    stack.truncate(at);
                }
            }
            _ => {}
        }
    }
    findings
}

#[cfg(test)]
mod tests;
