//! Bad operator input gets a clear error (exit code 1, a message naming the cause, a stable
//! error code under `--json`) and changes nothing (SPEC §9 "Bad input"). CLI usage errors exit
//! with code 2 (code `usage`). One table of cases, one driver: each case is run as an operator
//! would type it and again with `--json`, and everything an operator can list, the audit log
//! included, must be the same after it as before.

use serde_json::Value;

use crate::util::Daemon;

/// One refused command: what it is, how it is typed, and how it must be refused.
struct Case {
    /// Says what is wrong with the input; failures name the case by it.
    name: &'static str,
    args: Vec<String>,
    /// 1 for a refusal by the daemon, 2 for a usage error.
    exit: i32,
    /// The `error.code` printed under `--json`.
    code: &'static str,
    /// Fragments the message must contain (case-insensitively): the cause, and the value.
    names: Vec<String>,
}

fn case(
    name: &'static str,
    exit: i32,
    code: &'static str,
    names: &[&str],
    args: Vec<String>,
) -> Case {
    Case {
        name,
        args,
        exit,
        code,
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `license add` of `quantity` units of `t` to `va`, with `extra` arguments.
fn add(va: &str, quantity: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "license",
        "add",
        "--va",
        va,
        "--tag",
        "t",
        "--quantity",
        quantity,
    ];
    args.extend(extra);
    words(&args)
}

/// `license transfer` of `quantity` units of `regid.ADV` from `acme/Default` to `to`.
fn transfer(to: &str, quantity: &str) -> Vec<String> {
    words(&[
        "license",
        "transfer",
        "--from",
        "acme/Default",
        "--to",
        to,
        "--tag",
        "regid.ADV",
        "--quantity",
        quantity,
    ])
}

/// `token create` for `acme/Default` with `extra` arguments.
fn token_create(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["token", "create", "--va", "acme/Default"];
    args.extend(extra);
    words(&args)
}

/// The world the cases are refused in: accounts acme and globex, a chain of VAs
/// `acme/Default/l2/.../l10` (Default is level 1, the deepest level 10), 10 units of
/// `regid.ADV` in `acme/Default` and a revoked token. Answers the deepest VA's path, the
/// license entry's id and the token's id.
fn world(d: &Daemon) -> (String, String, String) {
    let acme = d.account("acme");
    d.account("globex");
    let mut deepest = acme.child("l2");
    for level in 3..=10 {
        deepest = deepest.child(&format!("l{level}"));
    }
    acme.license("regid.ADV", 10);
    let token = acme.token().id;
    d.cli_ok(&["token", "revoke", &token]);
    let licenses = d.cli_json(&["license", "list"]);
    let entry = licenses["entries"][0]["id"].as_str().unwrap().to_string();
    (deepest.path, entry, token)
}

/// Every case, in the order they run: what is wrong, the exit code, the error code under
/// `--json` and what the message names; then the command. Kept out of rustfmt so that it reads
/// as a table, two lines a case.
#[rustfmt::skip]
fn cases(deepest: &str, entry: &str, token: &str) -> Vec<Case> {
    let unknown_id = "4a0c8e57-3f1c-4c43-9d6b-0c1ab2a3f0aa";
    let term = |start: &str, end: Option<&str>| {
        let mut extra = vec!["--start", start];
        extra.extend(end.map(|e| ["--end", e]).into_iter().flatten());
        add("acme/Default", "1", &extra)
    };
    let cisco_add = |extra: &[&str]| {
        let mut args = vec!["cisco", "device", "add", "edge-9", "--va", "acme/Default",
            "--address", "10.0.0.5", "--user", "slp", "--password-stdin"];
        args.extend_from_slice(extra);
        words(&args)
    };
    let pin = "ab".repeat(32);
    vec![
        case("Cisco device without trust", 1, "invalid_request", &["trust is explicit", "--fingerprint"],
            cisco_add(&[])),
        case("Cisco device with an empty password", 1, "invalid_request", &["password", "empty"],
            cisco_add(&["--fingerprint", &pin])),
        case("unknown Cisco device", 1, "not_found", &["nope", "not found"],
            words(&["cisco", "device", "show", "nope"])),
        case("license for an unknown VA path", 1, "not_found", &["acme/Default/nope", "not found"],
            add("acme/Default/nope", "1", &[])),
        case("VA under an unknown VA id", 1, "not_found", &[unknown_id, "not found"],
            words(&["va", "create", "x", "--parent", unknown_id])),
        case("showing an unknown VA", 1, "not_found", &["acme/Default/nope", "not found"],
            words(&["va", "show", "acme/Default/nope"])),
        case("an 11th level", 1, "refused", &["10", "level"],
            words(&["va", "create", "l11", "--parent", deepest])),
        case("VA moved under its own descendant", 1, "refused", &["subtree"],
            words(&["va", "move", "acme/Default/l2", "--to", "acme/Default/l2/l3/l4"])),
        case("VA moved to another account", 1, "refused", &["account"],
            words(&["va", "move", "acme/Default/l2", "--to", "globex/Default"])),
        case("duplicate sibling VA", 1, "conflict", &["l2", "already"],
            words(&["va", "create", "l2", "--parent", "acme/Default"])),
        case("VA name with a slash", 1, "invalid_request", &["a/b", "/"],
            words(&["va", "create", "a/b", "--parent", "acme/Default"])),
        case("zero quantity", 1, "invalid_request", &["quantity", "0"],
            add("acme/Default", "0", &[])),
        case("negative quantity", 1, "invalid_request", &["quantity", "-3"],
            add("acme/Default", "-3", &[])),
        case("term ending when it starts", 1, "invalid_request", &["end"],
            term("2030-01-01", Some("2030-01-01"))),
        case("term ending before it starts", 1, "invalid_request", &["end"],
            term("2030-01-01", Some("2029-01-01"))),
        case("term without an end", 1, "invalid_request", &["end"],
            term("2030-01-01", None)),
        case("transfer of more units than exist", 1, "refused", &["11", "only 10"],
            transfer("acme/Default/l2", "11")),
        case("transfer of a negative quantity", 1, "invalid_request", &["quantity"],
            transfer("acme/Default/l2", "-3")),
        case("transfer to another account", 1, "refused", &["account"],
            transfer("globex/Default", "1")),
        case("transfer to the same VA", 1, "invalid_request", &["same"],
            transfer("acme/Default", "1")),
        case("duplicate account name", 1, "conflict", &["acme", "already exists"],
            words(&["account", "create", "acme", "--domain", "other.com"])),
        case("invalid domain", 1, "invalid_request", &["Example.COM", "domain"],
            words(&["account", "create", "initech", "--domain", "Example.COM"])),
        case("domain of another account", 1, "conflict", &["acme.com", "acme"],
            words(&["account", "create", "initech", "--domain", "acme.com"])),
        case("token expiring after a year", 1, "invalid_request", &["366", "365"],
            token_create(&["--expires-in-days", "366"])),
        case("token expiring at once", 1, "invalid_request", &["0 days"],
            token_create(&["--expires-in-days", "0"])),
        case("token without uses", 1, "invalid_request", &["max uses"],
            token_create(&["--max-uses", "0"])),
        case("deleting a VA that is not empty", 1, "refused", &["not empty", "child"],
            words(&["va", "delete", "acme/Default/l2", "--yes"])),
        case("deleting the Default VA", 1, "refused", &["Default"],
            words(&["va", "delete", "acme/Default", "--yes"])),
        case("removing more units than an entry holds", 1, "invalid_request", &["11", "10"],
            words(&["license", "remove", entry, "--quantity", "11", "--yes"])),
        case("revoking a token twice", 1, "refused", &[token, "already revoked"],
            words(&["token", "revoke", token])),
        // Usage errors are clap's, naming the missing or bad argument.
        case("account without a domain", 2, "usage", &["--domain"],
            words(&["account", "create", "initech"])),
        case("quantity that is not a number", 2, "usage", &["--quantity", "many"],
            add("acme/Default", "many", &[])),
        case("start that is not a date", 2, "usage", &["someday"],
            term("someday", Some("2030-01-01"))),
    ]
}

/// Runs the CLI; answers the exit code (0 for a command that should have been refused) and
/// stderr.
fn run(d: &Daemon, args: &[&str]) -> (i32, String) {
    let out = d.cli(args);
    let code = out.status.code().expect("an exit code, not a signal");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs `case` and answers what is wrong with how it was refused, if anything.
fn check(d: &Daemon, case: &Case) -> Vec<String> {
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let mut wrong = Vec::new();
    let before = d.snapshot();
    let (exit, stderr) = run(d, &args);
    if exit != case.exit {
        wrong.push(format!("exit code {exit}, not {}: {stderr}", case.exit));
    }
    let lower = stderr.to_lowercase();
    for n in &case.names {
        if !lower.contains(&n.to_lowercase()) {
            wrong.push(format!("the message does not name `{n}`: {stderr}"));
        }
    }
    let mut json = args.clone();
    json.push("--json");
    let (exit, stderr) = run(d, &json);
    let code = serde_json::from_str::<Value>(stderr.trim())
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    if exit != case.exit || code.as_deref() != Some(case.code) {
        wrong.push(format!(
            "under --json: exit code {exit} and error code {code:?}, not {} and `{}`: {stderr}",
            case.exit, case.code
        ));
    }
    if d.snapshot() != before {
        wrong.push("it changed what an operator can list or the audit log".into());
    }
    wrong
        .into_iter()
        .map(|w| format!("{} (`satellite {}`): {w}", case.name, args.join(" ")))
        .collect()
}

#[test]
fn refused_commands_explain_why_and_change_nothing() {
    let d = Daemon::start();
    let (deepest, entry, token) = world(&d);
    let before = d.snapshot();
    let cases = cases(&deepest, &entry, &token);
    let wrong: Vec<String> = cases.iter().flat_map(|c| check(&d, c)).collect();
    assert!(wrong.is_empty(), "refused wrongly:\n{}", wrong.join("\n"));
    assert_eq!(d.snapshot(), before, "refused commands changed nothing");
}
