//! Why a domain operation was refused. Callers branch on the variant (the admin API maps each
//! one to a status and a stable code); the message names the cause and, where there is one,
//! the fix.

/// A refused domain operation. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The object does not exist, or the caller may not learn that it exists.
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    /// A name or domain that must be unique is already taken.
    #[error("{0}")]
    Conflict(String),
    /// A field has a value the operation cannot accept.
    #[error("{0}")]
    Invalid(String),
    /// The request is well formed but the state forbids it (non-empty VA, too few licenses...).
    #[error("{0}")]
    Refused(String),
    /// The caller may see the object but not change it.
    #[error("{0}")]
    Forbidden(String),
}

impl DomainError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        DomainError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}
