//! The device pages at scale and in a browser: a store of 100,000 devices made by `satellite
//! loadgen fill` pages and searches correctly (every device of a VA exactly once, the same set
//! as the admin API; prefix and exact searches; state filters), and a device registered by
//! `satellite agent` is found, shown, moved after a confirmation and followed in the events in
//! headless Chromium, while a va-user gets "not found" for it by URL.

use std::collections::BTreeSet;
use std::process::Command;

use super::pages_b::{device_id, register_agent};
use super::webdriver::Browser;
use super::{ADV, PASSWORD, Plain, base, log_in, operator, screenshot, spki_hash};
use crate::util::{BIN, Daemon};

/// The device ids a list page links to, in order, and its next page's query, if any.
fn page_ids(body: &str) -> (Vec<String>, Option<String>) {
    let ids = body
        .split("<a href=\"/ui/devices/")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect();
    let next = body
        .split("id=\"next\" rel=\"next\" href=\"/ui/devices?")
        .nth(1)
        .map(|rest| {
            rest[..rest.find('"').unwrap()]
                .replace("&#38;", "&")
                .replace("&amp;", "&")
        });
    (ids, next)
}

/// Every device id of the list for `query`, following its "next" links to the end.
fn all_pages(plain: &Plain, cookie: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(query.to_string());
    let mut asked = BTreeSet::new();
    while let Some(q) = next {
        assert!(asked.insert(q.clone()), "a page links to itself: {q}");
        let page = plain.get(&format!("/ui/devices?{q}"), cookie);
        assert_eq!(page.status, 200, "{q}: {}", page.body);
        let (ids, more) = page_ids(&page.body);
        out.extend(ids);
        next = more;
    }
    out
}

/// The ids `satellite device list` gives for these filters.
fn api_ids(d: &Daemon, filters: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["device", "list", "--limit", "100000"];
    args.extend_from_slice(filters);
    d.cli_json(&args)
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_device_list_pages_and_searches_100000_devices() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fill = Command::new(BIN)
        .args(["loadgen", "fill", "--data-dir", data.to_str().unwrap()])
        .args(["--devices", "100000", "--vas", "100", "--tags", "10"])
        .output()
        .expect("run loadgen fill");
    assert!(
        fill.status.success(),
        "{}",
        String::from_utf8_lossy(&fill.stderr)
    );
    let d = Daemon::start_custom(&data, &[]);
    operator(&d, "admin", &["--role", "system-admin"]);
    let plain = Plain::new(&d);
    let cookie = plain.log_in("admin", PASSWORD);

    // A leaf VA, page by page: each device once, the same set as the API's.
    let leaf = "scale/Default/va-0001/va-0020";
    let va = format!("va={}", leaf.replace('/', "%2F"));
    let first = plain.get(&format!("/ui/devices?{va}"), &cookie);
    let paged = all_pages(&plain, &cookie, &va);
    let unique: BTreeSet<String> = paged.iter().cloned().collect();
    assert_eq!(unique.len(), paged.len(), "no device twice");
    assert!(paged.len() > 500, "{} devices", paged.len());
    assert!(
        first
            .body
            .contains(&format!("{} device(s) in this scope", paged.len())),
        "the caption counts the same devices"
    );
    assert_eq!(unique, api_ids(&d, &["--va", leaf]));

    // Each state of that VA: the pages hold exactly the API's devices of that state.
    let mut states = BTreeSet::new();
    for status in [
        "registered",
        "authorized",
        "out_of_compliance",
        "authorization_expired",
    ] {
        let ids = all_pages(&plain, &cookie, &format!("{va}&status={status}"));
        let set: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            set,
            api_ids(&d, &["--va", leaf, "--status", status]),
            "{status}"
        );
        states.extend(set);
    }
    assert_eq!(states, unique, "every device is in one state");

    // The whole satellite, three pages deep: no page repeats a device.
    let (one, next) = page_ids(&plain.get("/ui/devices", &cookie).body);
    let (two, next) = page_ids(
        &plain
            .get(&format!("/ui/devices?{}", next.unwrap()), &cookie)
            .body,
    );
    let (three, _) = page_ids(
        &plain
            .get(&format!("/ui/devices?{}", next.unwrap()), &cookie)
            .body,
    );
    let seen: BTreeSet<_> = one.iter().chain(&two).chain(&three).collect();
    assert_eq!((one.len(), seen.len()), (50, 150));

    // Searches: serial prefix (any case), exact serial, exact UDI, host name prefix and exact.
    let count = |q: &str| all_pages(&plain, &cookie, q).len();
    assert_eq!(count("q=sn00004242"), 10, "SN000042420 to SN000042429");
    assert_eq!(count("q=SN000042420&exact=on"), 1);
    assert_eq!(count("q=SCALE-0%3ASN000042420&exact=on"), 1);
    assert_eq!(
        count("q=SCALE-1%3ASN000042420&exact=on"),
        0,
        "its PID is SCALE-0"
    );
    assert_eq!(
        count("q=scale-0%3Asn0000424"),
        5,
        "PID SCALE-0 of SN0000424xx: every 20th"
    );
    assert_eq!(
        count("q=dev-4242&by=hostname"),
        11,
        "dev-4242 and dev-42420 to 42429"
    );
    assert_eq!(count("q=DEV-4242&by=hostname&exact=on"), 1);
    assert_eq!(count("q=nothing&by=hostname"), 0);
    let search = all_pages(&plain, &cookie, "q=SN000012&by=udi");
    assert_eq!(search.len(), 1000, "SN000012000 to SN000012999, in pages");

    // The same list in a real browser, by clicks: the next page, then a search.
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    b.goto(&format!("{}/ui/devices", base(&d)));
    assert_eq!(
        page_ids(&b.source()).0,
        one,
        "page 1 as the server wrote it"
    );
    b.click("#next");
    // Waits for page 2: its first device's link.
    b.find(&format!("a[href=\"/ui/devices/{}\"]", two[0]));
    assert_eq!(page_ids(&b.source()).0, two);
    b.type_into("#q", "sn00004242");
    b.click("#find");
    // The answer's search field carries the query as written (typing alone does not).
    b.find("input#q[value=\"sn00004242\"]");
    let (found, next) = page_ids(&b.source());
    assert_eq!(found.len(), 10, "SN000042420 to SN000042429: {found:?}");
    assert!(next.is_none(), "one page");
    b.screenshot(&screenshot("devices-100k"));
}

#[test]
fn a_browser_finds_the_agents_device_moves_it_and_follows_its_events() {
    let d = Daemon::start();
    let acme = d.account("acme");
    let emea = acme.child("emea");
    emea.license(ADV, 5);
    acme.child("apac").license(ADV, 5);
    let tmp = tempfile::tempdir().unwrap();
    register_agent(&d, tmp.path(), &emea.token().secret, "FOC-B1", "sw-b1", 2);
    let id = device_id(&d, "FOC-B1");
    operator(&d, "admin", &["--role", "system-admin"]);
    operator(
        &d,
        "paul",
        &["--role", "va-user", "--va", "acme/Default/emea"],
    );

    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    b.goto(&format!("{}/ui/devices", base(&d)));
    let list = b.text("#device-list");
    assert!(list.contains("C9300-24T:FOC-B1"), "{list}");
    assert!(list.contains("Authorized"), "{list}");
    b.type_into("#q", "foc-b");
    b.click("#find");
    // The attribute, unlike the typed value, is only on the page the search answered.
    b.find("#q[value=\"foc-b\"]");
    assert!(b.url().contains("q=foc-b"), "{}", b.url());
    assert!(b.text("#device-list").contains("sw-b1"));
    b.screenshot(&screenshot("devices"));

    b.click("#device-list a");
    assert_eq!(b.text("#udi"), "C9300-24T:FOC-B1");
    let usage = b.text("#usage");
    assert!(usage.contains(&format!("{ADV} 2 authorized")), "{usage}");
    b.screenshot(&screenshot("device"));

    // Move to apac: the confirmation names both VAs; nothing moves before it.
    b.click("#move-va option:last-child");
    b.click("#move");
    let question = b.text("#question");
    assert!(
        question.contains("from acme/Default/emea to acme/Default/apac"),
        "{question}"
    );
    assert_eq!(
        d.cli_json(&["device", "show", &id])["va_path"],
        "acme/Default/emea"
    );
    b.screenshot(&screenshot("device-move"));
    b.click("#confirm");
    assert_eq!(b.text("#device-va"), "acme/Default/apac");
    assert!(b.text("#device-events").contains("device.move"));

    b.goto(&format!("{}/ui/events", base(&d)));
    b.type_into("#action", "device.move");
    b.click("#filter");
    b.find("#action[value=\"device.move\"]");
    let events = b.text("#event-list");
    assert!(
        events.contains("device.move") && !events.contains("device.register"),
        "{events}"
    );
    b.screenshot(&screenshot("events"));
    b.goto(&format!("{}/ui/compliance?all=on", base(&d)));
    assert!(b.text("#compliance").contains("acme/Default/apac"));
    b.screenshot(&screenshot("compliance"));
    b.goto(&format!("{}/ui/sync", base(&d)));
    assert_eq!(b.text("#role"), "disconnected");
    b.screenshot(&screenshot("sync"));

    // paul's scope is emea: the device, now in apac, is not found by its URL.
    b.click("#logout");
    log_in(&b, &d, "paul", PASSWORD);
    assert_eq!(b.text("#who"), "paul");
    b.goto(&format!("{}/ui/devices/{id}", base(&d)));
    assert_eq!(b.text("h1"), "Not Found");
    assert!(!b.source().contains("FOC-B1"));
}
