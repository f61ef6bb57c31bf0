//! Staff accounts for the web UI: roles, and passwords kept as argon2id hashes.
//!
//! Editors write, preview and schedule issues; admins may also manage users, tokens,
//! imports and erasure.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Editor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            other => anyhow::bail!("unknown staff role {other:?}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StaffUser {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

/// The shortest password accepted: length is what makes a password hard to guess.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Checks a new password against the policy: why it is refused, if it is.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Some(format!(
            "A password needs at least {MIN_PASSWORD_CHARS} characters."
        ));
    }
    if password.chars().count() > 1000 {
        return Some("A password can have at most 1,000 characters.".into());
    }
    None
}

/// The argon2id hash of `password`, with a random salt, as a PHC string. It takes a
/// deliberate fraction of a second: call it off the async threads.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("Failed to hash the password: {e}"))
}

/// Whether `password` matches the stored `hash`. Slow, like `hash_password`.
pub fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash of no one's password, checked when the address is unknown, so that a
/// wrong address takes as long to refuse as a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not anyone's password at all").expect("hashing works"))
}

/// A normalised sign-in address: trimmed and lower-case.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_matches_its_password_only() {
        let hash = hash_password("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery staple", &hash));
        assert!(!password_matches("correct horse battery stapler", &hash));
        assert!(!password_matches("anything", "not a hash"));
        assert_ne!(hash, hash_password("correct horse battery staple").unwrap());
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(password_problem("short").is_some());
        assert!(password_problem("twelve chars").is_none());
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Admin, Role::Editor] {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert!(Role::parse("owner").is_err());
    }
}
