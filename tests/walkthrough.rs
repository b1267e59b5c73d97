//! The operator walkthrough through the real CLI (SPEC §5): accounts, a VA tree, licenses,
//! transfers, tokens and the audit log, in tables and in `--json`.

use serde_json::Value;

use crate::util::{Daemon, parse_table};

/// The uid the CLI runs as: the actor of every change made through the admin socket.
pub fn my_uid() -> String {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id -u");
    String::from_utf8(out.stdout)
        .expect("uid")
        .trim()
        .to_string()
}

fn quantities_of(list: &Value, tag: &str) -> u64 {
    list["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["entitlement_tag"] == tag)
        .map(|e| e["quantity"].as_u64().expect("quantity"))
        .sum()
}

#[test]
fn operator_walkthrough() {
    let d = Daemon::start();

    // Account and a three-level VA tree.
    let acme = d.cli_json(&["account", "create", "acme", "--domain", "acme.com"]);
    assert_eq!(acme["name"], "acme");
    assert_eq!(acme["status"], "active");
    d.cli_ok(&["va", "create", "emea", "--parent", "acme/Default"]);
    d.cli_ok(&["va", "create", "amer", "--parent", "acme/Default"]);
    let de = d.cli_json(&["va", "create", "de", "--parent", "acme/Default/emea"]);
    assert_eq!(de["level"], 3);

    let tree = parse_table(
        &d.cli_ok(&["va", "list"]),
        &["VIRTUAL ACCOUNT", "LEVEL", "ID"],
        &[1],
    );
    let names: Vec<&str> = tree.raw.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        ["acme/Default", "  amer", "  emea", "    de"],
        "{tree:#?}"
    );
    assert_eq!(tree.row_where(2, de["id"].as_str().unwrap())[1], "3");

    // Licenses: perpetual in Default, term in emea, another tag in de.
    let perpetual = d.cli_json(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        "regid.ADV",
        "--quantity",
        "10",
        "--label",
        "core",
    ]);
    assert_eq!(perpetual["kind"], "perpetual");
    let term = d.cli_json(&[
        "license",
        "add",
        "--va",
        "acme/Default/emea",
        "--tag",
        "regid.ADV",
        "--quantity",
        "4",
        "--start",
        "2020-01-01",
        "--end",
        "2099-01-01",
        "--order-ref",
        "PO-1",
    ]);
    assert_eq!(term["kind"], "term");
    d.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default/emea/de",
        "--tag",
        "regid.ESS",
        "--quantity",
        "3",
    ]);

    let list = d.cli_json(&["license", "list"]);
    let text = d.cli_ok(&["license", "list"]);
    let pools = parse_table(
        &text,
        &[
            "VIRTUAL ACCOUNT",
            "ENTITLEMENT TAG",
            "PURCHASED",
            "IN USE",
            "BALANCE",
            "NEXT EXPIRY",
        ],
        &[2, 3, 4],
    );
    let json_pools = list["pools"].as_array().expect("pools");
    assert_eq!(pools.rows.len(), 3, "one line per VA and tag: {text}");
    assert_eq!(json_pools.len(), 3);
    for p in json_pools {
        let row = pools
            .rows
            .iter()
            .find(|r| r[0] == p["va_path"].as_str().unwrap() && r[1] == p["entitlement_tag"])
            .unwrap_or_else(|| panic!("no table line for {p}: {text}"));
        assert_eq!(row[2], p["purchased"].to_string());
        assert_eq!(row[3], p["in_use"].to_string());
        assert_eq!(row[4], p["balance"].to_string());
    }
    let adv_default = json_pools
        .iter()
        .find(|p| p["entitlement_tag"] == "regid.ADV" && p["va"] == acme["default_va"])
        .expect("regid.ADV in Default");
    assert_eq!(
        (
            adv_default["purchased"].as_u64(),
            adv_default["in_use"].as_u64(),
            adv_default["balance"].as_i64()
        ),
        (Some(10), Some(0), Some(10))
    );
    // The entries table follows the pool table after a blank line.
    let entries_text = text.split("\n\n").nth(1).expect("an entries table");
    let entries = parse_table(
        entries_text,
        &[
            "LICENSE",
            "VIRTUAL ACCOUNT",
            "ENTITLEMENT TAG",
            "QTY",
            "KIND",
            "START",
            "END",
            "LABELS",
        ],
        &[3],
    );
    let term_row = entries.row_where(0, term["id"].as_str().unwrap());
    assert_eq!(term_row[3], "4");
    assert_eq!(
        (term_row[5].as_str(), term_row[6].as_str()),
        ("2020-01-01", "2099-01-01")
    );

    // Transfer 3 of the 4 term units from emea to de: dates kept, totals conserved.
    let before = quantities_of(&list, "regid.ADV");
    d.cli_ok(&[
        "license",
        "transfer",
        "--from",
        "acme/Default/emea",
        "--to",
        "acme/Default/emea/de",
        "--tag",
        "regid.ADV",
        "--quantity",
        "3",
    ]);
    let after_list = d.cli_json(&["license", "list"]);
    assert_eq!(
        quantities_of(&after_list, "regid.ADV"),
        before,
        "a transfer conserves units"
    );
    let de_list = d.cli_json(&[
        "license",
        "list",
        "--va",
        "acme/Default/emea/de",
        "--tag",
        "regid.ADV",
    ]);
    let moved = de_list["entries"].as_array().expect("entries");
    assert_eq!(moved.len(), 1, "{de_list}");
    assert_eq!(moved[0]["quantity"], 3);
    assert_eq!(moved[0]["kind"], "term");
    assert_eq!(
        moved[0]["start"], term["start"],
        "the transfer keeps the start date"
    );
    assert_eq!(
        moved[0]["end"], term["end"],
        "the transfer keeps the end date"
    );
    let emea_list = d.cli_json(&[
        "license",
        "list",
        "--va",
        "acme/Default/emea",
        "--tag",
        "regid.ADV",
    ]);
    assert_eq!(quantities_of(&emea_list, "regid.ADV"), 1);
    assert_eq!(emea_list["pools"][0]["balance"], 1);

    // A token's secret is shown once, at creation, and never listed.
    let created = d.cli_ok(&[
        "token",
        "create",
        "--va",
        "acme/Default/emea/de",
        "--description",
        "lab",
    ]);
    let secret = created
        .lines()
        .find_map(|l| l.strip_prefix("secret (shown once, store it now): "))
        .unwrap_or_else(|| panic!("no secret line in {created}"))
        .trim()
        .to_string();
    assert!(secret.len() >= 20, "a high-entropy secret: {secret}");
    let created_json = d.cli_json(&["token", "create", "--va", "acme/Default", "--max-uses", "5"]);
    let secret2 = created_json["secret"]
        .as_str()
        .expect("secret field")
        .to_string();
    assert_ne!(secret, secret2);
    let token_text = d.cli_ok(&["token", "list"]);
    assert!(
        !token_text.contains(&secret) && !token_text.contains(&secret2),
        "{token_text}"
    );
    let tokens = parse_table(
        &token_text,
        &[
            "TOKEN",
            "VIRTUAL ACCOUNT",
            "STATE",
            "USES",
            "EXPIRES",
            "EXPORT",
            "DESCRIPTION",
        ],
        &[3],
    );
    assert_eq!(tokens.rows.len(), 2);
    assert_eq!(
        tokens.row_where(0, created_json["id"].as_str().unwrap())[3],
        "0/5"
    );
    let token_json = d.cli_json(&["token", "list"]);
    let token_json_text = token_json.to_string();
    assert!(!token_json_text.contains(&secret) && !token_json_text.contains(&secret2));
    for t in token_json.as_array().expect("tokens") {
        assert!(
            t.get("secret").is_none(),
            "a listed token carries no secret: {t}"
        );
        assert_eq!(t["state"], "active");
    }

    // Users and API tokens list in tables and JSON too.
    d.cli_ok(&["user", "create", "olivia"]);
    d.cli_ok(&[
        "user",
        "grant",
        "olivia",
        "--role",
        "va-user",
        "--va",
        "acme/Default/emea",
    ]);
    let api = d.cli_json(&["api-token", "create", "--user", "olivia"]);
    let api_secret = api["secret"]
        .as_str()
        .expect("API token secret")
        .to_string();
    let api_text = d.cli_ok(&["api-token", "list"]);
    assert!(!api_text.contains(&api_secret));
    parse_table(
        &api_text,
        &[
            "API TOKEN",
            "USER",
            "STATE",
            "CREATED",
            "EXPIRES",
            "DESCRIPTION",
        ],
        &[],
    );
    parse_table(&d.cli_ok(&["user", "list"]), &["USER", "ROLES", "ID"], &[]);
    parse_table(
        &d.cli_ok(&["account", "list"]),
        &["NAME", "DOMAIN", "STATUS", "CREATED", "ID"],
        &[],
    );

    // Every listing command parses as JSON.
    let snapshot = d.snapshot();
    assert_eq!(snapshot["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(snapshot["vas"].as_array().unwrap().len(), 4);
    assert_eq!(snapshot["users"][0]["name"], "olivia");
    assert_eq!(snapshot["api_tokens"].as_array().unwrap().len(), 1);
    assert!(!snapshot["api_tokens"].to_string().contains(&api_secret));

    // The audit log holds every change, in order, by the socket's owner.
    let events = d.events();
    let actions: Vec<&str> = events
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "account.create",
            "va.create",
            "va.create",
            "va.create",
            "license.add",
            "license.add",
            "license.add",
            "license.transfer",
            "token.create",
            "token.create",
            "user.create",
            "user.grant",
            "api_token.create",
        ],
        "{events:#?}"
    );
    let seqs: Vec<u64> = events
        .iter()
        .rev()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    let actor = format!("local:uid={}", my_uid());
    for e in &events {
        assert_eq!(e["actor"], actor.as_str(), "{e}");
    }
    let table = parse_table(
        &d.cli_ok(&["events"]),
        &["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS"],
        &[0],
    );
    assert_eq!(table.rows.len(), events.len());
    assert_eq!(table.rows[0][0], events.len().to_string(), "newest first");
    assert_eq!(table.rows[0][2], actor);
}

/// The table check above must be able to fail: a shifted cell breaks the column gutters.
#[test]
fn the_table_check_catches_misaligned_columns() {
    let aligned = "NAME   QTY\nalpha    1\nb       10\n";
    let t = parse_table(aligned, &["NAME", "QTY"], &[1]);
    assert_eq!(t.rows, [["alpha", "1"], ["b", "10"]]);
    for bad in [
        "NAME   QTY\nalpha    1\nb      10 \n ",
        "NAME   QTY\nalpha    1\n b      10\n",
        "NAME   QTY\nalpha 1\nb       10\n",
    ] {
        let caught = std::panic::catch_unwind(|| parse_table(bad, &["NAME", "QTY"], &[1]));
        assert!(caught.is_err(), "not detected as misaligned: {bad:?}");
    }
}

/// VA paths the CLI prints must name a VA unambiguously: with two accounts, both have a
/// `Default` VA, and `license list` must tell their pool lines apart; the path printed for a VA
/// must be one `va show` accepts (SPEC §5: VAs are named `ACCOUNT/Default/...`).
#[test]
fn printed_va_paths_name_their_account() {
    let d = Daemon::start();
    for account in ["acme", "globex"] {
        d.account(account).license("regid.ADV", 1);
    }
    let list = d.cli_json(&["license", "list"]);
    let paths: Vec<&str> = list["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["va_path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2);
    assert_ne!(
        paths[0], paths[1],
        "two accounts' Default VAs print the same path: {list}"
    );
    let created = d.cli_json(&["va", "create", "emea", "--parent", "globex/Default"]);
    let path = created["path"].as_str().unwrap();
    let shown = d.cli_json(&["va", "show", path]);
    assert_eq!(
        shown["id"], created["id"],
        "`va show {path}` finds the VA it names"
    );
}

#[test]
fn the_audit_log_pages_back_by_sequence_number() {
    let d = Daemon::start();
    let acme = d.account("acme");
    for name in ["a", "b", "c", "d", "e"] {
        acme.child(name);
    }
    let seqs = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["events"];
        all.extend_from_slice(args);
        d.cli_json(&all)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&["--limit", "2"]), [6, 5]);
    assert_eq!(seqs(&["--limit", "2", "--before", "5"]), [4, 3]);
    assert_eq!(seqs(&["--before", "3"]), [2, 1]);
    assert_eq!(seqs(&["--before", "1"]), Vec::<u64>::new());
}
