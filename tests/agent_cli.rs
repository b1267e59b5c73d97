//! `satellite agent …` against the real daemon: a device driven from the command line.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::{Daemon, agent};

const ADV: &str = "regid.2019-03.com.example.ADV";

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

/// (exit code, stderr) of a failure.
fn err(out: Output) -> (i32, String) {
    assert!(
        !out.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_agent_cli_registers_reports_and_deregisters() {
    let d = Daemon::start();
    let token = d.account("acme").license(ADV, 5).token().secret;
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &d.ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let dir = tmp.path().join("agent");
    let url = format!("https://{}", d.device_addr);
    let register = |dir: &Path, token: &str, serial: &str, extra: &[&str]| {
        let mut args = vec![
            "register",
            "--url",
            &url,
            "--ca",
            ca,
            "--token",
            token,
            "--pid",
            "C9300-24T",
            "--serial",
            serial,
            "--hostname",
            "sw-01",
        ];
        args.extend_from_slice(extra);
        agent(dir, &args)
    };

    let text = ok(register(&dir, &token, "FOC1", &[]));
    let listed = d.cli_json(&["device", "list"]);
    let id = listed[0]["id"].as_str().expect("registered").to_string();
    assert!(
        text.contains(&format!("registered C9300-24T:FOC1 as instance {id}")),
        "{text}"
    );
    assert!(text.contains("registered"), "{text}");
    assert_eq!(listed[0]["hostname"], "sw-01");

    // Reports, in tables and JSON.
    let text = ok(agent(&dir, &["report", "--usage", &format!("{ADV}=3")]));
    assert!(text.contains(ADV) && text.contains("authorized"), "{text}");
    let answer = json(agent(
        &dir,
        &["report", "--usage", &format!("{ADV}=4"), "--json"],
    ));
    assert_eq!(answer["instance_id"], id.as_str());
    assert_eq!(answer["status"], "authorized");
    assert_eq!(answer["entitlements"][0]["count"], 4);
    assert_eq!(
        d.cli_json(&["device", "show", &id])["entitlements"][0]["count"],
        4
    );

    let status = json(agent(&dir, &["status", "--json"]));
    assert_eq!(status["instance_id"], id.as_str());
    assert_eq!(status["seq"], 2);
    assert_eq!(status["authorization"]["status"], "authorized");
    assert_eq!(status["authorization_is_current"], true);
    assert_eq!(status["deregistered"], false);
    let text = ok(agent(&dir, &["status"]));
    assert!(text.contains(&id) && text.contains("authorized"), "{text}");

    let text = ok(agent(&dir, &["renew"]));
    assert!(
        text.contains(&format!("renewed the certificate of instance {id}")),
        "{text}"
    );
    ok(agent(&dir, &["report", "--usage", &format!("{ADV}=4")]));

    // Refusals: exit code 1 with the cause and the fix.
    let (code, stderr) = err(register(&dir, &token, "FOC1", &[]));
    assert_eq!(code, 1);
    assert!(stderr.contains("--force"), "{stderr}");
    let other = tmp.path().join("other");
    let (code, stderr) = err(register(&other, &token, "FOC1", &[]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("already registered") && stderr.contains("--force"),
        "{stderr}"
    );
    let (code, stderr) = err(register(&other, "srt_wrong", "FOC2", &[]));
    assert_eq!(code, 1);
    assert!(stderr.contains("token"), "{stderr}");
    let (code, stderr) = err(agent(&other, &["report", "--usage", "ADV=1"]));
    assert_eq!(code, 1);
    assert!(!stderr.is_empty());
    let (code, _) = err(agent(&dir, &["report", "--usage", "ADV"]));
    assert_eq!(code, 2, "a usage error");

    // Deregistration releases the licenses and ends the agent.
    let text = ok(agent(&dir, &["deregister"]));
    assert!(
        text.contains(&format!("deregistered instance {id}")),
        "{text}"
    );
    assert!(text.contains(ADV) && text.contains('4'), "{text}");
    assert!(
        d.cli_json(&["device", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (code, stderr) = err(agent(&dir, &["report", "--usage", &format!("{ADV}=1")]));
    assert_eq!(code, 1);
    assert!(stderr.contains("deregistered"), "{stderr}");
    let out = agent(&dir, &["status", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).expect("status prints its JSON");
    assert_eq!(shown["deregistered"], true);
    assert_eq!(shown["instance_id"], id.as_str());

    // The directory may be registered again (no --force needed once deregistered).
    let again = json(register(&dir, &token, "FOC1", &["--json"]));
    assert_ne!(again["instance_id"], id.as_str());
    assert_eq!(again["authorization"]["status"], "registered");
}
