//! Typed identifiers. Every entity is named by an opaque UUID; the newtypes keep a licence id
//! from being passed where a Virtual Account id is expected.
//!
//! The domain never makes up an identifier: an operation that creates an entity takes its id
//! from the [`IdSource`] the caller passes, the way it takes `now`. The daemon passes random
//! UUIDs (`app::RandomIds`); tests pass a [`SequentialIds`], so the same operations give the
//! same changes.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where the identifiers of new entities come from.
pub trait IdSource {
    /// A UUID no entity has: every call answers another one.
    fn next_uuid(&self) -> Uuid;
}

/// Identifiers numbered from 1 in the order they are asked for: the same operations in the
/// same order get the same identifiers.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl SequentialIds {
    pub const fn new() -> Self {
        SequentialIds(AtomicU64::new(0))
    }
}

impl IdSource for SequentialIds {
    fn next_uuid(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Uuid::from_u128(u128::from(n))
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The next identifier of `ids`.
            pub fn fresh(ids: &dyn IdSource) -> Self {
                Self(ids.next_uuid())
            }

            /// The 16 bytes used as a store key.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
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
id_type!(/// A Cisco device the satellite polls for RUM reports (SPEC §11).
    CiscoDeviceId, "Cisco device");
