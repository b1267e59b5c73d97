//! The operator's view of devices through the real CLI (SPEC §5, §6): `device list` filters,
//! `device show`, `device move`, `device remove`, `compliance`, `alerts`, `license list`.

use serde_json::Value;
use time::OffsetDateTime;

use satellite::agent::Agent;

use crate::devices::{register, runtime, usage};
use crate::util::{Daemon, parse_table};

const ADV: &str = "regid.2019-03.com.example.ADV";

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_string())
        .collect()
}

fn in_use(d: &Daemon, va: &str) -> u64 {
    let list = d.cli_json(&["license", "list", "--va", va]);
    list["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["entitlement_tag"] == ADV)
        .map_or(0, |p| p["in_use"].as_u64().expect("in_use"))
}

fn kinds(d: &Daemon) -> Vec<String> {
    d.cli_json(&["alerts"])
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["kind"].as_str().expect("kind").to_string())
        .collect()
}

#[test]
fn operators_find_move_and_remove_devices_and_see_shortages() {
    let d = Daemon::start();
    let acme = d.account("acme");
    let (emea, amer) = (acme.child("emea"), acme.child("amer"));
    emea.license(ADV, 2);
    amer.license(ADV, 5);
    let (emea, amer) = (emea.token().secret, amer.token().secret);

    let rt = runtime();
    let dirs = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> = Vec::new();
    for (token, serial) in [(&emea, "E1"), (&emea, "E2"), (&emea, "E3"), (&amer, "A1")] {
        let mut a = register(&rt, &d, &dirs.path().join(serial), token, serial);
        rt.block_on(a.report(usage(ADV, 1), OffsetDateTime::now_utc()))
            .expect("report");
        agents.push(a);
    }
    let id: Vec<String> = agents.iter().map(|a| a.instance_id().to_string()).collect();
    let (e1, e2, e3, a1) = (
        id[0].as_str(),
        id[1].as_str(),
        id[2].as_str(),
        id[3].as_str(),
    );

    // Filters.
    let emea_list = d.cli_json(&["device", "list", "--va", "acme/Default/emea"]);
    assert_eq!(ids(&emea_list), [e1, e2, e3], "registration order");
    assert_eq!(
        ids(&d.cli_json(&["device", "list", "--status", "out_of_compliance"])),
        [e3]
    );
    assert_eq!(
        ids(&d.cli_json(&[
            "device",
            "list",
            "--status",
            "authorized",
            "--va",
            "acme/Default/emea"
        ])),
        [e1, e2]
    );
    assert_eq!(ids(&d.cli_json(&["device", "list", "--udi", "E3"])), [e3]);
    assert_eq!(
        ids(&d.cli_json(&["device", "list", "--udi", "C9300"])).len(),
        4
    );
    assert_eq!(
        ids(&d.cli_json(&["device", "list", "--hostname", "host-A1"])),
        [a1]
    );
    assert!(ids(&d.cli_json(&["device", "list", "--hostname", "nobody"])).is_empty());
    // An unknown status is a usage error, refused before the daemon is asked.
    let (code, stderr) = d.cli_err(&["device", "list", "--status", "sleepy"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("sleepy"), "{stderr}");

    let table = parse_table(
        &d.cli_ok(&["device", "list", "--va", "acme/Default/emea"]),
        &[
            "DEVICE",
            "UDI",
            "HOSTNAME",
            "VIRTUAL ACCOUNT",
            "STATUS",
            "LAST CONTACT",
            "SOURCE",
        ],
        &[],
    );
    let row = table.row_where(0, e3);
    assert_eq!(row[1], "C9300-24T:E3");
    assert_eq!(row[4], "out_of_compliance");

    // Show, by id and by UDI.
    let shown = d.cli_json(&["device", "show", e3]);
    assert_eq!(shown["status"], "out_of_compliance");
    assert_eq!(shown["va_path"], "acme/Default/emea");
    assert_eq!(shown["entitlements"][0]["entitlement_tag"], ADV);
    assert_eq!(shown["entitlements"][0]["count"], 1);
    assert_eq!(shown["entitlements"][0]["status"], "out_of_compliance");
    assert_eq!(d.cli_json(&["device", "show", "C9300-24T:E3"])["id"], e3);
    let text = d.cli_ok(&["device", "show", e3]);
    assert!(
        text.contains("out_of_compliance") && text.contains(ADV),
        "{text}"
    );

    // Shortage: emea is short of one, amer has 4 spare.
    assert_eq!(in_use(&d, "acme/Default/emea"), 2);
    assert_eq!(in_use(&d, "acme/Default/amer"), 1);
    let compliance = d.cli_json(&["compliance"]);
    let lines = compliance.as_array().unwrap();
    assert_eq!(lines.len(), 1, "{compliance:#}");
    let l = &lines[0];
    assert_eq!(l["va_path"], "acme/Default/emea");
    assert_eq!(l["entitlement_tag"], ADV);
    assert_eq!(
        (
            &l["purchased"],
            &l["requested"],
            &l["granted"],
            &l["shortage"],
            &l["devices_short"]
        ),
        (
            &Value::from(2),
            &Value::from(3),
            &Value::from(2),
            &Value::from(1),
            &Value::from(1)
        )
    );
    assert_eq!(l["spare_in"][0]["va_path"], "acme/Default/amer");
    assert_eq!(l["spare_in"][0]["spare"], 4);
    let text = d.cli_ok(&["compliance"]);
    assert!(text.contains("acme/Default/amer (4)"), "{text}");
    let alerts = d.cli_json(&["alerts"]);
    let short: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "insufficient_licenses")
        .collect();
    assert_eq!(short.len(), 1, "{alerts:#}");
    let message = short[0]["message"].as_str().unwrap();
    assert!(
        message.contains("acme/Default/emea") && message.contains("acme/Default/amer"),
        "{message}"
    );

    // Move the short device to amer: its licenses follow the VA.
    let moved = d.cli_json(&["device", "move", e3, "--to", "acme/Default/amer"]);
    assert_eq!(moved["va_path"], "acme/Default/amer");
    assert_eq!(moved["status"], "authorized");
    assert_eq!(in_use(&d, "acme/Default/emea"), 2);
    assert_eq!(in_use(&d, "acme/Default/amer"), 2);
    assert!(d.cli_json(&["compliance"]).as_array().unwrap().is_empty());
    assert!(!kinds(&d).iter().any(|k| k == "insufficient_licenses"));
    let answer = rt
        .block_on(agents[2].authorization())
        .expect("authorization");
    assert_eq!(answer.status, "authorized", "the device sees it too");

    // Move a1 into emea, registered after e1 and e2: it is the one short now.
    d.cli_ok(&["device", "move", a1, "--to", "acme/Default/emea"]);
    assert_eq!(
        d.cli_json(&["device", "show", a1])["status"],
        "out_of_compliance"
    );
    assert_eq!(d.cli_json(&["device", "show", e2])["status"], "authorized");
    assert_eq!(d.cli_json(&["compliance"]).as_array().unwrap().len(), 1);

    // A device never moves to another account.
    d.account("globex");
    let (code, stderr) = d.cli_err(&["device", "move", e2, "--to", "globex/Default"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("account"), "{stderr}");
    assert_eq!(
        d.cli_json(&["device", "show", e2])["va_path"],
        "acme/Default/emea"
    );

    // Remove e1: its unit returns to emea's pool and a1 fits.
    let removed = d.cli_json(&["device", "remove", e1, "--yes"]);
    assert_eq!(removed["id"], e1);
    assert_eq!(removed["released"][0]["entitlement_tag"], ADV);
    assert_eq!(removed["released"][0]["count"], 1);
    assert_eq!(d.cli_json(&["device", "show", a1])["status"], "authorized");
    assert_eq!(
        rt.block_on(agents[3].authorization()).unwrap().status,
        "authorized"
    );
    assert!(d.cli_json(&["compliance"]).as_array().unwrap().is_empty());
    let (code, stderr) = d.cli_err(&["device", "show", e1]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not_found") || stderr.contains("not found"),
        "{stderr}"
    );
    match rt.block_on(agents[0].authorization()) {
        Err(e) => assert!(
            matches!(e.code(), Some("unknown_instance" | "certificate_revoked")),
            "{e}"
        ),
        Ok(x) => panic!("a removed device was answered: {x:?}"),
    }
    let events = d.cli_json(&["events", "--action", "device"]);
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "device.move").count(), 2);
    assert_eq!(actions.iter().filter(|a| **a == "device.remove").count(), 1);
}
