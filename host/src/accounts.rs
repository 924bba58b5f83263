//! Passwords and account names: hashing with argon2 and the rules for what is accepted.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest username accepted (Rossum's, Django's).
pub const MAX_USERNAME_CHARS: usize = 150;

/// Why an account field was refused. The variant says which field (the API answers
/// `{"username": [...]}` or `{"password": [...]}` by it); the message does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username breaks the rules.
    #[error("1 to {MAX_USERNAME_CHARS} letters, digits and @.+-_")]
    BadUsername,
    /// The password has fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("at least {MIN_PASSWORD_CHARS} characters")]
    ShortPassword,
    /// argon2 failed (its error as text): the host's fault, not the user's, so the API
    /// answers 500.
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Checks a username: 1 to 150 of letters, digits and `@.+-_`.
pub fn validate_username(username: &str) -> Result<(), AccountError> {
    let valid = !username.is_empty()
        && username.chars().count() <= MAX_USERNAME_CHARS
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c));
    valid.then_some(()).ok_or(AccountError::BadUsername)
}

/// Hashes a password with argon2id and a random salt (slow on purpose: call it off the
/// async threads).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::ShortPassword);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| AccountError::Hash(error.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| AccountError::Hash(error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AccountError::Hash(error.to_string()))
}

/// The stored hash of a user created without a password (Django's unusable password): not
/// a PHC string, so no password verifies against it and the user cannot log in until one
/// is set.
pub const UNUSABLE_PASSWORD: &str = "!";

/// Whether a password matches a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_verifies_against_the_unusable_one() {
        for password in ["", "!", "correct horse"] {
            assert!(!verify_password(password, UNUSABLE_PASSWORD));
        }
    }

    #[test]
    fn hashes_verify_and_differ_by_salt() -> Result<(), AccountError> {
        let first = hash_password("correct horse")?;
        let second = hash_password("correct horse")?;
        assert_ne!(first, second);
        assert!(verify_password("correct horse", &first));
        assert!(!verify_password("wrong horse", &first));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(AccountError::ShortPassword)
        ));
        Ok(())
    }

    #[test]
    fn usernames_follow_the_rules() {
        assert!(validate_username("ann.smith+ops@example.com").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username(&"a".repeat(151)).is_err());
    }
}
