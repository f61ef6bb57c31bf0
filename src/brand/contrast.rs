//! Colours and WCAG 2.2 contrast: a colour is `#rrggbb`, and a pair of them passes AA
//! for body text at 4.5 to 1.

use std::fmt;

/// A colour as `#rrggbb`, lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colour([u8; 3]);

/// The least contrast WCAG 2.2 AA allows for text of ordinary size.
pub const AA_TEXT: f64 = 4.5;

impl Colour {
    pub const WHITE: Colour = Colour([0xff, 0xff, 0xff]);

    /// `#rgb` or `#rrggbb`, with or without the `#`.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.trim().trim_start_matches('#');
        let digits: Vec<u8> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()?;
        match digits[..] {
            [r, g, b] => Some(Self([r * 17, g * 17, b * 17])),
            [r1, r2, g1, g2, b1, b2] => Some(Self([r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2])),
            _ => None,
        }
    }

    /// Relative luminance, as WCAG defines it.
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    /// The contrast ratio of two colours, from 1 to 21.
    pub fn contrast(self, other: Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

/// A ratio as people read it: 4.48 to 1 is not rounded up to 4.5.
pub fn ratio_words(ratio: f64) -> String {
    format!("{:.2} to 1", (ratio * 100.0).floor() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_read_in_either_form() {
        assert_eq!(Colour::parse("#1D4F91").unwrap().to_string(), "#1d4f91");
        assert_eq!(Colour::parse("fff").unwrap(), Colour::WHITE);
        for bad in ["", "#12", "#12345g", "blue", "#1234567", "#ｆｆｆ"] {
            assert_eq!(Colour::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn contrast_matches_wcag() {
        let black = Colour::parse("#000").unwrap();
        assert!((black.contrast(Colour::WHITE) - 21.0).abs() < 1e-9);
        let brand = Colour::parse("#1d4f91").unwrap();
        assert_eq!(ratio_words(brand.contrast(Colour::WHITE)), "8.14 to 1");
        // #767676 on white is the lightest grey that passes; #777777 fails.
        assert!(Colour::parse("#767676").unwrap().contrast(Colour::WHITE) >= AA_TEXT);
        assert!(Colour::parse("#777777").unwrap().contrast(Colour::WHITE) < AA_TEXT);
    }
}
