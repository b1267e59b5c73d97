//! The Cisco page over plain HTTPS with a session cookie and in the browser: the real RUM
//! report pushed, exported and acknowledged as in `tests/cisco_acks.rs`; the page shows it
//! waiting, then acknowledged; the ACK download is byte for byte what `satellite cisco ack
//! --device` writes, changes nothing and is not found outside the user's scope.

use std::path::Path;

use reqwest::header::HeaderMap;

use super::webdriver::Browser;
use super::{ADV, PASSWORD, Plain, base, log_in, operator, screenshot, spki_hash};
use crate::cisco_acks::{ack_archive, ack_file, with_id};
use crate::util::Daemon;

const UDI: &str = "C9800-CL-K9:9NTUEA8FIIH";
const ACK_LINK: &str = "/ui/cisco/ack?device=C9800-CL-K9%3A9NTUEA8FIIH";

/// A GET with the session cookie: status, headers and the body's bytes.
fn fetch(plain: &Plain, path: &str, cookie: &str) -> (u16, HeaderMap, Vec<u8>) {
    let req = plain
        .client
        .get(format!("{}{path}", plain.base))
        .header("cookie", format!("{}={cookie}", super::COOKIE));
    plain.runtime.block_on(async {
        let res = req.send().await.expect("an answer");
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        (status, headers, res.bytes().await.unwrap().to_vec())
    })
}

/// Pushes the real RUM report (with `id`) to acme's CSLU-style endpoint.
fn push(d: &Daemon, id: u64) {
    let r = d.device_api().post_raw(&d.rum_path("acme"), with_id(id));
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Exports what waits and imports Cisco's ACK for the first device file: the loop of
/// docs/cisco.md through the CLI.
fn acknowledge(d: &Daemon, dir: &Path) -> Vec<u8> {
    let usage = dir.join("usage.tar.gz");
    d.cli_ok(&["cisco", "export", "--out", usage.to_str().unwrap()]);
    let ack = ack_file("console");
    let archive = dir.join("ack.tar.gz");
    std::fs::write(&archive, ack_archive(&[(1, &ack)])).unwrap();
    d.cli_ok(&["cisco", "import-ack", archive.to_str().unwrap()]);
    ack
}

/// The `<tr>` of the page's table naming `udi`.
fn row<'a>(page: &'a str, udi: &str) -> &'a str {
    let at = page
        .find(&format!("<th scope=\"row\">{udi}</th>"))
        .expect(udi);
    let end = page[at..].find("</tr>").unwrap();
    &page[at..at + end]
}

#[test]
fn the_cisco_page_shows_reports_waiting_then_acknowledged_and_gives_the_ack_file() {
    let d = Daemon::start();
    d.account("acme");
    push(&d, 1671840750);
    operator(&d, "admin", &["--role", "system-admin"]);
    let plain = Plain::new(&d);
    let cookie = plain.log_in("admin", PASSWORD);

    let (status, headers, body) = fetch(&plain, "/ui/cisco", &cookie);
    let page = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(headers.contains_key("server-timing"), "{headers:?}");
    let waiting = row(&page, UDI);
    assert!(
        waiting.contains("<td>acme/Default</td><td>local</td>"),
        "{waiting}"
    );
    assert!(
        waiting.contains("<td class=\"num\">1</td>\n      <td class=\"num\">1</td>"),
        "one report held, one waiting: {waiting}"
    );
    assert!(
        waiting.contains("<td>unknown</td>"),
        "the deadline: {waiting}"
    );
    assert!(!waiting.contains("Download"), "no ACK yet: {waiting}");
    assert!(!waiting.contains("overdue"), "{waiting}");
    assert_eq!(fetch(&plain, ACK_LINK, &cookie).0, 404, "no ACK yet");

    let dir = tempfile::tempdir().unwrap();
    let ack = acknowledge(&d, dir.path());
    let page = plain.get("/ui/cisco", &cookie).body;
    let done = row(&page, UDI);
    assert!(
        done.contains("<td class=\"num\">1</td>\n      <td class=\"num\">0</td>"),
        "none waiting: {done}"
    );
    assert!(
        done.contains(&format!("<a href=\"{ACK_LINK}\" download>")),
        "{done}"
    );

    let written = dir.path().join("ack.xml");
    d.cli_ok(&[
        "cisco",
        "ack",
        "--device",
        UDI,
        "--out",
        written.to_str().unwrap(),
    ]);
    let events = d.event_count();
    let (status, headers, bytes) = fetch(&plain, ACK_LINK, &cookie);
    assert_eq!(status, 200);
    assert_eq!(
        bytes,
        std::fs::read(&written).unwrap(),
        "what `cisco ack` writes"
    );
    assert_eq!(bytes, ack, "Cisco's file byte for byte");
    for (name, value) in [
        ("content-type", "application/xml"),
        (
            "content-disposition",
            "attachment; filename=\"ACK_C9800-CL-K9_9NTUEA8FIIH.xml\"",
        ),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(headers[name], value, "{name}");
    }
    assert_eq!(
        d.event_count(),
        events,
        "a download changes nothing, as the API"
    );
    let by_serial = fetch(
        &plain,
        "/ui/cisco/ack?device=9NTUEA8FIIH&va=acme/Default",
        &cookie,
    );
    assert_eq!((by_serial.0, by_serial.2), (200, ack));
    for missing in ["/ui/cisco/ack?device=C9800-CL-K9:OTHER", "/ui/cisco/ack"] {
        let (status, _, body) = fetch(&plain, missing, &cookie);
        assert_eq!(status, 404, "{missing}: {}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn a_va_user_of_another_va_neither_sees_the_device_nor_gets_its_ack() {
    let d = Daemon::start();
    d.account("acme").child("lab").license(ADV, 1);
    push(&d, 1671840750);
    let dir = tempfile::tempdir().unwrap();
    acknowledge(&d, dir.path());
    operator(
        &d,
        "lab",
        &["--role", "va-admin", "--va", "acme/Default/lab"],
    );
    let plain = Plain::new(&d);
    let cookie = plain.log_in("lab", PASSWORD);

    let page = plain.get("/ui/cisco", &cookie);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("9NTUEA8FIIH"), "{}", page.body);
    assert!(
        page.body.contains("No RUM report is held."),
        "{}",
        page.body
    );
    for path in [
        ACK_LINK.to_string(),
        format!("{ACK_LINK}&va=acme/Default"),
        format!("{ACK_LINK}&va=acme/Default/lab"),
        "/ui/cisco?va=acme/Default".to_string(),
    ] {
        let (status, _, body) = fetch(&plain, &path, &cookie);
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("console</data>"), "{path}: {body}");
    }
}

#[test]
fn a_browser_shows_the_cisco_page() {
    let d = Daemon::start();
    d.account("acme");
    push(&d, 1671840750);
    let dir = tempfile::tempdir().unwrap();
    acknowledge(&d, dir.path());
    // A later report waits for the next export: the page shows both at once.
    push(&d, 1671840751);
    operator(&d, "admin", &["--role", "system-admin"]);

    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    b.goto(&format!("{}/ui/cisco", base(&d)));
    let table = b.text("#reports");
    assert!(table.contains(UDI), "{table}");
    assert!(table.contains("Download"), "{table}");
    b.screenshot(&screenshot("cisco"));
}
