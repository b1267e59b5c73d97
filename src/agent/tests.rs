//! Agent tests without the daemon: the state directory on its own, and the protocol against a
//! small in-process TLS server that speaks the device wire format from canned answers and
//! signs CSRs with a real [`Pki`]. Tests against the real daemon live in `tests/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Version};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rcgen::{CertificateSigningRequestParams, KeyPair, PublicKeyData};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::pki::{self, Pki};
use crate::protocol::device::{EntitlementState, codes};

const MEASURED: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

fn udi() -> Udi {
    Udi {
        pid: "C9300-24T".into(),
        serial: "FOC1234X0AB".into(),
    }
}

fn line(tag: &str, count: u64) -> UsageLine {
    UsageLine {
        entitlement_tag: tag.into(),
        count,
    }
}

fn authorization(instance_id: &str, usage: &[UsageLine]) -> Authorization {
    Authorization {
        instance_id: instance_id.into(),
        status: if usage.is_empty() {
            "registered"
        } else {
            "authorized"
        }
        .into(),
        entitlements: usage
            .iter()
            .map(|l| EntitlementState {
                entitlement_tag: l.entitlement_tag.clone(),
                count: l.count,
                status: "authorized".into(),
            })
            .collect(),
        authorization_expires_at: MEASURED + time::Duration::days(90),
        next_report_by: MEASURED + time::Duration::days(30),
    }
}

fn pki(dir: &Path) -> Pki {
    Pki::load_or_create(dir, &["localhost".to_owned()], OffsetDateTime::now_utc()).expect("pki")
}

/// Writes an agent directory as a registration would, with a certificate from `pki`, without
/// a server: what `Agent::register` stores after the satellite's answer.
fn install(dir: &Path, pki: &Pki, url: &str) {
    let (key_pem, csr) = new_key_and_csr("C9300-24T FOC1234X0AB").expect("key");
    let cert = pki
        .sign_csr(
            &csr,
            "instance-1",
            time::Duration::days(1),
            OffsetDateTime::now_utc(),
        )
        .expect("signed");
    let identity = AgentIdentity {
        key_pem,
        cert_pem: cert.pem,
        ca_pem: pki.ca_pem().to_owned(),
        instance_id: "instance-1".into(),
    };
    let state = AgentState {
        format: state::FORMAT,
        url: url.into(),
        instance_id: "instance-1".into(),
        udi: udi(),
        hostname: "sw-01".into(),
        seq: 0,
        renew_after: MEASURED,
        report_interval_secs: 2_592_000,
        last_authorization: Some(authorization("instance-1", &[])),
        last_report: None,
        deregistered: false,
    };
    state::create_dir(dir).expect("dir");
    state::save_identity(dir, &identity).expect("identity");
    state::save_state(dir, &state).expect("state");
}

fn state_json(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("state.json")).expect("state.json")).expect("json")
}

/// A URL where nothing listens: a port bound, then released.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("https://127.0.0.1:{port}")
}

#[test]
fn a_csr_carries_the_common_name_and_matches_the_key() {
    let (key_pem, csr_pem) = new_key_and_csr("sw-01 FOC1234X0AB").expect("key and csr");
    let csr = CertificateSigningRequestParams::from_pem(&csr_pem).expect("csr parses");
    let cn = csr
        .params
        .distinguished_name
        .get(&rcgen::DnType::CommonName)
        .expect("cn");
    assert_eq!(cn, &rcgen::DnValue::Utf8String("sw-01 FOC1234X0AB".into()));
    let key = KeyPair::from_pem(&key_pem).expect("key parses");
    assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
    assert_eq!(
        csr.public_key.subject_public_key_info(),
        key.subject_public_key_info()
    );
}

#[test]
fn the_key_is_owner_only_and_the_state_round_trips() {
    let (ca, dir) = (tempdir(), tempdir());
    let agent_dir = dir.path().join("agent");
    install(
        &agent_dir,
        &pki(ca.path()),
        "https://satellite.example:8443",
    );
    assert_eq!(mode(&agent_dir.join("key.pem")), 0o600);
    assert_eq!(mode(&agent_dir), 0o700);

    let agent = Agent::open(&agent_dir).expect("open");
    assert_eq!(agent.instance_id(), "instance-1");
    assert_eq!(agent.client().url(), "https://satellite.example:8443");
    assert_eq!(
        serde_json::to_value(agent.state()).expect("json"),
        state_json(&agent_dir)
    );
    let on_disk = state_json(&agent_dir);
    for field in [
        "url",
        "instance_id",
        "seq",
        "renew_after",
        "report_interval_secs",
        "last_authorization",
    ] {
        assert!(on_disk.get(field).is_some(), "{field} in {on_disk}");
    }
    assert!(agent.renew_due(MEASURED));
    assert!(!agent.renew_due(MEASURED - time::Duration::seconds(1)));
}

#[test]
fn opening_an_empty_directory_says_to_register() {
    let dir = tempdir();
    let err = Agent::open(dir.path()).expect_err("no state");
    assert!(matches!(err, AgentError::State(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("satellite agent register"), "{msg}");
}

#[test]
fn a_readable_key_or_a_newer_format_is_refused() {
    let (ca, dir) = (tempdir(), tempdir());
    install(dir.path(), &pki(ca.path()), &dead_url());
    let key = dir.path().join("key.pem");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Agent::open(dir.path()).expect_err("refused");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");

    let mut state = state_json(dir.path());
    state["format"] = json!(2);
    fs::write(dir.path().join("state.json"), state.to_string()).expect("write");
    let err = Agent::open(dir.path()).expect_err("refused");
    assert!(err.to_string().contains("format 2"), "{err}");
}

#[tokio::test]
async fn seq_is_persisted_before_the_report_is_sent() {
    let (ca, dir) = (tempdir(), tempdir());
    let url = dead_url();
    install(dir.path(), &pki(ca.path()), &url);
    let mut agent = Agent::open(dir.path()).expect("open");

    let err = agent
        .report(vec![line("regid.ADV", 3)], MEASURED)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, AgentError::Transport(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!("{url}/v1/usage")),
        "{err}"
    );
    let on_disk = state_json(dir.path());
    assert_eq!(on_disk["seq"], 1);
    assert_eq!(on_disk["last_report"]["seq"], 1);
    assert_eq!(on_disk["last_report"]["usage"][0]["count"], 3);

    // A retry keeps the seq and the content; a new report takes the next seq, even after a
    // restart.
    agent.report_again().await.expect_err("still nothing");
    assert_eq!(state_json(dir.path())["seq"], 1);
    let mut agent = Agent::open(dir.path()).expect("reopen");
    agent
        .report(vec![line("regid.ADV", 4)], MEASURED)
        .await
        .expect_err("still nothing");
    assert_eq!(state_json(dir.path())["seq"], 2);
}

#[test]
fn an_interrupted_renewal_is_finished_or_abandoned_at_open() {
    let (ca, dir) = (tempdir(), tempdir());
    let pki = pki(ca.path());
    install(dir.path(), &pki, &dead_url());
    let (key, csr) = new_key_and_csr("x").expect("key");
    let cert = pki
        .sign_csr(&csr, "instance-1", time::Duration::days(1), MEASURED)
        .expect("signed");

    // Committed (cert.next.pem exists): the new pair is installed.
    state::write_atomically(&dir.path().join("key.next.pem"), key.as_bytes(), 0o600)
        .expect("write");
    fs::write(dir.path().join("cert.next.pem"), &cert.pem).expect("write");
    let agent = Agent::open(dir.path()).expect("open");
    assert_eq!(agent.identity().key_pem, key);
    assert_eq!(agent.identity().cert_pem, cert.pem);
    assert!(!dir.path().join("cert.next.pem").exists());

    // Not committed: the stray key is removed, the pair in place stays.
    let (stray, _) = new_key_and_csr("y").expect("key");
    state::write_atomically(&dir.path().join("key.next.pem"), stray.as_bytes(), 0o600)
        .expect("write");
    let agent = Agent::open(dir.path()).expect("open");
    assert_eq!(agent.identity().key_pem, key);
    assert!(!dir.path().join("key.next.pem").exists());
}

#[test]
fn urls_must_be_https() {
    let err = registration_client("garbage").expect_err("not a CA");
    assert!(matches!(err, AgentError::Invalid(_)), "{err:?}");
    for url in ["http://127.0.0.1:8443", "127.0.0.1:8443", "https://"] {
        let err = check(url);
        assert!(matches!(err, AgentError::Invalid(_)), "{url}: {err:?}");
    }
    fn check(url: &str) -> AgentError {
        let ca = tempdir();
        let pki = pki(ca.path());
        let (key_pem, csr) = new_key_and_csr("x").expect("key");
        let cert = pki
            .sign_csr(&csr, "i", time::Duration::days(1), MEASURED)
            .expect("signed");
        let identity = AgentIdentity {
            key_pem,
            cert_pem: cert.pem,
            ca_pem: pki.ca_pem().to_owned(),
            instance_id: "i".into(),
        };
        DeviceClient::new(url, &identity).expect_err("refused")
    }
}

/// What the fake satellite saw.
#[derive(Default)]
struct Seen {
    versions: Vec<Version>,
    seqs: Vec<u64>,
}

#[derive(Clone)]
struct Fake {
    pki: Arc<Pki>,
    seen: Arc<Mutex<Seen>>,
    /// The common name of the client certificate of this connection.
    peer: Option<String>,
}

fn refuse(status: StatusCode, code: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({ "error": { "code": code, "message": format!("refused: {code}") } })),
    )
}

type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

impl Fake {
    fn peer(&self, version: Version) -> Result<String, (StatusCode, Json<Value>)> {
        self.seen.lock().expect("lock").versions.push(version);
        self.peer
            .clone()
            .ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, codes::CERTIFICATE_REQUIRED))
    }

    fn sign(&self, csr: &str) -> String {
        self.pki
            .sign_csr(
                csr,
                "instance-1",
                time::Duration::days(2),
                OffsetDateTime::now_utc(),
            )
            .expect("signed")
            .pem
    }
}

async fn register(State(fake): State<Fake>, Json(req): Json<RegisterRequest>) -> Answer {
    if req.token != "good" {
        return Err(refuse(StatusCode::FORBIDDEN, codes::TOKEN_EXPIRED));
    }
    Ok(Json(json!(RegisterResponse {
        instance_id: "instance-1".into(),
        certificate: fake.sign(&req.csr),
        ca_chain: fake.pki.ca_pem().into(),
        renew_after: MEASURED + time::Duration::days(1),
        report_interval_secs: 60,
        authorization: authorization("instance-1", &[]),
    })))
}

async fn usage(
    State(fake): State<Fake>,
    version: Version,
    Json(req): Json<UsageRequest>,
) -> Answer {
    let peer = fake.peer(version)?;
    fake.seen.lock().expect("lock").seqs.push(req.seq);
    Ok(Json(json!(authorization(&peer, &req.usage))))
}

async fn current(State(fake): State<Fake>, version: Version) -> Answer {
    let peer = fake.peer(version)?;
    Ok(Json(json!(authorization(&peer, &[]))))
}

async fn renew(
    State(fake): State<Fake>,
    version: Version,
    Json(req): Json<RenewRequest>,
) -> Answer {
    fake.peer(version)?;
    Ok(Json(json!(RenewResponse {
        certificate: fake.sign(&req.csr),
        ca_chain: fake.pki.ca_pem().into(),
        renew_after: MEASURED + time::Duration::days(7),
    })))
}

async fn deregister(State(fake): State<Fake>, version: Version) -> Answer {
    let peer = fake.peer(version)?;
    Ok(Json(json!(DeregisterResponse {
        instance_id: peer,
        released: vec![line("regid.ADV", 3)],
    })))
}

/// Serves the fake satellite on a loopback port with the server configuration of `pki`
/// (client certificates optional, as on the real device listener); returns its URL.
async fn serve_fake(pki: Pki, seen: Arc<Mutex<Seen>>) -> String {
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config().expect("server config"));
    let pki = Arc::new(pki);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| pki::peer_certificate_cn(&certs[0]));
            let fake = Fake {
                pki: pki.clone(),
                seen: seen.clone(),
                peer,
            };
            let router = Router::new()
                .route("/v1/register", post(register))
                .route("/v1/usage", post(usage))
                .route("/v1/authorization", get(current))
                .route("/v1/renew", post(renew))
                .route("/v1/deregister", post(deregister))
                .with_state(fake);
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                    .await;
            });
        }
    });
    format!("https://localhost:{port}")
}

fn params(token: &str, force: bool) -> RegisterParams {
    RegisterParams {
        token: token.into(),
        udi: udi(),
        hostname: "sw-01".into(),
        product: "Catalyst 9300".into(),
        version: "17.9.4".into(),
        force,
    }
}

#[tokio::test]
async fn a_device_lives_its_life_over_mutual_tls() {
    let (ca, dir) = (tempdir(), tempdir());
    let pki = pki(ca.path());
    let ca_pem = pki.ca_pem().to_owned();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve_fake(pki, seen.clone()).await;

    let err = Agent::register(dir.path(), &url, &ca_pem, params("stale", false))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some(codes::TOKEN_EXPIRED), "{err:?}");
    assert!(
        matches!(err, AgentError::Refused { status: 403, .. }),
        "{err:?}"
    );
    assert!(matches!(Agent::open(dir.path()), Err(AgentError::State(_))));

    let (mut agent, answer) = Agent::register(dir.path(), &url, &ca_pem, params("good", false))
        .await
        .expect("registered");
    assert_eq!(answer.instance_id, "instance-1");
    assert_eq!(mode(&dir.path().join("key.pem")), 0o600);

    let usage = vec![line("regid.ADV", 3), line("regid.ESS", 1)];
    let auth = agent.report(usage.clone(), MEASURED).await.expect("report");
    assert_eq!(
        auth.instance_id, "instance-1",
        "the server saw our certificate"
    );
    assert_eq!(auth.entitlements.len(), 2);
    agent.report_again().await.expect("again");
    agent.report(usage, MEASURED).await.expect("report");
    assert_eq!(seen.lock().expect("lock").seqs, vec![1, 1, 2]);
    assert_eq!(
        state_json(dir.path())["last_authorization"]["entitlements"][1]["entitlement_tag"],
        "regid.ESS"
    );

    let old_cert = agent.identity().cert_pem.clone();
    let renewed = agent.renew().await.expect("renew");
    assert_ne!(renewed.certificate, old_cert);
    let reopened = Agent::open(dir.path()).expect("reopen");
    assert_eq!(reopened.identity().cert_pem, renewed.certificate);
    assert_eq!(reopened.state().renew_after, renewed.renew_after);
    let der = CertificateDer::from_pem_slice(renewed.certificate.as_bytes()).expect("pem");
    let key = KeyPair::from_pem(&reopened.identity().key_pem).expect("key");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("cert");
    assert_eq!(
        cert.public_key().raw,
        key.subject_public_key_info(),
        "key and certificate match"
    );
    agent
        .authorization()
        .await
        .expect("the renewed identity works");

    let err = Agent::register(dir.path(), &url, &ca_pem, params("good", false))
        .await
        .expect_err("already registered here");
    assert!(err.to_string().contains("--force"), "{err}");

    let released = agent.deregister().await.expect("deregister");
    assert_eq!(released.released, vec![line("regid.ADV", 3)]);
    let err = agent.report(vec![], MEASURED).await.expect_err("gone");
    assert!(err.to_string().contains("deregistered"), "{err}");
    let err = Agent::open(dir.path())
        .expect("open")
        .authorization()
        .await
        .expect_err("gone");
    assert!(matches!(err, AgentError::State(_)), "{err:?}");

    // Re-registration after a deregistration needs no force.
    Agent::register(dir.path(), &url, &ca_pem, params("good", false))
        .await
        .expect("registered again");

    let versions = &seen.lock().expect("lock").versions;
    assert!(
        versions.iter().all(|v| *v == Version::HTTP_2),
        "{versions:?}"
    );
}

#[tokio::test]
async fn a_client_without_identity_is_refused_and_the_error_is_parsed() {
    let ca = tempdir();
    let pki = pki(ca.path());
    let ca_pem = pki.ca_pem().to_owned();
    let url = serve_fake(pki, Arc::default()).await;
    let http = registration_client(&ca_pem).expect("client");
    let response = http
        .get(format!("{url}/v1/authorization"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);

    let other = tempdir();
    let err = register_raw(
        &registration_client(pki_ca(other.path()).as_str()).expect("client"),
        &url,
        &RegisterRequest {
            token: "good".into(),
            udi: udi(),
            hostname: "h".into(),
            product: "p".into(),
            version: "v".into(),
            csr: new_key_and_csr("x").expect("csr").1,
            force: false,
        },
    )
    .await
    .expect_err("untrusted server");
    assert!(matches!(err, AgentError::Transport(_)), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

fn pki_ca(dir: &Path) -> String {
    pki(dir).ca_pem().to_owned()
}
