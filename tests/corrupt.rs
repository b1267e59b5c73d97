//! A record that cannot be decoded is skipped and reported; the rest keeps serving (SPEC §9).

use satellite::store::Store;
use satellite::store::tables::TABLES;

use crate::util::Daemon;

#[test]
fn an_unreadable_account_is_reported_and_the_rest_keeps_working() {
    let mut d = Daemon::start();
    let acme = d.cli_json(&["account", "create", "acme", "--domain", "acme.com"]);
    d.account("globex");
    d.stop();

    let key = uuid::Uuid::parse_str(acme["id"].as_str().unwrap()).expect("account ids are UUIDs");
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = Store::open(&d.data_dir.join("store"), TABLES).expect("open the stopped store");
        let original = store.get_raw("accounts", key.as_bytes()).expect("read raw");
        assert!(original.is_some(), "accounts are keyed by their id");
        store
            .put_raw("accounts", key.as_bytes(), b"\x01garbage")
            .expect("plant garbage");
        runtime.block_on(store.flush()).expect("flush");
    }

    d.start_again();
    let status = d.cli_json(&["status"]);
    let unreadable = status["unreadable_records"]
        .as_array()
        .expect("unreadable_records");
    assert_eq!(unreadable.len(), 1, "{status}");
    assert!(
        unreadable[0].as_str().unwrap().contains("accounts"),
        "names the table: {status}"
    );
    assert_eq!(status["accounts"], 1);
    let human = d.cli_ok(&["status"]);
    assert!(human.contains("1 record(s)"), "{human}");

    let accounts = d.cli_json(&["account", "list"]);
    let names: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["globex"]);
    d.cli_ok(&["va", "create", "emea", "--parent", "globex/Default"]);
    let created = d.cli_json(&["account", "create", "initech", "--domain", "initech.com"]);
    assert_eq!(created["status"], "active");
    assert_eq!(
        d.cli_json(&["account", "list"]).as_array().map(Vec::len),
        Some(2)
    );
    // Event numbering continued: 2 before the corruption, then the VA and the account.
    assert_eq!(d.events()[0]["seq"], 4);
    d.stop();
}
