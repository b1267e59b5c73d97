//! Console passwords: argon2id hashing and checking, off the async threads.
//!
//! A hash takes about 19 MiB and tens of milliseconds of one core (more in debug builds), so it
//! runs on tokio's blocking pool, at most [`HASHING_AT_ONCE`] at a time: a burst of logins
//! cannot take both cores and the memory away from the devices. Failed logins are rate-limited
//! before a hash is computed (`console::login`).

use std::sync::{Arc, OnceLock};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::server::error::ApiError;

use crate::protocol::admin::{PASSWORD_MAX_BYTES as MAX_BYTES, PASSWORD_MIN_LENGTH as MIN_LENGTH};

/// How many hashes may run at once (each holds m = 19 MiB).
pub const HASHING_AT_ONCE: usize = 2;

/// argon2id with m = 19 MiB, t = 2, p = 1: OWASP's recommended minimum, sized for a 2-core
/// server that also serves devices. Checking reads the parameters from the stored string, so
/// they can be raised later without invalidating existing passwords.
fn argon() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Refuses a password outside the length bounds, naming the bound.
pub fn check_length(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the password is too short: use at least {MIN_LENGTH} characters"),
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the password is too long: use at most {MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The hasher the daemon shares: a bound on concurrent hashes.
#[derive(Clone, Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(HASHING_AT_ONCE)),
        }
    }
}

impl Passwords {
    /// The PHC string of `password` with a fresh random salt, after the length checks.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        check_length(&password)?;
        self.blocking(move || {
            argon()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| ApiError::internal(format!("cannot hash the password: {e}")))
        })
        .await?
    }

    /// Whether `password` matches `phc`. Without a stored password (an unknown user, or a user
    /// who has none) a fixed dummy hash is checked instead, so the answer takes as long and
    /// does not tell which names exist. An unreadable stored string is logged and refused.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, ApiError> {
        if password.len() > MAX_BYTES {
            return Ok(false);
        }
        self.blocking(move || {
            let known = phc.is_some();
            let text = phc.unwrap_or_else(|| dummy().to_string());
            let parsed = match PasswordHash::new(&text) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(cause = %e, "a stored console password is unreadable");
                    return false;
                }
            };
            argon()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && known
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the password hasher is closed"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
    }
}

/// A hash of a random password nobody knows, computed once, for checks without a stored hash.
fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret = crate::app::secrets::generate("");
        argon()
            .hash_password(secret.text.as_bytes())
            .map(|h| h.to_string())
            .expect("hashing a random password with constant parameters succeeds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_checks_its_password_and_no_other() {
        let p = Passwords::default();
        let phc = p.hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(
            p.verify("correct horse battery".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !p.verify("correct horse batterY".into(), Some(phc))
                .await
                .unwrap()
        );
        assert!(
            !p.verify("correct horse battery".into(), None)
                .await
                .unwrap()
        );
        assert!(
            !p.verify("x".into(), Some("not a phc".into()))
                .await
                .unwrap()
        );
    }

    #[test]
    fn length_bounds() {
        assert!(check_length("short").is_err());
        assert!(check_length("twelve chars").is_ok());
        assert!(check_length(&"x".repeat(MAX_BYTES + 1)).is_err());
    }
}
