//! Likely typos in the domain of an address (`gmial.com`, `gmail.con`, `nhs.nte`):
//! the sign-up form asks "Did you mean ...?" before it sends a confirmation to a
//! mailbox that does not exist. Only a near miss of a domain this audience uses is
//! suggested; anything else is taken as typed.

/// The domains people in Gloucestershire's health, care and voluntary sector write
/// from most, and the big mail providers.
const KNOWN: &[&str] = &[
    "nhs.net",
    "gov.uk",
    "gloucestershire.gov.uk",
    "cheltenham.gov.uk",
    "cotswold.gov.uk",
    "fdean.gov.uk",
    "gloucester.gov.uk",
    "stroud.gov.uk",
    "tewkesbury.gov.uk",
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "outlook.com",
    "live.com",
    "live.co.uk",
    "yahoo.com",
    "yahoo.co.uk",
    "icloud.com",
    "btinternet.com",
    "aol.com",
    "protonmail.com",
    "virginmedia.com",
    "talktalk.net",
    "sky.com",
];

/// The known domain `domain` is probably a typo of, if any.
pub fn suggested_domain(domain: &str) -> Option<&'static str> {
    let domain = domain.to_ascii_lowercase();
    if KNOWN.contains(&domain.as_str()) {
        return None;
    }
    // Short names are near many others by chance: allow one slip there, two in longer.
    let allowed = if domain.len() < 10 { 1 } else { 2 };
    // Each edit changes the length by one at most: a name of another length by more
    // than that is too far, without working out how far (this runs on every sign-up).
    KNOWN
        .iter()
        .filter(|known| known.len().abs_diff(domain.len()) <= allowed)
        .map(|known| (distance(&domain, known), *known))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

/// Edits (insert, delete, substitute, or swap two neighbours) from `a` to `b`: the
/// optimal string alignment distance, on bytes (domains here are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // The table in one allocation: cell (i, j) is the distance between a[..i] and b[..j].
    let width = b.len() + 1;
    let mut cells = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        cells[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        cells[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (cells[at(i - 1, j)] + 1)
                .min(cells[at(i, j - 1)] + 1)
                .min(cells[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(cells[at(i - 2, j - 2)] + 1);
            }
            cells[at(i, j)] = best;
        }
    }
    cells[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_of_known_domains_are_suggested() {
        for (typed, meant) in [
            ("gmail.con", "gmail.com"),
            ("gmial.com", "gmail.com"),
            ("GMAIL.CMO", "gmail.com"),
            ("hotmial.co.uk", "hotmail.co.uk"),
            ("hotmail.couk", "hotmail.co.uk"),
            ("nhs.nte", "nhs.net"),
            ("nhs.ne", "nhs.net"),
            ("glocestershire.gov.uk", "gloucestershire.gov.uk"),
            ("outlok.com", "outlook.com"),
        ] {
            assert_eq!(suggested_domain(typed), Some(meant), "{typed}");
        }
    }

    #[test]
    fn known_and_unrelated_domains_are_taken_as_typed() {
        for domain in [
            "gmail.com",
            "nhs.net",
            "example.org",
            "glos.ac.uk",
            "stroud.gov.uk",
            "me.com",
            "ntl.com",
            "nhs.uk",
            "gcc.org.uk",
        ] {
            assert_eq!(suggested_domain(domain), None, "{domain}");
        }
    }
}
