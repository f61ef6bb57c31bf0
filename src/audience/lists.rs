//! The lists: what staff may call one, and the address (slug) it gets from its name.

use crate::fields::FieldError;

pub const MAX_NAME: usize = 100;
pub const MAX_DESCRIPTION: usize = 500;
/// A slug's longest, in ASCII characters.
pub const MAX_SLUG: usize = 60;

/// A list's details as staff give them, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListDetails {
    pub name: String,
    pub description: String,
    /// Offered on the sign-up form and the preference page; a private list is one
    /// staff add people to.
    pub public: bool,
}

impl ListDetails {
    /// Every field's problem at once.
    pub fn parse(name: &str, description: &str, public: bool) -> Result<Self, Vec<FieldError>> {
        let (name, description) = (name.trim(), description.trim());
        let mut errors = Vec::new();
        if name.is_empty() {
            errors.push(FieldError::new("name", "Give the list a name."));
        } else if name.chars().count() > MAX_NAME {
            errors.push(FieldError::new(
                "name",
                format!("The name must be {MAX_NAME} characters or fewer."),
            ));
        } else if name.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "name",
                "The name must be one line, without control characters.",
            ));
        } else if slug_of(name).is_empty() {
            errors.push(FieldError::new(
                "name",
                "The name needs at least one letter or digit.",
            ));
        }
        if description.chars().count() > MAX_DESCRIPTION {
            errors.push(FieldError::new(
                "description",
                format!("The description must be {MAX_DESCRIPTION} characters or fewer."),
            ));
        } else if description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            errors.push(FieldError::new(
                "description",
                "The description must not contain control characters.",
            ));
        }
        if errors.is_empty() {
            Ok(ListDetails {
                name: name.to_owned(),
                description: description.to_owned(),
                public,
            })
        } else {
            Err(errors)
        }
    }

    /// The slug a new list with this name gets.
    pub fn slug(&self) -> String {
        slug_of(&self.name)
    }
}

/// "Locality news: Stroud & Forest" is `locality-news-stroud-forest`: ASCII letters and
/// digits, lower case, joined by single hyphens, at most `MAX_SLUG` long.
pub fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.chars().take(MAX_SLUG).collect();
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_makes_a_slug() {
        assert_eq!(
            slug_of("Locality news: Stroud & Forest"),
            "locality-news-stroud-forest"
        );
        assert_eq!(slug_of("  Ça va? 2027  "), "a-va-2027");
        assert_eq!(slug_of(&"x".repeat(80)).len(), MAX_SLUG);
    }

    #[test]
    fn a_list_needs_a_name_of_one_line() {
        assert!(ListDetails::parse("", "", true).is_err());
        assert!(ListDetails::parse("!!!", "", true).is_err());
        assert!(ListDetails::parse("A\u{7}B", "", true).is_err());
        assert!(ListDetails::parse(&"n".repeat(101), "", true).is_err());
        let errors = ListDetails::parse("", &"d".repeat(501), true).unwrap_err();
        assert_eq!(errors.len(), 2);
        let details =
            ListDetails::parse(" Stroud news ", "For Stroud.\nQuarterly.", false).unwrap();
        assert_eq!(details.name, "Stroud news");
        assert_eq!(details.slug(), "stroud-news");
        assert!(!details.public);
    }
}
