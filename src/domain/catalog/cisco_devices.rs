//! The Cisco devices area of the catalog: IOS XE devices the satellite polls for RUM reports
//! (pull mode, SPEC §11), by id and by (account, name). Only this file changes them, so a name
//! is never held by two devices of one account.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{IdMap, Removable, Stored};
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AccountId, CiscoDeviceId, VaId};

/// How the satellite knows it is talking to the device it was told to poll. There is no
/// "accept anything": an operator names a CA or pins the device's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceTrust {
    /// A CA certificate (PEM) that signed the device's certificate.
    Ca(String),
    /// The SHA-256 of the device's own (end-entity) certificate, DER.
    Fingerprint([u8; 32]),
}

/// A device the satellite polls over its `/smartlic-service` REST API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiscoDevice {
    pub id: CiscoDeviceId,
    pub account: AccountId,
    /// The VA whose operators manage this device.
    pub va: VaId,
    /// The operator's label, unique per account.
    pub name: String,
    /// `host` or `host:port` of the device's HTTPS server.
    pub address: String,
    pub username: String,
    /// The password, sealed with AES-256-GCM under the satellite's credentials key, with the
    /// device's id as associated data (`cisco::seal`). The domain never sees it in clear.
    pub sealed_password: Vec<u8>,
    pub trust: DeviceTrust,
    pub created_at: OffsetDateTime,
    /// Who added the device (the audit actor).
    pub created_by: String,
}

/// The sealed password is shown as its length only: a record printed in a log or a panic
/// message gives nothing away, not even the ciphertext.
impl fmt::Debug for CiscoDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiscoDevice")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("va", &self.va)
            .field("name", &self.name)
            .field("address", &self.address)
            .field("username", &self.username)
            .field(
                "sealed_password",
                &format_args!("<sealed, {} bytes>", self.sealed_password.len()),
            )
            .field("trust", &self.trust)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .finish()
    }
}

/// The polled devices. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct CiscoDevices {
    pub by_id: IdMap<CiscoDeviceId, CiscoDevice>,
    pub by_name: HashMap<(AccountId, String), CiscoDeviceId>,
}

impl CiscoDevices {
    fn put(&mut self, d: CiscoDevice) {
        self.take(d.id);
        self.by_name.insert((d.account, d.name.clone()), d.id);
        self.by_id.insert(d.id, d);
    }

    fn take(&mut self, id: CiscoDeviceId) {
        if let Some(d) = self.by_id.remove(&id) {
            self.by_name.remove(&(d.account, d.name));
        }
    }
}

impl Stored for CiscoDevice {
    fn put(self, c: &mut Catalog) {
        c.cisco_devices.put(self);
    }
}

impl Removable for CiscoDevice {
    type Key = CiscoDeviceId;
    fn take(id: CiscoDeviceId, c: &mut Catalog) {
        c.cisco_devices.take(id);
    }
}

impl Catalog {
    /// A polled device by id, whoever asks (the poller; operations check access themselves).
    pub fn cisco_device(&self, id: CiscoDeviceId) -> Option<&CiscoDevice> {
        self.cisco_devices.by_id.get(&id)
    }

    /// A polled device of `account` by name.
    pub fn cisco_device_named(&self, account: AccountId, name: &str) -> Option<&CiscoDevice> {
        self.cisco_devices
            .by_name
            .get(&(account, name.to_owned()))
            .and_then(|id| self.cisco_devices.by_id.get(id))
    }

    /// Every polled device, ordered by account and name.
    pub fn all_cisco_devices(&self) -> Vec<&CiscoDevice> {
        let mut all: Vec<_> = self.cisco_devices.by_id.values().collect();
        all.sort_by(|a, b| (a.account, &a.name).cmp(&(b.account, &b.name)));
        all
    }
}
