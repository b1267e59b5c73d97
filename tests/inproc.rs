//! An in-process satellite on a [`ManualClock`]: the real `serve_on` with real TLS, a real
//! store and a real admin socket, for the device tests where time matters. Time moves only
//! when a test moves it, and the expiry sweep runs only when a test calls it (the workers'
//! own intervals are a day, so after their first round at start-up they never fire).
//!
//! The clock starts ten days before the real time: identity certificates are issued at the
//! satellite's time but verified by TLS against the real one, so they must not start in the
//! future while tests advance the clock by hours or days.

use std::sync::{Arc, Once};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use satellite::agent::{
    AgentError, AgentIdentity, DeviceClient, new_key_and_csr, register_raw, registration_client,
};
use satellite::app::{App, Clock, ManualClock};
use satellite::cli::{AdminClient, Refused, Target};
use satellite::config::Config;
use satellite::daemon::{Listeners, device_timers, serve_on};
use satellite::pki::Pki;
use satellite::protocol::admin::{
    AccountView, AddLicense, AlertView, CreateAccount, CreateToken, CreateVa, CreatedSecret,
    DeviceView, EventView, LicenseList, LicenseView, TokenView, VaView,
};
use satellite::protocol::device::{
    Authorization, RegisterRequest, RegisterResponse, Udi, UsageLine, UsageRequest,
};
use satellite::shutdown::{self, ShutdownTrigger};
use satellite::store::{Store, tables};
use satellite::workers::expiry::ExpiryWorker;

pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A running in-process satellite. Dropping it stops the server.
pub struct Sat {
    pub clock: Arc<ManualClock>,
    pub app: App,
    /// `https://127.0.0.1:PORT`, the device listener.
    pub url: String,
    pub ca_pem: String,
    pub admin: AdminClient,
    trigger: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

impl Drop for Sat {
    fn drop(&mut self) {
        self.trigger.trigger();
    }
}

/// The start of every test clock: whole seconds, ten days before the real time.
fn start_time() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc() - Duration::days(10);
    now.replace_nanosecond(0).expect("whole seconds")
}

impl Sat {
    /// A satellite with the default timers.
    pub async fn start() -> Sat {
        Self::start_with("", "").await
    }

    /// `device_keys` are extra lines of `[device]`, `timer_keys` of `[timers]`.
    pub async fn start_with(device_keys: &str, timer_keys: &str) -> Sat {
        install_crypto();
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        let text = format!(
            "data_dir = {data:?}\n[device]\nlisten = \"127.0.0.1:0\"\n{device_keys}\n\
             [admin]\nlisten = \"\"\n[timers]\nsweep_interval = \"1d\"\n{timer_keys}\n\
             [alerts]\ninterval = \"1d\"\n",
            data = data.display().to_string(),
        );
        let settings = Config::from_toml_str(&text)
            .expect("the test configuration parses")
            .resolve()
            .expect("the test configuration is valid");
        std::fs::create_dir_all(&settings.data_dir).expect("data directory");
        let clock = Arc::new(ManualClock::new(start_time()));
        let store = Store::open(&settings.data_dir.join("store"), tables::TABLES).expect("store");
        let app = App::load(store, clock.clone(), device_timers(&settings.timers)).expect("app");
        let pki = Pki::load_or_create(
            &settings.data_dir.join("tls"),
            &["localhost".to_owned()],
            clock.now(),
        )
        .expect("pki");
        let tls = pki.server_config().expect("tls config");
        let ca_pem = pki.ca_pem().to_owned();
        let device = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the device listener");
        let url = format!("https://{}", device.local_addr().expect("address"));
        let socket = settings.admin.socket.clone();
        let admin_socket = tokio::net::UnixListener::bind(&socket).expect("bind the admin socket");
        let (trigger, shutdown) = shutdown::channel();
        let listeners = Listeners {
            device,
            admin_https: None,
            admin_socket,
        };
        tokio::spawn(serve_on(
            settings,
            app.clone(),
            Arc::new(pki),
            tls,
            listeners,
            shutdown,
        ));
        Sat {
            clock,
            app,
            url,
            ca_pem,
            admin: AdminClient::new(Target::Socket(socket)),
            trigger,
            _dir: dir,
        }
    }

    /// The satellite's time.
    pub fn now(&self) -> OffsetDateTime {
        self.app.now()
    }

    /// Moves the clock.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// One expiry sweep, as the worker would run it: (deregistered, revocations pruned).
    pub async fn sweep(&self) -> (usize, usize) {
        ExpiryWorker {
            app: self.app.clone(),
            interval: std::time::Duration::from_secs(86_400),
        }
        .sweep()
        .await
        .expect("the sweep succeeds")
    }

    // ----- the admin API, as the system administrator (the socket's owner) -----

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        self.admin
            .get(path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> T {
        self.admin
            .post(path, body)
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e:#}"))
    }

    /// An account `name` (domain `name.com`), its Default VA path is `name/Default`.
    pub async fn account(&self, name: &str) -> AccountView {
        self.post(
            "/v1/accounts",
            &CreateAccount {
                name: name.into(),
                domain: format!("{name}.com"),
            },
        )
        .await
    }

    /// The path of `account`'s unguessable RUM ingest URL.
    pub async fn rum_path(&self, account: &str) -> String {
        let shown: AccountView = self.get(&format!("/v1/accounts/{account}")).await;
        shown
            .rum_ingest
            .expect("the system administrator sees the ingest URL")
            .path
    }

    pub async fn va(&self, parent: &str, name: &str) -> VaView {
        self.post(
            "/v1/vas",
            &CreateVa {
                parent: parent.into(),
                name: name.into(),
                description: String::new(),
            },
        )
        .await
    }

    /// A perpetual license.
    pub async fn license(&self, va: &str, tag: &str, quantity: i64) -> LicenseView {
        self.add_license(AddLicense {
            va: va.into(),
            entitlement_tag: tag.into(),
            display_name: String::new(),
            quantity,
            start: None,
            end: None,
            export_controlled: false,
            order_ref: None,
            labels: Vec::new(),
        })
        .await
    }

    pub async fn add_license(&self, l: AddLicense) -> LicenseView {
        self.post("/v1/licenses", &l).await
    }

    /// A token of `va` with the default settings; returns (secret, token id).
    pub async fn token(&self, va: &str) -> (String, String) {
        self.token_with(CreateToken {
            va: va.into(),
            description: String::new(),
            expires_in_days: None,
            max_uses: None,
            allow_export_controlled: false,
        })
        .await
    }

    pub async fn token_with(&self, t: CreateToken) -> (String, String) {
        let created: CreatedSecret<TokenView> = self.post("/v1/tokens", &t).await;
        (created.secret, created.object.id)
    }

    pub async fn tokens(&self) -> Vec<TokenView> {
        self.get("/v1/tokens").await
    }

    pub async fn devices(&self, query: &str) -> Vec<DeviceView> {
        self.get(&format!("/v1/devices{query}")).await
    }

    pub async fn device(&self, id: &str) -> DeviceView {
        self.get(&format!("/v1/devices/{id}")).await
    }

    /// The admin API's refusal of `GET /v1/devices/{id}`, if any.
    pub async fn device_missing(&self, id: &str) -> bool {
        match self
            .admin
            .get::<DeviceView>(&format!("/v1/devices/{id}"))
            .await
        {
            Ok(_) => false,
            Err(e) => {
                let r = e.downcast_ref::<Refused>().expect("a refusal");
                assert_eq!(r.code, "not_found", "{}", r.message);
                true
            }
        }
    }

    pub async fn events(&self, action: &str) -> Vec<EventView> {
        self.get(&format!("/v1/events?action={action}&limit=10000"))
            .await
    }

    pub async fn all_events(&self) -> Vec<EventView> {
        self.get("/v1/events?limit=100000").await
    }

    pub async fn licenses(&self) -> LicenseList {
        self.get("/v1/licenses").await
    }

    /// `in_use` of the pool line of `tag` in the VA at `va_path`.
    pub async fn in_use(&self, va_path: &str, tag: &str) -> u64 {
        let list = self.licenses().await;
        list.pools
            .iter()
            .find(|p| p.va_path == va_path && p.entitlement_tag == tag)
            .unwrap_or_else(|| panic!("no pool line {va_path} {tag}: {:#?}", list.pools))
            .in_use
    }

    pub async fn alerts(&self) -> Vec<AlertView> {
        self.get("/v1/alerts").await
    }

    // ----- devices -----

    /// Registers a device in memory (key, CSR, certificate; no files).
    pub async fn register(&self, token: &str, pid: &str, serial: &str) -> Result<Dev, AgentError> {
        self.register_req(self.request(token, pid, serial, false))
            .await
            .map(|(d, _)| d)
    }

    /// A registration request with a fresh CSR.
    pub fn request(&self, token: &str, pid: &str, serial: &str, force: bool) -> RegisterRequest {
        let (_key, csr) = new_key_and_csr("test").expect("key and csr");
        RegisterRequest {
            token: token.into(),
            udi: Udi {
                pid: pid.into(),
                serial: serial.into(),
            },
            hostname: format!("host-{serial}"),
            product: "Catalyst 9300".into(),
            version: "17.9.4".into(),
            csr,
            force,
        }
    }

    /// Registers with a request of the caller's (its CSR is replaced by a fresh one whose key
    /// the returned device holds).
    pub async fn register_req(
        &self,
        mut req: RegisterRequest,
    ) -> Result<(Dev, RegisterResponse), AgentError> {
        let (key_pem, csr) = new_key_and_csr("test").expect("key and csr");
        req.csr = csr;
        let http = registration_client(&self.ca_pem)?;
        let answer = register_raw(&http, &self.url, &req).await?;
        let identity = AgentIdentity {
            key_pem,
            cert_pem: answer.certificate.clone(),
            ca_pem: self.ca_pem.clone(),
            instance_id: answer.instance_id.clone(),
        };
        let client = DeviceClient::new(&self.url, &identity)?;
        Ok((
            Dev {
                client,
                id: answer.instance_id.clone(),
                seq: 0,
                now: self.clock.clone(),
            },
            answer,
        ))
    }

    /// A client that trusts the satellite and presents no certificate.
    pub fn anonymous(&self) -> reqwest::Client {
        registration_client(&self.ca_pem).expect("client")
    }
}

/// A registered device held in memory.
#[derive(Clone)]
pub struct Dev {
    pub client: DeviceClient,
    pub id: String,
    /// The last `seq` sent.
    pub seq: u64,
    now: Arc<ManualClock>,
}

impl Dev {
    /// Reports `usage` with the next `seq`, measured now.
    pub async fn report(&mut self, usage: &[(&str, u64)]) -> Result<Authorization, AgentError> {
        let at = self.now.now();
        self.report_at(usage, at).await
    }

    pub async fn report_at(
        &mut self,
        usage: &[(&str, u64)],
        measured_at: OffsetDateTime,
    ) -> Result<Authorization, AgentError> {
        self.seq += 1;
        self.client
            .usage(&usage_request(self.seq, usage, measured_at))
            .await
    }

    pub async fn authorization(&self) -> Result<Authorization, AgentError> {
        self.client.authorization().await
    }

    /// Sends `body` as it is to `path` with this device's certificate.
    pub async fn raw(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        raw(self.client.http(), method, self.client.url(), path, body).await
    }
}

pub fn usage_request(seq: u64, usage: &[(&str, u64)], measured_at: OffsetDateTime) -> UsageRequest {
    UsageRequest {
        seq,
        measured_at,
        usage: usage
            .iter()
            .map(|(t, c)| UsageLine {
                entitlement_tag: (*t).into(),
                count: *c,
            })
            .collect(),
    }
}

/// Sends `body` as it is; the status and the JSON body (`Null` if not JSON).
pub async fn raw(
    http: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let res = http
        .request(method, format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the request is answered");
    let status = res.status().as_u16();
    let text = res.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts that `result` is a refusal with `status` and `code` (and a message).
#[track_caller]
pub fn refused<T: std::fmt::Debug>(result: Result<T, AgentError>, status: u16, code: &str) {
    match result {
        Err(AgentError::Refused {
            status: s,
            code: c,
            message,
        }) => {
            assert_eq!((s, c.as_str()), (status, code), "{message}");
            assert!(!message.is_empty(), "the refusal has no message");
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

/// Asserts an error body `(status, body)` of [`raw`].
#[track_caller]
pub fn raw_refused((status, body): &(u16, Value), want_status: u16, code: &str) {
    assert_eq!(*status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

/// The status of `tag` in an answer.
#[track_caller]
pub fn tag_status(a: &Authorization, tag: &str) -> String {
    a.entitlements
        .iter()
        .find(|e| e.entitlement_tag == tag)
        .unwrap_or_else(|| panic!("no {tag} in {a:#?}"))
        .status
        .clone()
}
