//! Cisco devices polled for RUM reports (pull mode, SPEC §11): the operator adds a device with
//! its address, credentials and trust, lists, shows and removes it. The device's VA decides who
//! may manage it; a device in a VA outside the caller's scope is not found.
//!
//! The password reaches the domain sealed: the caller passes a function that seals it for a
//! device id (AES-256-GCM under the satellite's credentials key, with the id as associated
//! data), so the domain draws the id and never sees the clear text, a key or a random nonce.

use time::OffsetDateTime;

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, CiscoDevice, DeviceTrust, Record, Removal};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{CiscoDeviceId, IdSource, VaId};

/// The longest device name.
pub const MAX_DEVICE_NAME: usize = 64;
/// The longest user name sent in Basic authentication.
pub const MAX_DEVICE_USER: usize = 64;
/// The largest CA certificate file accepted for a device.
pub const MAX_DEVICE_CA_BYTES: usize = 64 * 1024;

/// What an operator gives to add a device (the password is sealed separately).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiscoDeviceSpec {
    pub va: VaId,
    pub name: String,
    pub address: String,
    pub username: String,
    pub trust: DeviceTrust,
}

impl Catalog {
    /// Adds a device to poll. `seal` seals the password for the new device's id.
    pub fn add_cisco_device(
        &self,
        p: &Principal,
        spec: CiscoDeviceSpec,
        seal: &dyn Fn(CiscoDeviceId) -> Vec<u8>,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, CiscoDevice), DomainError> {
        let va = self.check_va(p, spec.va, Access::Write)?;
        // A poll's answer is ingested like a push to the account's ingest URL: its reports may
        // name any device of the account, new devices join the Default VA, and the ACKs of the
        // devices it names are sent to the device's address. Adding one is that URL's power,
        // which only those who may change the account hold (`account show`).
        if self.account_access(p, va.account) != Some(Access::Write) {
            return Err(DomainError::Forbidden(format!(
                "{} may not add a polled Cisco device: its reports act on the whole account \
                 `{}`, like the account's RUM ingest URL; ask an account-admin",
                p.actor,
                self.account(va.account).map_or("", |a| a.name.as_str())
            )));
        }
        // A dedicated VA's devices report to the child satellite that holds it.
        self.check_not_dedicated(spec.va)?;
        check_name(&spec.name)?;
        check_address(&spec.address)?;
        check_user(&spec.username)?;
        check_trust(&spec.trust)?;
        if self.cisco_device_named(va.account, &spec.name).is_some() {
            return Err(DomainError::Conflict(format!(
                "a Cisco device named `{}` already exists in this account; choose another name \
                 or remove it first (`satellite cisco device remove {} --yes`)",
                spec.name, spec.name
            )));
        }
        let id = CiscoDeviceId::fresh(ids);
        let device = CiscoDevice {
            id,
            account: va.account,
            va: spec.va,
            name: spec.name,
            address: spec.address,
            username: spec.username,
            sealed_password: seal(id),
            trust: spec.trust,
            created_at: now,
            created_by: p.actor.clone(),
        };
        let event = NewEvent::new("cisco.device_added", &device.name)
            .account(device.account)
            .va(device.va)
            .detail("id", device.id)
            .detail("address", &device.address)
            .detail("trust", trust_kind(&device.trust));
        Ok((
            Change::new(event).put(Record::CiscoDevice(device.clone())),
            device,
        ))
    }

    /// Removes a device from polling; devices learned from its reports stay.
    pub fn remove_cisco_device(
        &self,
        p: &Principal,
        id: CiscoDeviceId,
    ) -> Result<(Change, CiscoDevice), DomainError> {
        let device = self.visible_cisco_device(p, id)?;
        self.check_va(p, device.va, Access::Write)?;
        let event = NewEvent::new("cisco.device_removed", &device.name)
            .account(device.account)
            .va(device.va)
            .detail("id", device.id)
            .detail("address", &device.address);
        Ok((
            Change::new(event).remove(Removal::CiscoDevice(id)),
            device.clone(),
        ))
    }

    /// A device `p` may read; `NotFound` otherwise, whether it exists or not.
    pub fn visible_cisco_device(
        &self,
        p: &Principal,
        id: CiscoDeviceId,
    ) -> Result<&CiscoDevice, DomainError> {
        self.cisco_device(id)
            .filter(|d| self.va_access(p, d.va).is_some())
            .ok_or_else(|| DomainError::not_found("Cisco device", id))
    }

    /// Finds a device by id or name among those `p` may read. A name used in several of the
    /// caller's accounts is refused with the ids to choose from.
    pub fn find_cisco_device(
        &self,
        p: &Principal,
        reference: &str,
    ) -> Result<&CiscoDevice, DomainError> {
        if let Ok(id) = reference.parse::<CiscoDeviceId>() {
            return self.visible_cisco_device(p, id);
        }
        let found: Vec<&CiscoDevice> = self
            .visible_cisco_devices(p)
            .into_iter()
            .filter(|d| d.name == reference)
            .collect();
        match found[..] {
            [] => Err(DomainError::not_found("Cisco device", reference)),
            [one] => Ok(one),
            _ => Err(DomainError::Invalid(format!(
                "several of your accounts have a Cisco device named `{reference}`; name it by id: {}",
                found
                    .iter()
                    .map(|d| d.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The devices `p` may read, ordered by account and name.
    pub fn visible_cisco_devices(&self, p: &Principal) -> Vec<&CiscoDevice> {
        self.all_cisco_devices()
            .into_iter()
            .filter(|d| self.va_access(p, d.va).is_some())
            .collect()
    }
}

/// `ca` or `fingerprint`, for events and listings.
pub fn trust_kind(trust: &DeviceTrust) -> &'static str {
    match trust {
        DeviceTrust::Ca(_) => "ca",
        DeviceTrust::Fingerprint(_) => "fingerprint",
    }
}

fn check_name(name: &str) -> Result<(), DomainError> {
    let ok = (1..=MAX_DEVICE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "Cisco device name {name:?} must be 1 to {MAX_DEVICE_NAME} letters, digits, `-`, `_` \
             or `.`, not starting with `-` or `.` (for example `edge-router-1`)"
        )))
    }
}

/// `host` or `host:port`: a DNS name, an IPv4 address or a bracketed IPv6 address; no scheme,
/// no path, since the satellite always speaks HTTPS to `/smartlic-service`.
pub fn check_address(address: &str) -> Result<(), DomainError> {
    let bad = |why: &str| {
        Err(DomainError::Invalid(format!(
            "device address {address:?} {why}: give HOST or HOST:PORT (for example \
             `10.0.0.5`, `router1.example.net:8443` or `[2001:db8::5]:443`); the satellite \
             always speaks HTTPS"
        )))
    };
    if address.contains("://") {
        return bad("has a scheme");
    }
    let (host, port) = match address.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return bad("has text after the IPv6 address"),
            },
            None => return bad("has no closing `]`"),
        },
        None => match address.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (address, None),
        },
    };
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return bad("has a port that is not 1 to 65535");
    }
    // An IPv6 address is checked for its characters only; the connection finds the rest.
    let host_ok = if address.starts_with('[') {
        host.contains(':')
            && host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
    };
    if host_ok {
        Ok(())
    } else {
        bad("is not a host name or address")
    }
}

fn check_user(user: &str) -> Result<(), DomainError> {
    // Basic authentication joins user and password with `:`, so a user name cannot hold one.
    let ok = (1..=MAX_DEVICE_USER).contains(&user.len())
        && user
            .chars()
            .all(|c| !c.is_control() && c != ':' && c != ' ');
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "device user {user:?} must be 1 to {MAX_DEVICE_USER} characters without `:`, spaces \
             or control characters (the local user configured on the device)"
        )))
    }
}

fn check_trust(trust: &DeviceTrust) -> Result<(), DomainError> {
    match trust {
        DeviceTrust::Ca(pem) if pem.len() > MAX_DEVICE_CA_BYTES => {
            Err(DomainError::Invalid(format!(
                "the CA file is larger than {MAX_DEVICE_CA_BYTES} bytes; give one CA certificate"
            )))
        }
        DeviceTrust::Ca(pem) if !pem.contains("-----BEGIN CERTIFICATE-----") => {
            Err(DomainError::Invalid(
                "the CA file holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); give the \
                 CA that signed the device's HTTPS certificate, or pin it with --fingerprint"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}
