//! Staff accounts for the web UI: roles, and passwords kept as argon2id hashes.
//!
//! Editors write, preview and schedule issues; admins may also manage users, tokens,
//! imports and erasure.

pub mod sessions;
pub mod two_factor;

use anyhow::Context;
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

/// Bounds the password checks in flight. Each takes a core and about 19 MiB for a
/// fraction of a second: unbounded, 64 sign-ins at once would take a gigabyte. A check
/// that cannot start within `wait` is refused, so the caller can say "try again".
#[derive(Clone, Debug)]
pub struct PasswordChecks {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
}

/// Too many password checks are waiting already.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl PasswordChecks {
    pub fn new(at_once: usize, wait: std::time::Duration) -> Self {
        Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(at_once.max(1))),
            wait,
        }
    }

    /// As many at once as the machine has cores; a check waits at most five seconds.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new(cores, std::time::Duration::from_secs(5))
    }

    /// Whether `password` matches `hash`; with no hash (an unknown address), as slow as
    /// a wrong password, so that timing does not tell who has an account.
    pub async fn matches(
        &self,
        password: String,
        hash: Option<String>,
    ) -> anyhow::Result<Result<bool, Busy>> {
        let Ok(Ok(permit)) =
            tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await
        else {
            return Ok(Err(Busy));
        };
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match hash {
                Some(hash) => password_matches(&password, &hash),
                None => {
                    password_matches(&password, dummy_hash());
                    false
                }
            }
        })
        .await
        .context("A password check panicked")?;
        Ok(Ok(matches))
    }

    /// The hash of a new password, made within the same bound as the checks.
    pub async fn hash(&self, password: String) -> anyhow::Result<Result<String, Busy>> {
        let Ok(Ok(permit)) =
            tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await
        else {
            return Ok(Err(Busy));
        };
        let hash = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_password(&password)
        })
        .await
        .context("Hashing a password panicked")??;
        Ok(Ok(hash))
    }
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

    #[tokio::test]
    async fn password_checks_wait_their_turn_and_give_up_when_busy() {
        let checks = PasswordChecks::new(1, std::time::Duration::from_millis(20));
        let hash = hash_password("correct horse battery staple").unwrap();
        let right = checks.matches("correct horse battery staple".into(), Some(hash.clone()));
        assert_eq!(right.await.unwrap(), Ok(true));
        assert_eq!(checks.matches("x".into(), None).await.unwrap(), Ok(false));
        // The one permit is taken: the next check gives up after its wait.
        let held = checks.permits.clone().acquire_owned().await.unwrap();
        assert_eq!(
            checks.matches("x".into(), Some(hash)).await.unwrap(),
            Err(Busy)
        );
        drop(held);
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
