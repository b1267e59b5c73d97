//! What an operator did survives a clean restart (SPEC §9).

use crate::util::Daemon;

#[test]
fn everything_survives_a_restart_and_event_numbers_continue() {
    let mut d = Daemon::start();
    let acme = d.account("acme");
    d.account("globex");
    acme.child("emea").child("de");
    acme.license("regid.ADV", 7);
    d.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default/emea",
        "--tag",
        "regid.ADV",
        "--quantity",
        "2",
        "--start",
        "2020-01-01",
        "--end",
        "2099-06-30",
        "--label",
        "q3",
    ]);
    d.cli_ok(&[
        "license",
        "transfer",
        "--from",
        "acme/Default",
        "--to",
        "acme/Default/emea/de",
        "--tag",
        "regid.ADV",
        "--quantity",
        "3",
    ]);
    let token = d.cli_json(&[
        "token",
        "create",
        "--va",
        "acme/Default/emea",
        "--max-uses",
        "3",
    ]);
    let revoked = d.va("acme/Default").token();
    d.cli_ok(&["token", "revoke", &revoked.id]);
    d.cli_ok(&["user", "create", "root"]);
    d.cli_ok(&["user", "grant", "root", "--role", "system-admin"]);
    let api = d.cli_json(&["api-token", "create", "--user", "root"]);
    let api_secret = api["secret"].as_str().unwrap().to_string();

    let before = d.snapshot();
    let last_seq = before["events"][0]["seq"].as_u64().expect("a newest event");
    assert_eq!(last_seq, 13);

    d.restart();

    let after = d.snapshot();
    assert_eq!(
        after, before,
        "the restarted daemon holds exactly what it held"
    );
    assert_eq!(after["tokens"].as_array().unwrap().len(), 2);
    let states: Vec<&str> = after["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"revoked") && states.contains(&"active"),
        "{states:?}"
    );
    assert!(
        after["tokens"]
            .to_string()
            .contains(token["id"].as_str().unwrap())
    );

    // The hashed API token still authenticates after the restart.
    let res = d.admin_api(Some(&api_secret)).get("/v1/accounts");
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body.as_array().map(Vec::len), Some(2));

    // Numbering continues where it stopped.
    d.cli_ok(&["account", "create", "initech", "--domain", "initech.com"]);
    let newest = &d.events()[0];
    assert_eq!(newest["seq"].as_u64(), Some(last_seq + 1), "{newest}");
    assert_eq!(newest["action"], "account.create");

    // And a second restart keeps the new change too.
    d.restart();
    assert_eq!(
        d.cli_json(&["account", "list"]).as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(d.event_count() as u64, last_seq + 1);
    d.stop();
}
