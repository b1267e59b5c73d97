//! The device agent: the client side of device protocol v1 (SPEC §3), over real TLS.
//!
//! This is what a device integrator embeds, what the daemon tests drive and what the load
//! generator multiplies. It is deliberately a real client, not a test double: it generates its
//! own key, sends a CSR, authenticates every later call with the certificate it was issued, and
//! keeps its sequence numbers so that a report is never sent twice with different content.
//!
//! Two layers:
//! - [`DeviceClient`], [`AgentIdentity`], [`register_raw`], [`registration_client`] and
//!   [`new_key_and_csr`]: the protocol with everything in memory, one HTTP client per identity.
//!   The load generator holds thousands of these without touching the disk.
//! - [`Agent`]: a device with its state in a directory (see [`state`] for the files and how they
//!   are replaced without a window for corruption). `satellite agent …` is a thin shell over it.
//!
//! File writes are small and synchronous (with fsync), done inline in the async methods: an
//! agent is one device, and its next request waits for the write anyway.

mod client;
pub mod reservation;
pub mod state;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

pub use client::{
    AgentIdentity, DeviceClient, error_chain, new_key_and_csr, register_raw, registration_client,
};
pub use state::AgentState;

use crate::protocol::device::{
    Authorization, DeregisterResponse, RegisterRequest, RegisterResponse, RenewRequest,
    RenewResponse, Udi, UsageLine, UsageRequest,
};

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The satellite answered with a device protocol error; `code` is one of
    /// [`codes`](crate::protocol::device::codes) and is what callers branch on.
    #[error("the satellite refused the request: {message} ({code}, HTTP {status})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The satellite's explanation, for people.
        message: String,
    },
    /// The satellite could not be reached, the TLS handshake failed or the connection broke;
    /// the message names the URL and the cause. Nothing is known to have happened on the server.
    #[error("cannot reach the satellite at {0}")]
    Transport(String),
    /// The server answered something that is not device protocol v1 (a wrong URL, a proxy, a
    /// satellite without the device endpoints).
    #[error("unexpected answer from {0}")]
    Unexpected(String),
    /// The state directory is missing, incomplete, corrupt, of a newer format, or belongs to a
    /// deregistered device; the message says what to do.
    #[error("{0}")]
    State(String),
    /// Something the caller passed cannot be used: a URL that is not `https://`, a CA or key
    /// that is not PEM.
    #[error("{0}")]
    Invalid(String),
    /// A file of the state directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A file of the state directory could not be written (a symbolic link at its path is
    /// refused).
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
}

impl AgentError {
    /// The satellite's error code, if it refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            AgentError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What a device tells the satellite about itself when it registers.
#[derive(Clone)]
pub struct RegisterParams {
    /// The registration token the operator created.
    pub token: String,
    /// The device's product id and serial number.
    pub udi: Udi,
    /// The device's host name.
    pub hostname: String,
    /// The product name, e.g. "Catalyst 9300".
    pub product: String,
    /// The software version.
    pub version: String,
    /// Replace an existing registration: of the same UDI on the satellite, and of the state
    /// already in the directory.
    pub force: bool,
}

impl fmt::Debug for RegisterParams {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterParams")
            .field("udi", &self.udi)
            .field("hostname", &self.hostname)
            .field("product", &self.product)
            .field("version", &self.version)
            .field("force", &self.force)
            .finish_non_exhaustive()
    }
}

/// A registered device whose key, certificate and state live in a directory.
#[derive(Debug)]
pub struct Agent {
    dir: PathBuf,
    state: AgentState,
    identity: AgentIdentity,
    client: DeviceClient,
}

impl Agent {
    /// Opens the agent stored in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Agent, AgentError> {
        let dir = dir.as_ref();
        let (state, identity) = state::load(dir)?;
        let client = DeviceClient::new(&state.url, &identity).map_err(|e| {
            AgentError::State(format!(
                "the identity in {} is unusable ({e}); register again with `satellite agent \
                 register --force`",
                dir.display()
            ))
        })?;
        Ok(Agent {
            dir: dir.to_owned(),
            state,
            identity,
            client,
        })
    }

    /// Registers a device with the satellite at `url` (trusting only `ca_pem` for its server
    /// certificate) and stores the new identity in `dir`, which is created if needed.
    ///
    /// A directory that already holds a live registration is replaced only with
    /// `params.force`; it is replaced only once the satellite has answered, so a refused
    /// registration leaves the old one intact.
    pub async fn register(
        dir: impl AsRef<Path>,
        url: &str,
        ca_pem: &str,
        params: RegisterParams,
    ) -> Result<(Agent, RegisterResponse), AgentError> {
        let dir = dir.as_ref();
        state::create_dir(dir)?;
        if !params.force {
            refuse_existing(dir)?;
        }
        let (key_pem, csr) = new_key_and_csr(&common_name(&params.udi))?;
        let request = RegisterRequest {
            token: params.token,
            udi: params.udi.clone(),
            hostname: params.hostname.clone(),
            product: params.product,
            version: params.version,
            csr,
            force: params.force,
        };
        let http = registration_client(ca_pem)?;
        let answer = register_raw(&http, url, &request).await?;

        let identity = AgentIdentity {
            key_pem,
            cert_pem: answer.certificate.clone(),
            ca_pem: merge_ca(ca_pem, &answer.ca_chain),
            instance_id: answer.instance_id.clone(),
        };
        let state = AgentState {
            format: state::FORMAT,
            url: url.trim_end_matches('/').to_owned(),
            instance_id: answer.instance_id.clone(),
            udi: params.udi,
            hostname: params.hostname,
            seq: 0,
            renew_after: answer.renew_after,
            report_interval_secs: answer.report_interval_secs,
            last_authorization: Some(answer.authorization.clone()),
            last_report: None,
            deregistered: false,
        };
        state::forget(dir)?;
        state::save_identity(dir, &identity)?;
        state::save_state(dir, &state)?;
        let client = DeviceClient::new(&state.url, &identity)?;
        let agent = Agent {
            dir: dir.to_owned(),
            state,
            identity,
            client,
        };
        Ok((agent, answer))
    }

    /// Sends a usage report with the next sequence number and stores the answer.
    ///
    /// The new `seq` and the report are written to `state.json` before anything is sent: if
    /// the send fails or the process dies, the next report uses a higher `seq`, so the
    /// satellite never sees one `seq` with two contents. [`Agent::report_again`] retries the
    /// report exactly.
    pub async fn report(
        &mut self,
        usage: Vec<UsageLine>,
        measured_at: OffsetDateTime,
    ) -> Result<Authorization, AgentError> {
        self.ensure_registered()?;
        let report = UsageRequest {
            seq: self.state.seq + 1,
            measured_at,
            usage,
        };
        self.state.seq = report.seq;
        self.state.last_report = Some(report.clone());
        state::save_state(&self.dir, &self.state)?;
        self.send_report(&report).await
    }

    /// Resends the last report built by [`Agent::report`], with its `seq`: the retry after a
    /// failed send, and the way to check that the satellite treats a repeat as idempotent.
    pub async fn report_again(&mut self) -> Result<Authorization, AgentError> {
        self.ensure_registered()?;
        let Some(report) = self.state.last_report.clone() else {
            return Err(AgentError::State(format!(
                "the agent in {} has not built a usage report yet",
                self.dir.display()
            )));
        };
        self.send_report(&report).await
    }

    async fn send_report(&mut self, report: &UsageRequest) -> Result<Authorization, AgentError> {
        let authorization = self.client.usage(report).await?;
        self.remember(&authorization)?;
        Ok(authorization)
    }

    /// Asks the satellite for the current authorization state and stores it.
    pub async fn authorization(&mut self) -> Result<Authorization, AgentError> {
        self.ensure_registered()?;
        let authorization = self.client.authorization().await?;
        self.remember(&authorization)?;
        Ok(authorization)
    }

    /// Renews the identity certificate with a new key. The old certificate is revoked by the
    /// satellite; the new key and certificate replace the old ones together (see [`state`]).
    pub async fn renew(&mut self) -> Result<RenewResponse, AgentError> {
        self.ensure_registered()?;
        let (key_pem, csr) = new_key_and_csr(&common_name(&self.state.udi))?;
        let answer = self.client.renew(&RenewRequest { csr }).await?;
        state::commit_renewal(&self.dir, &key_pem, &answer.certificate)?;
        self.identity.key_pem = key_pem;
        self.identity.cert_pem = answer.certificate.clone();
        self.state.renew_after = answer.renew_after;
        state::save_state(&self.dir, &self.state)?;
        self.client = DeviceClient::new(&self.state.url, &self.identity)?;
        Ok(answer)
    }

    /// Deregisters the device; its licenses return to the pool. The directory is kept, marked
    /// deregistered, so that later calls explain why they cannot be made.
    pub async fn deregister(&mut self) -> Result<DeregisterResponse, AgentError> {
        self.ensure_registered()?;
        let answer = self.client.deregister().await?;
        self.state.deregistered = true;
        state::save_state(&self.dir, &self.state)?;
        Ok(answer)
    }

    /// Whether the certificate is due for renewal at `now`.
    pub fn renew_due(&self, now: OffsetDateTime) -> bool {
        now >= self.state.renew_after
    }

    /// The directory holding the agent.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored state.
    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// The instance id the satellite assigned.
    pub fn instance_id(&self) -> &str {
        &self.state.instance_id
    }

    /// The identity in use (key, certificate, trusted CA).
    pub fn identity(&self) -> &AgentIdentity {
        &self.identity
    }

    /// The connection in use, for requests outside the agent's bookkeeping (tests sending a
    /// stale `seq`, for example).
    pub fn client(&self) -> &DeviceClient {
        &self.client
    }

    fn remember(&mut self, authorization: &Authorization) -> Result<(), AgentError> {
        self.state.last_authorization = Some(authorization.clone());
        state::save_state(&self.dir, &self.state)
    }

    fn ensure_registered(&self) -> Result<(), AgentError> {
        if self.state.deregistered {
            return Err(AgentError::State(format!(
                "the device in {} was deregistered (instance {}); register it again with \
                 `satellite agent register`",
                self.dir.display(),
                self.state.instance_id
            )));
        }
        Ok(())
    }
}

/// Refuses to overwrite a live registration without `force`.
fn refuse_existing(dir: &Path) -> Result<(), AgentError> {
    match state::load(dir) {
        Err(AgentError::State(_)) if !dir.join(state::STATE).exists() => Ok(()),
        Ok((state, _)) if state.deregistered => Ok(()),
        Ok((state, _)) => Err(AgentError::State(format!(
            "{} already holds the registration of instance {} ({} {}) at {}; register with \
             force (`--force`) to replace it",
            dir.display(),
            state.instance_id,
            state.udi.pid,
            state.udi.serial,
            state.url
        ))),
        Err(e) => Err(AgentError::State(format!(
            "{} holds an unreadable registration ({e}); register with force (`--force`) to \
             replace it",
            dir.display()
        ))),
    }
}

/// The subject of a device's CSRs. The satellite ignores it; it helps whoever reads one.
fn common_name(udi: &Udi) -> String {
    format!("{} {}", udi.pid, udi.serial)
}

/// The CA certificates the agent trusts from now on: the ones it was told to trust (which
/// verified the server at registration, even when the operator serves a certificate of another
/// CA) plus the device CA chain the satellite sent, which signs the satellite's own generated
/// server certificate.
fn merge_ca(given: &str, chain: &str) -> String {
    let chain = chain.trim();
    let mut out = given.trim_end().to_owned();
    out.push('\n');
    if !chain.is_empty() && !given.contains(chain) {
        out.push_str(chain);
        out.push('\n');
    }
    out
}
