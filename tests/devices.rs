//! The device lifecycle against the real binary (SPEC §3): the agent library registers,
//! reports, renews and deregisters over mutual TLS; the operator sees it through the CLI.

use std::path::Path;

use serde_json::Value;
use time::OffsetDateTime;

use satellite::agent::{Agent, AgentError, RegisterParams};
use satellite::protocol::device::{Udi, UsageLine};

use crate::util::Daemon;

const ADV: &str = "regid.2019-03.com.example.ADV";

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn device_url(d: &Daemon) -> String {
    format!("https://{}", d.device_addr)
}

pub fn params(token: &str, pid: &str, serial: &str) -> RegisterParams {
    RegisterParams {
        token: token.into(),
        udi: Udi {
            pid: pid.into(),
            serial: serial.into(),
        },
        hostname: format!("host-{serial}"),
        product: "Catalyst 9300".into(),
        version: "17.9.4".into(),
        force: false,
    }
}

pub fn usage(tag: &str, count: u64) -> Vec<UsageLine> {
    vec![UsageLine {
        entitlement_tag: tag.into(),
        count,
    }]
}

/// Registers an agent in `dir` against the daemon.
pub fn register(
    rt: &tokio::runtime::Runtime,
    d: &Daemon,
    dir: &Path,
    token: &str,
    serial: &str,
) -> Agent {
    rt.block_on(Agent::register(
        dir,
        &device_url(d),
        &d.ca_pem,
        params(token, "C9300-24T", serial),
    ))
    .expect("register")
    .0
}

fn token_uses(d: &Daemon, id: &str) -> u64 {
    let list = d.cli_json(&["token", "list"]);
    list.as_array()
        .expect("a list")
        .iter()
        .find(|t| t["id"] == id)
        .expect("the token")["uses"]
        .as_u64()
        .expect("uses")
}

fn in_use(d: &Daemon, tag: &str) -> u64 {
    let list = d.cli_json(&["license", "list", "--va", "acme/Default"]);
    list["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["entitlement_tag"] == tag)
        .expect("the pool line")["in_use"]
        .as_u64()
        .expect("in_use")
}

#[test]
fn device_lifecycle_over_mutual_tls() {
    let d = Daemon::start();
    let token = d.account("acme").license(ADV, 3).token();
    let (secret, token_id) = (token.secret, token.id);
    assert_eq!(token_uses(&d, &token_id), 0);

    let rt = runtime();
    let dirs = tempfile::tempdir().unwrap();
    let before = OffsetDateTime::now_utc();
    let (mut a, answer) = rt
        .block_on(Agent::register(
            dirs.path().join("a"),
            &device_url(&d),
            &d.ca_pem,
            params(&secret, "C9300-24T", "FOC0001"),
        ))
        .expect("register");
    assert!(answer.certificate.contains("BEGIN CERTIFICATE"));
    assert!(answer.ca_chain.contains("BEGIN CERTIFICATE"));
    assert_eq!(answer.authorization.status, "registered");
    assert_eq!(answer.authorization.instance_id, answer.instance_id);
    assert_eq!(answer.report_interval_secs, 30 * 86_400);
    let half = answer.renew_after - before;
    assert!(
        half >= time::Duration::days(180) - time::Duration::minutes(5)
            && half <= time::Duration::days(180) + time::Duration::minutes(5),
        "renew_after is half the validity: {half}"
    );
    assert_eq!(token_uses(&d, &token_id), 1, "the token's use is counted");

    let auth = rt
        .block_on(a.report(usage(ADV, 2), OffsetDateTime::now_utc()))
        .expect("report");
    assert_eq!(auth.status, "authorized");
    assert_eq!(auth.entitlements.len(), 1);
    assert_eq!(auth.entitlements[0].count, 2);
    assert_eq!(auth.entitlements[0].status, "authorized");
    let current = rt.block_on(a.authorization()).expect("authorization");
    assert_eq!(current.instance_id, answer.instance_id);
    assert_eq!(current.status, "authorized");
    assert_eq!(in_use(&d, ADV), 2);

    // A second device wants 2 of the 1 left: all or nothing.
    let mut b = register(&rt, &d, &dirs.path().join("b"), &secret, "FOC0002");
    let auth_b = rt
        .block_on(b.report(usage(ADV, 2), OffsetDateTime::now_utc()))
        .expect("report");
    assert_eq!(auth_b.status, "out_of_compliance");
    assert_eq!(token_uses(&d, &token_id), 2);

    // Renewal: a new certificate; the old one is refused from then on.
    let old = a.client().clone();
    let renewed = rt.block_on(a.renew()).expect("renew");
    assert!(renewed.certificate.contains("BEGIN CERTIFICATE"));
    match rt.block_on(old.authorization()) {
        Err(e) => assert_eq!(e.code(), Some("certificate_revoked"), "{e}"),
        Ok(x) => panic!("the old certificate was accepted: {x:?}"),
    }
    let again = rt
        .block_on(a.authorization())
        .expect("the new certificate works");
    assert_eq!(again.status, "authorized");
    // A reopened agent uses the renewed identity from its directory.
    let mut reopened = Agent::open(dirs.path().join("a")).expect("open");
    assert_eq!(
        rt.block_on(reopened.authorization())
            .expect("authorization")
            .instance_id,
        answer.instance_id
    );

    // Deregistration releases a's licenses; b gets them at its next report.
    let gone = rt.block_on(a.deregister()).expect("deregister");
    assert_eq!(gone.instance_id, answer.instance_id);
    assert_eq!(gone.released, usage(ADV, 2));
    assert_eq!(in_use(&d, ADV), 2, "b's 2 units fit now");
    let auth_b = rt
        .block_on(b.report(usage(ADV, 2), OffsetDateTime::now_utc()))
        .expect("report");
    assert_eq!(auth_b.status, "authorized");
    assert_eq!(in_use(&d, ADV), 2);
    match rt.block_on(a.client().authorization()) {
        Err(e) => assert!(
            matches!(e.code(), Some("unknown_instance" | "certificate_revoked")),
            "{e}"
        ),
        Ok(x) => panic!("a deregistered device was answered: {x:?}"),
    }
    assert!(matches!(
        rt.block_on(a.report(usage(ADV, 1), OffsetDateTime::now_utc())),
        Err(AgentError::State(_))
    ));

    let list = d.cli_json(&["device", "list"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.instance_id()]);

    // The audit log has each step, with the device as subject.
    let events = d.cli_json(&["events", "--action", "device"]);
    let of = |action: &str, id: &str| -> Vec<Value> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["device"] == id)
            .cloned()
            .collect()
    };
    let a_id = answer.instance_id.as_str();
    assert_eq!(of("device.register", a_id).len(), 1, "{events:#}");
    assert_eq!(of("device.register", b.instance_id()).len(), 1);
    assert_eq!(of("device.renew", a_id).len(), 1);
    let dereg = of("device.deregister", a_id);
    assert_eq!(dereg.len(), 1);
    assert!(
        dereg[0]["subject"].as_str().unwrap().contains("FOC0001"),
        "{dereg:?}"
    );
}

/// What devices did survives a restart: revocations, sequence numbers, stored answers,
/// allocation order and seen RUM reports.
#[test]
fn device_state_survives_a_restart() {
    let mut d = Daemon::start();
    let secret = d.account("acme").license(ADV, 2).token().secret;
    let rt = runtime();
    let dirs = tempfile::tempdir().unwrap();
    let mut a = register(&rt, &d, &dirs.path().join("a"), &secret, "A");
    let mut b = register(&rt, &d, &dirs.path().join("b"), &secret, "B");
    let mut c = register(&rt, &d, &dirs.path().join("c"), &secret, "C");
    let now = OffsetDateTime::now_utc();
    // Reported out of order: c first, so only the allocation order puts a and b ahead.
    rt.block_on(c.report(usage(ADV, 1), now)).unwrap();
    let first = rt.block_on(a.report(usage(ADV, 1), now)).unwrap();
    rt.block_on(b.report(usage(ADV, 1), now)).unwrap();
    let old_a = a.identity().clone();
    rt.block_on(a.renew()).unwrap();
    let seq_a = a.state().last_report.clone().unwrap();
    let rum = include_str!("data/cisco-rum/example-rum-1671840750.xml");
    let rum_path = d.rum_path("acme");
    assert_eq!(d.device_api().post_raw(&rum_path, rum).status, 200);
    let devices = d.cli_json(&["device", "list"]);

    d.restart();
    assert_eq!(d.cli_json(&["device", "list"]), devices);
    let url = device_url(&d);
    let client = |id: &satellite::agent::AgentIdentity| {
        satellite::agent::DeviceClient::new(&url, id).expect("client")
    };
    let (ca, cb, cc) = (
        client(a.identity()),
        client(b.identity()),
        client(c.identity()),
    );
    match rt.block_on(client(&old_a).authorization()) {
        Err(e) => assert_eq!(e.code(), Some("certificate_revoked"), "{e}"),
        Ok(x) => panic!("the renewed-away certificate was accepted after a restart: {x:?}"),
    }
    // The stored answer of the last report, and its seq, survived.
    assert_eq!(rt.block_on(ca.usage(&seq_a)).expect("repeat"), first);
    let mut stale = seq_a.clone();
    stale.seq -= 1;
    match rt.block_on(ca.usage(&stale)) {
        Err(e) => assert_eq!(e.code(), Some("stale_seq"), "{e}"),
        Ok(x) => panic!("a stale seq was accepted after a restart: {x:?}"),
    }
    let statuses: Vec<String> = [&ca, &cb, &cc]
        .iter()
        .map(|c| rt.block_on(c.authorization()).unwrap().status)
        .collect();
    assert_eq!(statuses, ["authorized", "authorized", "out_of_compliance"]);
    // The ingest URL is the same after a restart: devices are configured with it.
    assert_eq!(d.rum_path("acme"), rum_path);
    let r = d.device_api().post_raw(&rum_path, rum);
    assert_eq!(
        r.body["duplicates"],
        serde_json::json!([1671840750]),
        "{}",
        r.text
    );

    // Deregistration after the restart still releases a's unit to c.
    rt.block_on(ca.deregister()).expect("deregister");
    assert_eq!(
        rt.block_on(cc.authorization()).unwrap().status,
        "authorized"
    );
}
