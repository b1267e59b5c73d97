//! Typed identifiers. Every entity is named by an opaque UUID; the newtypes keep a licence id
//! from being passed where a Virtual Account id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The 16 bytes used as a store key.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| format!("`{s}` is not a valid {} id (expected a UUID)", $what))
            }
        }
    };
}

id_type!(/// A Smart Account held locally.
    AccountId, "account");
id_type!(/// A Virtual Account.
    VaId, "virtual account");
id_type!(/// A license pool entry.
    LicenseId, "license");
id_type!(/// A registration token.
    TokenId, "token");
id_type!(/// An operator.
    UserId, "user");
id_type!(/// An API token of an operator.
    ApiTokenId, "API token");
id_type!(/// A product instance (a registered device).
    InstanceId, "product instance");
id_type!(/// A license reservation for a disconnected device (SPEC §8b).
    ReservationId, "reservation");
