//! Bad operator input gets a clear error (exit code 1, a message naming the cause) and changes
//! nothing (SPEC §9 "Bad input"). CLI usage errors exit with code 2.

use crate::util::{Daemon, assert_names};

#[test]
fn refused_commands_explain_why_and_change_nothing() {
    let d = Daemon::start();
    d.cli_ok(&["account", "create", "acme", "--domain", "acme.com"]);
    d.cli_ok(&["account", "create", "globex", "--domain", "globex.com"]);
    // A chain of VAs down to level 10: Default is level 1, l2 is level 2, ... l10 is level 10.
    let mut parent = "acme/Default".to_string();
    for level in 2..=10 {
        let name = format!("l{level}");
        d.cli_ok(&["va", "create", &name, "--parent", &parent]);
        parent = format!("{parent}/{name}");
    }
    let deepest = parent;
    d.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        "regid.ADV",
        "--quantity",
        "10",
    ]);
    let token = d.cli_json(&["token", "create", "--va", "acme/Default"]);
    let token_id = token["id"].as_str().unwrap().to_string();
    d.cli_ok(&["token", "revoke", &token_id]);

    let before = d.snapshot();
    let refuse = |args: &[&str], needles: &[&str]| {
        let (code, stderr) = d.cli_err(args);
        assert_eq!(code, 1, "`{}`: {stderr}", args.join(" "));
        assert_names(&stderr, needles);
    };

    // Unknown VA, by path and by id.
    refuse(
        &[
            "license",
            "add",
            "--va",
            "acme/Default/nope",
            "--tag",
            "t",
            "--quantity",
            "1",
        ],
        &["acme/Default/nope", "not found"],
    );
    refuse(
        &[
            "va",
            "create",
            "x",
            "--parent",
            "4a0c8e57-3f1c-4c43-9d6b-0c1ab2a3f0aa",
        ],
        &["4a0c8e57-3f1c-4c43-9d6b-0c1ab2a3f0aa", "not found"],
    );
    refuse(
        &["va", "show", "acme/Default/nope"],
        &["acme/Default/nope", "not found"],
    );
    // An 11th level.
    refuse(
        &["va", "create", "l11", "--parent", &deepest],
        &["10", "level"],
    );
    // A VA moved under its own descendant.
    refuse(
        &[
            "va",
            "move",
            "acme/Default/l2",
            "--to",
            "acme/Default/l2/l3/l4",
        ],
        &["subtree"],
    );
    // A VA moved to another account, a duplicate sibling, a name with `/`.
    refuse(
        &["va", "move", "acme/Default/l2", "--to", "globex/Default"],
        &["account"],
    );
    refuse(
        &["va", "create", "l2", "--parent", "acme/Default"],
        &["l2", "already"],
    );
    refuse(
        &["va", "create", "a/b", "--parent", "acme/Default"],
        &["a/b", "/"],
    );
    // Quantities that are not positive.
    for q in ["0", "-3"] {
        refuse(
            &[
                "license",
                "add",
                "--va",
                "acme/Default",
                "--tag",
                "t",
                "--quantity",
                q,
            ],
            &["quantity", q],
        );
    }
    // Term licenses that end before or when they start, or miss an end.
    refuse(
        &[
            "license",
            "add",
            "--va",
            "acme/Default",
            "--tag",
            "t",
            "--quantity",
            "1",
            "--start",
            "2030-01-01",
            "--end",
            "2030-01-01",
        ],
        &["end"],
    );
    refuse(
        &[
            "license",
            "add",
            "--va",
            "acme/Default",
            "--tag",
            "t",
            "--quantity",
            "1",
            "--start",
            "2030-01-01",
            "--end",
            "2029-01-01",
        ],
        &["end"],
    );
    refuse(
        &[
            "license",
            "add",
            "--va",
            "acme/Default",
            "--tag",
            "t",
            "--quantity",
            "1",
            "--start",
            "2030-01-01",
        ],
        &["end"],
    );
    // Transfers of more units than exist, of nothing, and across accounts.
    refuse(
        &[
            "license",
            "transfer",
            "--from",
            "acme/Default",
            "--to",
            "acme/Default/l2",
            "--tag",
            "regid.ADV",
            "--quantity",
            "11",
        ],
        &["11", "only 10"],
    );
    refuse(
        &[
            "license",
            "transfer",
            "--from",
            "acme/Default",
            "--to",
            "acme/Default/l2",
            "--tag",
            "regid.ADV",
            "--quantity",
            "-3",
        ],
        &["quantity"],
    );
    refuse(
        &[
            "license",
            "transfer",
            "--from",
            "acme/Default",
            "--to",
            "globex/Default",
            "--tag",
            "regid.ADV",
            "--quantity",
            "1",
        ],
        &["account"],
    );
    refuse(
        &[
            "license",
            "transfer",
            "--from",
            "acme/Default",
            "--to",
            "acme/Default",
            "--tag",
            "regid.ADV",
            "--quantity",
            "1",
        ],
        &["same"],
    );
    // Duplicate account name, invalid domain.
    refuse(
        &["account", "create", "acme", "--domain", "other.com"],
        &["acme", "already exists"],
    );
    refuse(
        &["account", "create", "initech", "--domain", "Example.COM"],
        &["Example.COM", "domain"],
    );
    // Same domain twice; tokens with an out-of-range expiry or no uses.
    refuse(
        &["account", "create", "initech", "--domain", "acme.com"],
        &["acme.com", "acme"],
    );
    refuse(
        &[
            "token",
            "create",
            "--va",
            "acme/Default",
            "--expires-in-days",
            "366",
        ],
        &["366", "365"],
    );
    refuse(
        &[
            "token",
            "create",
            "--va",
            "acme/Default",
            "--expires-in-days",
            "0",
        ],
        &["0 days"],
    );
    refuse(
        &["token", "create", "--va", "acme/Default", "--max-uses", "0"],
        &["max uses"],
    );
    // Deleting a VA that is not empty, or the Default VA.
    refuse(
        &["va", "delete", "acme/Default/l2", "--yes"],
        &["not empty", "child"],
    );
    refuse(&["va", "delete", "acme/Default", "--yes"], &["Default"]);
    // Removing more units than an entry holds.
    let entry = before["licenses"]["entries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    refuse(
        &["license", "remove", &entry, "--quantity", "11", "--yes"],
        &["11", "10"],
    );
    // Revoking a token twice.
    refuse(
        &["token", "revoke", &token_id],
        &[&token_id, "already revoked"],
    );

    let after = d.snapshot();
    assert_eq!(after, before, "refused commands changed nothing");

    // Usage errors are clap's: exit code 2, naming the missing or bad argument.
    let (code, stderr) = d.cli_err(&["account", "create", "initech"]);
    assert_eq!(code, 2, "{stderr}");
    assert_names(&stderr, &["--domain"]);
    let (code, stderr) = d.cli_err(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        "t",
        "--quantity",
        "many",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_names(&stderr, &["--quantity", "many"]);
    let (code, stderr) = d.cli_err(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        "t",
        "--quantity",
        "1",
        "--start",
        "someday",
        "--end",
        "2030-01-01",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_names(&stderr, &["someday"]);
    assert_eq!(d.event_count(), before["events"].as_array().unwrap().len());
}
