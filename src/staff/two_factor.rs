//! Two-factor sign-in: time-based one-time passwords (RFC 6238, as every
//! authenticator app makes them: HMAC-SHA1, 30-second steps, six digits) and
//! single-use recovery codes for a lost phone.
//!
//! A code is accepted one step either side of now (a phone's clock drifts), and only
//! for a step later than the last one accepted, so that a code overheard cannot be
//! used again.

use ring::hmac;

use crate::tokens::random_bytes;

/// Seconds in a time step.
pub const STEP_SECONDS: i64 = 30;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;

/// A new secret: 160 bits, as RFC 4226 recommends.
pub fn new_secret() -> [u8; 20] {
    random_bytes()
}

/// The six-digit code for time step `step` (RFC 4226's HOTP with the step as counter).
pub fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let tag = tag.as_ref();
    let offset = usize::from(tag[tag.len() - 1] & 0x0f);
    let value =
        u32::from_be_bytes(tag[offset..offset + 4].try_into().expect("four bytes")) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

/// The step of a Unix time.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The step whose code `typed` is (spaces allowed), if it is one of the steps around
/// `now_step` and later than `last_step`.
pub fn accepted_step(
    secret: &[u8],
    typed: &str,
    now_step: i64,
    last_step: Option<i64>,
) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != 6 || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    (now_step - 1..=now_step + 1)
        .filter(|step| last_step.is_none_or(|last| *step > last))
        .find(|step| constant_time_eq(code_at(secret, *step).as_bytes(), typed.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret typed in.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` address an authenticator app reads from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let encode = |text: &str| {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        encode(issuer),
        encode(account),
        base32(secret),
        encode(issuer),
    )
}

/// Ten new recovery codes, each 50 random bits as ten lower-case base32 characters in
/// two groups: "abcde-fghij".
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let text = base32(&random_bytes::<7>())[..10].to_lowercase();
            format!("{}-{}", &text[..5], &text[5..])
        })
        .collect()
}

/// A recovery code as typed, in the form it is hashed in: lower-case, without spaces
/// or dashes.
pub fn normalised_recovery_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret and times, with the last six of the
    /// eight digits the RFC lists.
    #[test]
    fn codes_are_those_of_rfc_6238() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, step_of(time)), code, "at {time}");
        }
    }

    #[test]
    fn a_code_works_one_step_either_side_and_once() {
        let secret = new_secret();
        let now = step_of(1_800_000_000);
        let code = code_at(&secret, now);
        assert_eq!(accepted_step(&secret, &code, now, None), Some(now));
        assert_eq!(
            accepted_step(
                &secret,
                &format!("{} {}", &code[..3], &code[3..]),
                now,
                None
            ),
            Some(now)
        );
        assert_eq!(accepted_step(&secret, &code, now + 1, None), Some(now));
        assert_eq!(accepted_step(&secret, &code, now + 2, None), None);
        // Used once: not again.
        assert_eq!(accepted_step(&secret, &code, now, Some(now)), None);
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(accepted_step(&secret, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_is_rfc_4648s() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(&[0u8; 20]).len(), 32);
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_back() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-')
        );
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert_eq!(normalised_recovery_code(" ABCDE-fghij "), "abcdefghij");
    }
}
