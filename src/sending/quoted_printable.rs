//! Quoted-printable (RFC 2045 §6.7), written so that pieces encoded apart join into one
//! valid body: each piece starts at the start of a line and, unless it ends one, ends
//! with a soft line break (`=` CRLF, which a reader drops). An issue's text is encoded
//! once, in the pieces between its recipients' links; each copy then only encodes its
//! own links and joins the pieces (`issues::compose::EncodedIssue`).

/// The longest encoded line, soft break's `=` included (RFC 2045: 76).
const LINE: usize = 76;

/// Appends `text`, encoded, to `out`. Line ends (`\n` or `\r\n`) become CRLF.
pub fn encode_piece(text: &str, out: &mut Vec<u8>) {
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = if last {
            line
        } else {
            line.strip_suffix('\r').unwrap_or(line)
        };
        encode_line(line.as_bytes(), out, last);
        if !last {
            out.extend_from_slice(b"\r\n");
        } else if !line.is_empty() {
            out.extend_from_slice(b"=\r\n");
        }
    }
}

/// One line, with soft breaks to keep within `LINE`. `open`: more of this line may follow
/// in another piece (after a soft break), so whitespace at its end needs no escape.
fn encode_line(line: &[u8], out: &mut Vec<u8>, open: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut column = 0;
    for (i, &byte) in line.iter().enumerate() {
        let at_end = i + 1 == line.len() && !open;
        let literal =
            matches!(byte, b'!'..=b'<' | b'>'..=b'~') || (matches!(byte, b' ' | b'\t') && !at_end);
        let width = if literal { 1 } else { 3 };
        // Room is kept for the `=` of a soft break, unless this byte ends the line.
        let room = if at_end { LINE } else { LINE - 1 };
        if column + width > room {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        if literal {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'=',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
        column += width;
    }
}

#[cfg(test)]
/// What a reader makes of it: soft breaks dropped, escapes undone.
pub(crate) fn decode(encoded: &[u8]) -> String {
    let text = std::str::from_utf8(encoded).unwrap().replace("=\r\n", "");
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'=' {
            let hex = std::str::from_utf8(&tail[..2]).unwrap();
            bytes.push(u8::from_str_radix(hex, 16).unwrap());
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(pieces: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        pieces
            .iter()
            .for_each(|piece| encode_piece(piece, &mut out));
        out
    }

    #[test]
    fn pieces_joined_decode_to_the_text_joined_with_crlf_line_ends() {
        let pieces = [
            "Dear reader,\n<p style=\"color: #1d70b8\">Caf\u{e9} = 100% \u{2014} the news </p>\n<a href=\"",
            "https://news.example.org/unsubscribe?token=AAAA&amp;b=c",
            "\">leave</a> \t\nEnd.",
        ];
        let whole = encoded(&pieces);
        assert_eq!(decode(&whole), pieces.concat().replace('\n', "\r\n"));
    }

    #[test]
    fn no_line_passes_76_and_none_ends_in_bare_whitespace() {
        let long = format!("{} \n{}\u{e9}\n", "word ".repeat(40), "x".repeat(200));
        let mut out = Vec::new();
        encode_piece(&long, &mut out);
        for line in std::str::from_utf8(&out).unwrap().split("\r\n") {
            assert!(line.len() <= LINE, "{line:?}");
            assert!(!line.ends_with([' ', '\t']), "{line:?}");
            assert!(line.bytes().all(|b| (32..127).contains(&b) || b == b'\t'));
        }
        assert_eq!(decode(&out), long.replace('\n', "\r\n"));
    }

    #[test]
    fn a_line_of_exactly_76_stays_whole_and_77_breaks() {
        let mut out = Vec::new();
        encode_piece(&format!("{}\n", "a".repeat(76)), &mut out);
        assert_eq!(out, format!("{}\r\n", "a".repeat(76)).into_bytes());
        out.clear();
        encode_piece(&format!("{}\n", "a".repeat(77)), &mut out);
        assert_eq!(
            out,
            format!("{}=\r\n{}\r\n", "a".repeat(75), "aa").into_bytes()
        );
    }
}
