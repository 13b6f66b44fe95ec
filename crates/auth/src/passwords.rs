//! Password hashing (argon2id, off the async executor) and the password policy.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use switchyard_core::error::ErrorCode;
use switchyard_core::{Error, Result};

pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 1_024;

/// The 10,000 most common passwords (see `data/README.md`), lowercase.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .collect()
});

/// Hashes a password with argon2id (default parameters) on the blocking pool.
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal_msg(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| Error::internal("hashing task failed", e))?
}

/// Checks a password against a stored hash on the blocking pool (argon2's comparison is
/// constant-time).
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// At least 12 characters, at most 1 KiB, not one of the 10,000 most common passwords.
/// No composition rules (NIST SP 800-63B).
pub fn check_password_policy(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::new(
            ErrorCode::WeakPassword,
            format!("passwords need at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::new(
            ErrorCode::WeakPassword,
            format!("passwords are at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    if COMMON.contains(password.to_lowercase().as_str()) {
        return Err(Error::new(
            ErrorCode::WeakPassword,
            "this password is one of the 10,000 most common passwords; choose another",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("a perfectly fine passphrase").is_ok());
        assert!(check_password_policy(&"x".repeat(2_000)).is_err());
        assert_eq!(COMMON.len(), 10_000);
        // Long entries of the common list are refused whatever their case.
        let long_common = COMMON
            .iter()
            .find(|p| p.chars().count() >= MIN_PASSWORD_LEN)
            .unwrap();
        let e = check_password_policy(&long_common.to_uppercase()).unwrap_err();
        assert!(e.message.contains("common"), "{}", e.message);
    }

    #[tokio::test]
    async fn hashes_verify() {
        let h = hash_password("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), h.clone()).await);
        assert!(!verify_password("wrong horse battery".into(), h.clone()).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }
}
