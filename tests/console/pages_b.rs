//! The device, compliance, events, sync and backup pages over plain HTTPS with a session
//! cookie: the same scope rules as the admin API (a device or VA outside a user's scope is
//! not found), the same audit for a move, a removal and a backup, and refusals that change
//! nothing.

use std::path::Path;

use serde_json::Value;

use super::{ADV, PASSWORD, Plain, events_of, operator};
use crate::util::{Daemon, agent_ok};

/// Registers a device with `token` through `satellite agent` and reports `units` of ADV.
pub fn register_agent(d: &Daemon, dir: &Path, token: &str, serial: &str, host: &str, units: u32) {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &d.ca_pem).unwrap();
    let state = dir.join(serial);
    let url = format!("https://{}", d.device_addr);
    agent_ok(
        &state,
        &[
            "register",
            "--url",
            &url,
            "--ca",
            ca.to_str().unwrap(),
            "--token",
            token,
            "--pid",
            "C9300-24T",
            "--serial",
            serial,
            "--hostname",
            host,
        ],
    );
    agent_ok(&state, &["report", "--usage", &format!("{ADV}={units}")]);
}

pub fn device_id(d: &Daemon, serial: &str) -> String {
    let shown = d.cli_json(&["device", "show", &format!("C9300-24T:{serial}")]);
    shown["id"].as_str().expect("a device id").to_string()
}

/// Two devices in acme: `FOC-EMEA` in acme/Default/emea and `FOC-APAC` in acme/Default/apac.
fn two_devices(d: &Daemon, tmp: &Path) -> (String, String) {
    let acme = d.account("acme");
    let emea = acme.child("emea");
    emea.license(ADV, 5);
    let apac = acme.child("apac");
    apac.license(ADV, 1);
    register_agent(d, tmp, &emea.token().secret, "FOC-EMEA", "sw-emea", 2);
    register_agent(d, tmp, &apac.token().secret, "FOC-APAC", "sw-apac", 3);
    (device_id(d, "FOC-EMEA"), device_id(d, "FOC-APAC"))
}

#[test]
fn a_va_user_finds_only_its_devices_and_outside_ones_are_not_found() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let (emea, apac) = two_devices(&d, tmp.path());
    operator(
        &d,
        "paul",
        &["--role", "va-admin", "--va", "acme/Default/emea"],
    );
    let plain = Plain::new(&d);
    let cookie = plain.log_in("paul", PASSWORD);

    let list = plain.get("/ui/devices", &cookie);
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("FOC-EMEA") && !list.body.contains("FOC-APAC"));
    assert!(
        list.body.contains("1 device(s) in this scope"),
        "{}",
        list.body
    );
    let search = plain.get("/ui/devices?q=foc&by=udi", &cookie);
    assert!(search.body.contains("FOC-EMEA") && !search.body.contains("FOC-APAC"));
    let by_host = plain.get("/ui/devices?q=SW-&by=hostname", &cookie);
    assert!(by_host.body.contains("sw-emea") && !by_host.body.contains("sw-apac"));

    let mine = plain.get(&format!("/ui/devices/{emea}"), &cookie);
    assert_eq!(mine.status, 200, "{}", mine.body);
    let theirs = plain.get(&format!("/ui/devices/{apac}"), &cookie);
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let by_udi = plain.get("/ui/devices/C9300-24T:FOC-APAC", &cookie);
    assert_eq!(by_udi.status, 404);
    let other_va = plain.get("/ui/devices?va=acme%2FDefault%2Fapac", &cookie);
    assert_eq!(other_va.status, 404, "{}", other_va.body);
    let confirm = plain.get(&format!("/ui/devices/{apac}/remove"), &cookie);
    assert_eq!(confirm.status, 404);

    let csrf = plain.csrf(&cookie);
    let before = d.event_count();
    let remove = plain.post(
        &format!("/ui/devices/{apac}/remove"),
        &cookie,
        &format!("csrf={csrf}"),
        None,
    );
    assert_eq!(remove.status, 404, "{}", remove.body);
    let out_of_scope_move = plain.post(
        &format!("/ui/devices/{emea}/move"),
        &cookie,
        &format!("csrf={csrf}&va=acme%2FDefault%2Fapac"),
        None,
    );
    assert_eq!(out_of_scope_move.status, 404, "{}", out_of_scope_move.body);
    assert_eq!(d.event_count(), before, "nothing changed");
    assert_eq!(
        plain.get("/ui/sync", &cookie).status,
        403,
        "system administrators only"
    );
    assert_eq!(plain.get("/ui/backup", &cookie).status, 403);

    let bad = plain.get("/ui/devices?status=broken", &cookie);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Unknown state `broken`"), "{}", bad.body);
    let bad_link = plain.get("/ui/devices?after=nonsense", &cookie);
    assert_eq!(bad_link.status, 400);
    assert!(bad_link.body.contains("first page"), "{}", bad_link.body);
}

#[test]
fn move_and_remove_need_the_csrf_token_and_are_audited_like_the_cli() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let (emea, apac) = two_devices(&d, tmp.path());
    operator(&d, "admin", &["--role", "system-admin"]);
    let plain = Plain::new(&d);
    let cookie = plain.log_in("admin", PASSWORD);
    let csrf = plain.csrf(&cookie);

    let confirm = plain.get(
        &format!("/ui/devices/{apac}/move?va=acme%2FDefault%2Femea"),
        &cookie,
    );
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains(
            "from <strong>acme/Default/apac</strong> to <strong>acme/Default/emea</strong>"
        ),
        "{}",
        confirm.body
    );
    let before = d.event_count();
    let path = format!("/ui/devices/{apac}/move");
    let without = plain.post(&path, &cookie, "va=acme%2FDefault%2Femea", None);
    assert_eq!(without.status, 403);
    assert_eq!(d.event_count(), before, "nothing changed");

    let moved = plain.post(
        &path,
        &cookie,
        &format!("csrf={csrf}&va=acme%2FDefault%2Femea"),
        None,
    );
    assert_eq!(
        (moved.status, moved.location.as_str()),
        (303, &*format!("/ui/devices/{apac}"))
    );
    assert_eq!(
        d.cli_json(&["device", "show", &apac])["va_path"],
        "acme/Default/emea"
    );
    let moves = events_of(&d, "device.move");
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0]["actor"], "user:admin");
    assert_eq!(d.event_count(), before + 1, "exactly one event");

    // A refusal of the domain shows its message and changes nothing.
    let again = plain.post(
        &path,
        &cookie,
        &format!("csrf={csrf}&va=acme%2FDefault%2Femea"),
        None,
    );
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("already in that VA"), "{}", again.body);

    let removed = plain.post(
        &format!("/ui/devices/{emea}/remove"),
        &cookie,
        &format!("csrf={csrf}"),
        None,
    );
    assert_eq!(
        (removed.status, removed.location.as_str()),
        (303, "/ui/devices")
    );
    assert_eq!(events_of(&d, "device.remove").len(), 1);
    assert_eq!(
        plain.get(&format!("/ui/devices/{emea}"), &cookie).status,
        404
    );
    let page = plain.get(&format!("/ui/devices/{apac}"), &cookie);
    assert!(
        page.body.contains("device.move"),
        "its events: {}",
        page.body
    );
}

/// The text of the table cell after `<td>` number `n` (0-based) of the row that holds `key`.
fn cells(body: &str, key: &str) -> Vec<String> {
    let row = body
        .split("<tr>")
        .find(|r| r.contains(key))
        .unwrap_or_else(|| panic!("no row with {key}: {body}"));
    row.split("<td")
        .skip(1)
        .map(|c| {
            let text = &c[c.find('>').unwrap() + 1..];
            text[..text.find("</td>").unwrap()].to_string()
        })
        .collect()
}

#[test]
fn compliance_events_sync_and_backup_show_what_the_cli_shows() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let (_, apac) = two_devices(&d, tmp.path());
    operator(&d, "admin", &["--role", "system-admin"]);
    let plain = Plain::new(&d);
    let cookie = plain.log_in("admin", PASSWORD);

    let cli: Value = d.cli_json(&["compliance", "--va", "acme/Default/apac", "--all"]);
    let line = &cli[0];
    let page = plain.get("/ui/compliance?va=acme%2FDefault%2Fapac&all=on", &cookie);
    assert_eq!(page.status, 200, "{}", page.body);
    let row = cells(&page.body, ADV);
    let want: Vec<String> = [
        "va_path",
        "entitlement_tag",
        "purchased",
        "requested",
        "granted",
        "shortage",
        "devices_short",
    ]
    .iter()
    .map(|k| line[k].to_string().trim_matches('"').to_string())
    .collect();
    assert_eq!(row[..7], want[..], "{}", page.body);
    assert_eq!(row[5], "3", "the one device asks 3 of 1: none granted");
    assert!(row[7].contains("acme/Default/emea (3)"), "spare: {row:?}");

    let by_action = plain.get("/ui/events?action=va", &cookie);
    assert_eq!(by_action.status, 200);
    assert!(by_action.body.contains("va.create") && !by_action.body.contains("device.register"));
    let by_device = plain.get(&format!("/ui/events?device={apac}"), &cookie);
    assert!(
        by_device.body.contains("device.register"),
        "{}",
        by_device.body
    );
    assert!(!by_device.body.contains("FOC-EMEA"), "{}", by_device.body);
    let in_va = plain.get("/ui/events?va=acme%2FDefault%2Femea&action=device", &cookie);
    assert!(in_va.body.contains("FOC-EMEA") && !in_va.body.contains("FOC-APAC"));
    let future = plain.get("/ui/events?since=2999-01-01T00:00", &cookie);
    assert!(future.body.contains("No events match."), "{}", future.body);
    let bad = plain.get("/ui/events?since=yesterday", &cookie);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("`since` is not a time"), "{}", bad.body);

    let sync = plain.get("/ui/sync", &cookie);
    assert_eq!(sync.status, 200, "{}", sync.body);
    let cli_sync = d.cli_json(&["sync", "status"]);
    assert!(sync.body.contains(&format!(
        "<dd id=\"role\">{}</dd>",
        cli_sync["role"].as_str().unwrap()
    )));
    assert!(sync.body.contains(&format!(
        "<dd id=\"pending\">{}</dd>",
        cli_sync["pending_changes"]
    )));

    // The backup: refused without the form's token, then the file `backup verify` accepts.
    let before = d.event_count();
    assert_eq!(plain.post("/ui/backup", &cookie, "", None).status, 403);
    assert_eq!(d.event_count(), before);
    let csrf = plain.csrf(&cookie);
    let file = tmp.path().join("console.backup");
    plain.runtime.block_on(async {
        let res = plain
            .client
            .post(format!("{}/ui/backup", plain.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("{}={cookie}", super::COOKIE))
            .body(format!("csrf={csrf}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let disposition = res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            disposition.starts_with("attachment; filename=\"satellite-"),
            "{disposition}"
        );
        std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    });
    d.cli_ok(&["backup", "verify", file.to_str().unwrap()]);
    let taken = events_of(&d, "backup.create");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["actor"], "user:admin");
}
