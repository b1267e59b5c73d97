//! Tests of `pki`.

use super::ca::common_name;
use super::*;
use rcgen::CertificateParams;
use rustls::ClientConfig;
use std::os::unix::fs::PermissionsExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn names() -> Vec<String> {
    vec!["satellite.example".to_owned(), "localhost".to_owned()]
}

fn create(dir: &Path) -> Pki {
    Pki::load_or_create(dir, &names(), OffsetDateTime::now_utc()).expect("pki")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Runs one TLS connection between the two configurations over a real socket. Returns the
/// client certificates the server saw, or the first error of either side.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = TlsAcceptor::from(server)
            .accept(tcp)
            .await
            .map_err(|e| format!("server: {e}"))?;
        let peer = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
        tls.write_all(b"ok").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(peer)
    });
    let client_side = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("client: {e}"))?;
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf)
            .await
            .map_err(|e| format!("client read: {e}"))?;
        Ok::<_, String>(())
    };
    let client_result = client_side.await;
    let server_result = server_side.await.expect("server task");
    client_result?;
    server_result
}

fn device_csr(requested_cn: &str) -> (String, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::new(vec!["device.invalid".to_owned()]).expect("params");
    params.distinguished_name = common_name(requested_cn);
    let csr = params.serialize_request(&key).expect("csr");
    (csr.pem().expect("pem"), key)
}

#[test]
fn creates_then_reloads_the_same_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = create(dir.path());
    for file in [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY] {
        assert!(dir.path().join(file).exists(), "{file} written");
    }
    let second = create(dir.path());
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(
        first.server_chain, second.server_chain,
        "server cert not regenerated"
    );
    assert_eq!(first.ca_not_after(), second.ca_not_after());
    assert_eq!(first.ca_path(), dir.path().join("ca.pem"));
    assert_eq!(first.server_cert_path(), dir.path().join("server.pem"));
    assert_eq!(
        peer_certificate_cn(first.ca_der()).as_deref(),
        Some(CA_COMMON_NAME)
    );
    assert_eq!(
        peer_certificate_cn(&first.server_chain[0]).as_deref(),
        Some("satellite.example")
    );
    let days = (first.ca_not_after() - OffsetDateTime::now_utc()).whole_days();
    assert!(
        (3649..=3650).contains(&days),
        "the CA is valid for 10 years: {days}"
    );
}

#[test]
fn private_keys_are_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    create(dir.path());
    assert_eq!(mode(&dir.path().join(CA_KEY)), 0o600);
    assert_eq!(mode(&dir.path().join(SERVER_KEY)), 0o600);
}

#[test]
fn a_readable_key_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    create(dir.path());
    let key = dir.path().join(CA_KEY);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err =
        Pki::load_or_create(dir.path(), &names(), OffsetDateTime::now_utc()).expect_err("refused");
    assert!(
        matches!(err, PkiError::KeyPermissions { mode: 0o644, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("chmod 600 {}", key.display())),
        "{msg}"
    );
}

#[test]
fn a_missing_ca_key_is_refused_not_regenerated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = create(dir.path());
    fs::remove_file(dir.path().join(CA_KEY)).expect("remove");
    let err =
        Pki::load_or_create(dir.path(), &names(), OffsetDateTime::now_utc()).expect_err("refused");
    assert!(matches!(err, PkiError::IncompletePair { .. }), "{err:?}");
    assert!(err.to_string().contains("ca.key"), "{err}");
    let still = fs::read_to_string(dir.path().join(CA_CERT)).expect("ca.pem kept");
    assert_eq!(still, first.ca_pem());
}

#[test]
fn a_removed_server_pair_is_regenerated_under_the_same_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = create(dir.path());
    fs::remove_file(dir.path().join(SERVER_CERT)).expect("remove");
    fs::remove_file(dir.path().join(SERVER_KEY)).expect("remove");
    let second = create(dir.path());
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_ne!(first.server_chain[0], second.server_chain[0]);
}

#[test]
fn a_mismatched_key_is_refused() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    create(a.path());
    create(b.path());
    fs::copy(b.path().join(CA_KEY), a.path().join(CA_KEY)).expect("copy");
    let err =
        Pki::load_or_create(a.path(), &names(), OffsetDateTime::now_utc()).expect_err("refused");
    assert!(err.to_string().contains("does not belong to"), "{err}");
}

#[test]
fn host_names_include_localhost_once() {
    let names = host_names();
    assert_eq!(names[0], "localhost");
    assert_eq!(names.iter().filter(|n| *n == "localhost").count(), 1);
    assert!(
        Pki::load_or_create(
            tempfile::tempdir().expect("tempdir").path(),
            &names,
            OffsetDateTime::now_utc()
        )
        .is_ok()
    );
    assert!(matches!(
        server_names(&["bad name!".to_owned()]),
        Err(PkiError::BadHostName(_))
    ));
    assert!(matches!(server_names(&[]), Err(PkiError::NoHostNames)));
}

#[tokio::test]
async fn a_client_trusting_the_ca_connects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = create(dir.path());
    let client = client_config_trusting(pki.ca_pem()).expect("client config");
    let peer = handshake(pki.server_config().expect("server config"), client)
        .await
        .expect("handshake");
    assert_eq!(peer, None, "no client certificate is required");
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    let ours = tempfile::tempdir().expect("tempdir");
    let theirs = tempfile::tempdir().expect("tempdir");
    let pki = create(ours.path());
    let other = create(theirs.path());
    let client = client_config_trusting(other.ca_pem()).expect("client config");
    let err = handshake(pki.server_config().expect("server config"), client)
        .await
        .expect_err("refused");
    assert!(err.contains("client"), "{err}");
}

#[tokio::test]
async fn an_issued_identity_works_for_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = create(dir.path());
    let (csr, key) = device_csr("what the device asked for");
    let now = OffsetDateTime::now_utc();
    let issued = pki
        .sign_csr(&csr, "instance-42", time::Duration::days(365), now)
        .expect("signed");
    assert_eq!(
        issued.not_after - issued.not_before,
        time::Duration::days(365)
    );
    assert_eq!(issued.serial.len(), 32, "{}", issued.serial);

    let der = CertificateDer::from_pem_slice(issued.pem.as_bytes()).expect("pem");
    assert_eq!(
        peer_certificate_serial(&der).as_deref(),
        Some(issued.serial.as_str())
    );
    assert_eq!(peer_certificate_cn(&der).as_deref(), Some("instance-42"));

    let chain = format!("{}{}", issued.pem, pki.ca_pem());
    let client = client_config_with_identity(pki.ca_pem(), &chain, &key.serialize_pem())
        .expect("client config");
    let peer = handshake(pki.server_config().expect("server config"), client)
        .await
        .expect("handshake")
        .expect("the server saw a client certificate");
    assert_eq!(peer_certificate_serial(&peer[0]), Some(issued.serial));
    assert_eq!(
        peer_certificate_cn(&peer[0]).as_deref(),
        Some("instance-42")
    );
}

#[tokio::test]
async fn an_identity_from_another_ca_is_refused() {
    let ours = tempfile::tempdir().expect("tempdir");
    let theirs = tempfile::tempdir().expect("tempdir");
    let pki = create(ours.path());
    let other = create(theirs.path());
    let (csr, key) = device_csr("device");
    let issued = other
        .sign_csr(
            &csr,
            "intruder",
            time::Duration::days(1),
            OffsetDateTime::now_utc(),
        )
        .expect("signed");
    let client = client_config_with_identity(pki.ca_pem(), &issued.pem, &key.serialize_pem())
        .expect("client config");
    let result = handshake(pki.server_config().expect("server config"), client).await;
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn a_garbage_csr_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = create(dir.path());
    let now = OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let err = pki
        .sign_csr("not a csr", "x", day, now)
        .expect_err("refused");
    assert!(matches!(err, PkiError::BadCsr(_)), "{err:?}");
    let garbage = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    let err = pki.sign_csr(garbage, "x", day, now).expect_err("refused");
    assert!(err.to_string().contains("PKCS#10"), "{err}");
    let (csr, _) = device_csr("device");
    let err = pki
        .sign_csr(&csr, "x", time::Duration::ZERO, now)
        .expect_err("refused");
    assert!(matches!(err, PkiError::BadValidity(_)), "{err:?}");
}

#[test]
fn serials_are_formatted_without_leading_zero_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = create(dir.path());
    let (csr, _) = device_csr("device");
    for _ in 0..8 {
        let issued = pki
            .sign_csr(
                &csr,
                "d",
                time::Duration::days(1),
                OffsetDateTime::now_utc(),
            )
            .expect("signed");
        assert!(!issued.serial.starts_with("00"), "{}", issued.serial);
        assert!(
            issued
                .serial
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
