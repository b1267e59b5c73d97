//! The licenses page in the browser: a shortage left by a device that `satellite agent`
//! registered, the transfer offered to fix it and its confirmation; adding licenses (a refused
//! quantity first) and removing some.

use super::webdriver::Browser;
use super::{
    ADV, COOKIE, PASSWORD, Plain, base, events_of, log_in, operator, screenshot, spki_hash, va_id,
};
use crate::util::{Daemon, agent_ok};

const SEC: &str = "regid.2019-03.com.example.SEC";

/// Registers a device with `token` through `satellite agent` and reports `usage`.
pub(super) fn device_using(d: &Daemon, token: &str, usage: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &d.ca_pem).unwrap();
    let dir = tmp.path().join("agent");
    let url = format!("https://{}", d.device_addr);
    let register = [
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
        "FOC7",
        "--hostname",
        "sw-apac",
    ];
    agent_ok(&dir, &register);
    agent_ok(&dir, &["report", "--usage", usage]);
}

fn purchased(d: &Daemon, va: &str, tag: &str) -> u64 {
    let list = d.cli_json(&["license", "list", "--va", va]);
    list["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["entitlement_tag"] == tag)
        .map_or(0, |l| l["purchased"].as_u64().unwrap())
}

#[test]
fn a_shortage_offers_the_transfer_that_fixes_it() {
    let d = Daemon::start();
    let acme = d.account("acme");
    acme.child("emea").license(ADV, 4);
    let apac = acme.child("apac");
    apac.license(ADV, 1);
    device_using(&d, &apac.token().secret, &format!("{ADV}=3"));
    operator(&d, "admin", &["--role", "system-admin"]);

    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    b.goto(&format!("{}/ui/licenses", base(&d)));
    let shortages = b.text("#shortages");
    assert!(
        shortages.contains("acme/Default/apac"),
        "the shortage: {shortages}"
    );
    assert!(
        shortages.contains("Transfer 2 from acme/Default/emea"),
        "the offer: {shortages}"
    );
    let apac_line = format!("#pools tr[data-line=\"acme/Default/apac {ADV}\"]");
    let figures =
        [".purchased", ".in-use", ".balance"].map(|c| b.text(&format!("{apac_line} {c}")));
    // As `license list` counts them: a device short of units is granted none.
    assert_eq!(figures, ["1", "0", "1"], "purchased, in use, balance");
    b.screenshot(&screenshot("licenses"));

    b.click("#shortages a.fix");
    b.find("#confirm-transfer");
    assert!(b.url().contains("/ui/licenses/transfer?"), "{}", b.url());
    assert!(
        b.source().contains("value=\"2\""),
        "the quantity is prefilled"
    );
    b.screenshot(&screenshot("transfer"));
    b.click("#confirm-transfer");
    b.find("#pools");
    assert!(b.url().ends_with("/ui/licenses"), "{}", b.url());
    assert!(b.text("#shortages").starts_with("No shortages"));
    assert_eq!(purchased(&d, "acme/Default/apac", ADV), 3);
    assert_eq!(purchased(&d, "acme/Default/emea", ADV), 2);
    let moved = events_of(&d, "license.transfer");
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["actor"], "user:admin");
}

#[test]
fn licenses_are_added_and_removed_and_a_bad_quantity_changes_nothing() {
    let d = Daemon::start();
    d.account("acme").child("emea");
    operator(&d, "admin", &["--role", "system-admin"]);
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    b.goto(&format!("{}/ui/licenses?va=acme/Default/emea", base(&d)));
    let before = d.event_count();
    b.type_into("#tag", SEC);
    b.type_into("#quantity", "five");
    b.click("#add");
    let error = b.text("#error");
    assert!(error.contains("must be a whole number"), "{error}");
    assert_eq!(d.event_count(), before, "nothing changed");
    assert!(
        b.source().contains(&format!("value=\"{SEC}\"")),
        "the form keeps what was sent"
    );

    b.type_into("#quantity", "5");
    b.click("#add");
    let emea = va_id(&d, "acme/Default/emea");
    // The pool's line exists only on the answer's page: reading it first waits for that page
    // (the URL read right after the click could still be the form's).
    let line = format!("#pools tr[data-line=\"acme/Default/emea {SEC}\"]");
    let figures = [".purchased", ".in-use", ".balance"].map(|c| b.text(&format!("{line} {c}")));
    assert_eq!(figures, ["5", "0", "5"]);
    let url = b.url();
    assert!(url.ends_with(&format!("?va={emea}")), "{url}");
    assert_eq!(purchased(&d, "acme/Default/emea", SEC), 5);

    let cookie = b.cookie(COOKIE).expect("a session")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = Plain::new(&d);
    let csrf = plain.csrf(&cookie);
    let list = d.cli_json(&["license", "list", "--va", "acme/Default/emea"]);
    let id = list["entries"][0]["id"].as_str().unwrap();
    let removed = plain.post(
        &format!("/ui/licenses/{id}/remove"),
        &cookie,
        &format!("csrf={csrf}&quantity=2&back={emea}"),
        None,
    );
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_eq!(purchased(&d, "acme/Default/emea", SEC), 3);
    let added = events_of(&d, "license.add");
    assert_eq!((added.len(), &added[0]["actor"]), (1, &"user:admin".into()));
    assert_eq!(events_of(&d, "license.remove").len(), 1);
}
