//! The credentials area of the catalog: registration tokens, operators and their API tokens,
//! each also found by the SHA-256 of its secret. Only this file changes them, so a hash
//! always names a token that exists.

use std::collections::{BTreeMap, HashMap};

use super::{Removable, Stored};
use crate::domain::catalog::Catalog;
use crate::domain::ids::{ApiTokenId, TokenId, UserId};
use crate::domain::model::{ApiToken, RegistrationToken, User, UserPassword};

/// Tokens and users. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct Credentials {
    pub tokens: HashMap<TokenId, RegistrationToken>,
    pub tokens_by_hash: HashMap<[u8; 32], TokenId>,
    pub users: BTreeMap<UserId, User>,
    pub api_tokens: HashMap<ApiTokenId, ApiToken>,
    pub api_tokens_by_hash: HashMap<[u8; 32], ApiTokenId>,
    /// Console passwords by user; a user without one cannot log in to the console.
    pub passwords: HashMap<UserId, UserPassword>,
}

impl Stored for RegistrationToken {
    fn put(self, c: &mut Catalog) {
        let area = &mut c.credentials;
        area.tokens_by_hash.insert(self.secret_hash, self.id);
        area.tokens.insert(self.id, self);
    }
}

impl Removable for RegistrationToken {
    type Key = TokenId;
    fn take(id: TokenId, c: &mut Catalog) {
        let area = &mut c.credentials;
        if let Some(t) = area.tokens.remove(&id) {
            area.tokens_by_hash.remove(&t.secret_hash);
        }
    }
}

impl Stored for User {
    fn put(self, c: &mut Catalog) {
        c.credentials.users.insert(self.id, self);
    }
}

impl Removable for User {
    type Key = UserId;
    fn take(id: UserId, c: &mut Catalog) {
        c.credentials.users.remove(&id);
    }
}

impl Stored for ApiToken {
    fn put(self, c: &mut Catalog) {
        let area = &mut c.credentials;
        area.api_tokens_by_hash.insert(self.secret_hash, self.id);
        area.api_tokens.insert(self.id, self);
    }
}

impl Removable for ApiToken {
    type Key = ApiTokenId;
    fn take(id: ApiTokenId, c: &mut Catalog) {
        let area = &mut c.credentials;
        if let Some(t) = area.api_tokens.remove(&id) {
            area.api_tokens_by_hash.remove(&t.secret_hash);
        }
    }
}

impl Stored for UserPassword {
    fn put(self, c: &mut Catalog) {
        c.credentials.passwords.insert(self.user, self);
    }
}

impl Removable for UserPassword {
    type Key = UserId;
    fn take(id: UserId, c: &mut Catalog) {
        c.credentials.passwords.remove(&id);
    }
}
