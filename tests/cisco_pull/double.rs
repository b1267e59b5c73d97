//! An HTTPS test double of an IOS XE device's Smart Licensing Using Policy REST API, written
//! from the public API documentation (docs/cisco.md): real TLS (an rcgen certificate, either
//! self-signed or issued by a test CA), Basic authentication, `close-reports` moving open
//! reports to closed ones, `all-reports` listing the closed ones, `list`, and `import`
//! recording each body it received. It can be told to answer garbage, truncated JSON, another
//! status, or to drop every connection (down).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// How the double answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// `all-reports` answers bytes that are not JSON.
    Garbage,
    /// `all-reports` answers the right JSON cut in the middle.
    Truncated,
    /// Every request closes the connection before TLS completes.
    Down,
}

#[derive(Debug)]
pub struct DeviceState {
    pub user: String,
    pub password: String,
    pub mode: Mode,
    /// Reports not closed yet (envelope JSON texts).
    pub open: Vec<String>,
    /// Closed reports, which `all-reports` lists.
    pub closed: Vec<String>,
    pub close_calls: u32,
    pub requests_with_bad_auth: u32,
    /// Every body `import` received, byte for byte.
    pub imports: Vec<Vec<u8>>,
    /// `import` answers 500 (and records nothing) while set.
    pub refuse_imports: bool,
}

pub struct DeviceDouble {
    pub addr: SocketAddr,
    /// SHA-256 of the device's certificate (DER), hex.
    pub fingerprint: String,
    /// The CA's PEM, when the certificate was issued by one.
    pub ca_pem: Option<String>,
    pub state: Arc<Mutex<DeviceState>>,
}

impl DeviceDouble {
    /// A device with a self-signed certificate (the common case).
    pub fn self_signed(user: &str, password: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = params().self_signed(&key).unwrap();
        Self::serve(cert.der().to_vec(), key, None, user, password)
    }

    /// A device whose certificate a test CA issued.
    pub fn with_ca(user: &str, password: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = params().signed_by(&key, &issuer).unwrap();
        Self::serve(cert.der().to_vec(), key, Some(ca.pem()), user, password)
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Adds open reports; the next `close-reports` closes them.
    pub fn add_reports(&self, envelopes: impl IntoIterator<Item = String>) {
        self.state.lock().unwrap().open.extend(envelopes);
    }

    fn serve(
        cert_der: Vec<u8>,
        key: KeyPair,
        ca_pem: Option<String>,
        user: &str,
        password: &str,
    ) -> Self {
        let fingerprint = satellite::hex::encode(&satellite::cisco::client::fingerprint(&cert_der));
        let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.into()], key_der)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let state = Arc::new(Mutex::new(DeviceState {
            user: user.into(),
            password: password.into(),
            mode: Mode::Normal,
            open: Vec::new(),
            closed: Vec::new(),
            close_calls: 0,
            requests_with_bad_auth: 0,
            imports: Vec::new(),
            refuse_imports: false,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(accept_loop(listener, acceptor, app, shared));
        });
        DeviceDouble {
            addr,
            fingerprint,
            ca_pem,
            state,
        }
    }
}

fn params() -> CertificateParams {
    CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap()
}

async fn accept_loop(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    state: Arc<Mutex<DeviceState>>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        if state.lock().unwrap().mode == Mode::Down {
            drop(tcp);
            continue;
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}

type Shared = Arc<Mutex<DeviceState>>;

fn router(state: Shared) -> Router {
    Router::new()
        .route("/smartlic-service/close-reports", post(close_reports))
        .route("/smartlic-service/all-reports", get(all_reports))
        .route("/smartlic-service/list", get(list))
        .route("/smartlic-service/import", post(import))
        .with_state(state)
}

/// Basic authentication against the device's local user.
fn authorized(state: &mut DeviceState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", state.user, state.password));
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    if given == Some(expected.as_str()) {
        Ok(())
    } else {
        state.requests_with_bad_auth += 1;
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"level_15_access\"")],
                "401 Unauthorized",
            )
                .into_response(),
        ))
    }
}

async fn close_reports(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    if let Err(r) = authorized(&mut s, &headers) {
        return *r;
    }
    s.close_calls += 1;
    let open = std::mem::take(&mut s.open);
    s.closed.extend(open);
    (StatusCode::OK, "{}").into_response()
}

async fn all_reports(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    if let Err(r) = authorized(&mut s, &headers) {
        return *r;
    }
    let body = format!("{{\"usage\": [{}]}}", s.closed.join(","));
    match s.mode {
        Mode::Garbage => (StatusCode::OK, "<html>login</html>").into_response(),
        Mode::Truncated => (StatusCode::OK, body[..body.len() / 2].to_string()).into_response(),
        _ => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    }
}

async fn list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    if let Err(r) = authorized(&mut s, &headers) {
        return *r;
    }
    let n = s.closed.len();
    (
        StatusCode::OK,
        format!("{{\"usage_list\": [{}]}}", vec!["{}"; n].join(",")),
    )
        .into_response()
}

async fn import(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = s.lock().unwrap();
    if let Err(r) = authorized(&mut s, &headers) {
        return *r;
    }
    if s.refuse_imports {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"error\": \"import failed\"}",
        )
            .into_response();
    }
    s.imports.push(body.to_vec());
    (StatusCode::OK, "{}").into_response()
}
