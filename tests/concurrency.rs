//! Races a busy site produces: the same device registering twice at once, a limited token
//! used by many devices at once, a report retried while the first copy is in flight, and a
//! Cisco controller re-sending a RUM report in parallel.

use reqwest::Method;
use serde_json::Value;

use satellite::agent::{AgentError, register_raw, registration_client};
use satellite::protocol::admin::CreateToken;
use satellite::protocol::device::RegisterRequest;

use crate::inproc::{Sat, raw, usage_request};

const ADV: &str = "regid.2019-03.com.example.ADV";
const RUM: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");

/// Sends the registrations at once; their statuses and error codes, in no particular order.
async fn register_all(s: &Sat, requests: Vec<RegisterRequest>) -> Vec<(u16, String)> {
    let mut tasks = tokio::task::JoinSet::new();
    for req in requests {
        let (url, ca) = (s.url.clone(), s.ca_pem.clone());
        tasks.spawn(async move {
            let http = registration_client(&ca).expect("client");
            match register_raw(&http, &url, &req).await {
                Ok(_) => (201, String::new()),
                Err(AgentError::Refused { status, code, .. }) => (status, code),
                Err(e) => panic!("{e}"),
            }
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        out.push(done.expect("task"));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_udi_registered_from_many_connections_at_once_is_one_device() {
    let s = Sat::start().await;
    s.account("acme").await;
    let (token, token_id) = s.token("acme/Default").await;
    let requests = (0..6)
        .map(|_| s.request(&token, "C9300-24T", "FOC1", false))
        .collect();
    let results = register_all(&s, requests).await;
    let mut want = vec![(201, String::new())];
    want.extend((0..5).map(|_| (409, "already_registered".to_string())));
    assert_eq!(results, want);
    assert_eq!(s.devices("").await.len(), 1);
    let tokens = s.tokens().await;
    let t = tokens.iter().find(|t| t.id == token_id).unwrap();
    assert_eq!(t.uses, 1, "only the registration that happened is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_token_is_never_used_more_than_allowed() {
    let s = Sat::start().await;
    s.account("acme").await;
    let (token, token_id) = s
        .token_with(CreateToken {
            va: "acme/Default".into(),
            description: String::new(),
            expires_in_days: None,
            max_uses: Some(3),
            allow_export_controlled: false,
        })
        .await;
    let requests = (0..9)
        .map(|i| s.request(&token, "C9300-24T", &format!("FOC{i}"), false))
        .collect();
    let results = register_all(&s, requests).await;
    let mut want = vec![(201, String::new()); 3];
    want.extend((0..6).map(|_| (403, "token_exhausted".to_string())));
    assert_eq!(results, want);
    assert_eq!(s.devices("").await.len(), 3);
    let tokens = s.tokens().await;
    let t = tokens.iter().find(|t| t.id == token_id).unwrap();
    assert_eq!(t.uses, 3);
}

/// A report and its retries in flight at once: one answer, one application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_retried_while_in_flight_is_applied_once() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 4).await;
    let (token, _) = s.token("acme/Default").await;
    let d = s.register(&token, "P", "S1").await.expect("register");
    let events = s.all_events().await.len();
    let report = usage_request(1, &[(ADV, 3)], s.now());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, report) = (d.client.clone(), report.clone());
        tasks.spawn(async move { client.usage(&report).await.expect("report") });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("task"));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    assert_eq!(answers[0].status, "authorized");
    assert_eq!(s.in_use("acme/Default", ADV).await, 3);
    assert_eq!(s.all_events().await.len(), events);
    let shown = s.device(&d.id).await;
    assert_eq!(shown.entitlements.len(), 1);
    assert_eq!(shown.entitlements[0].count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rum_report_posted_in_parallel_is_accepted_once() {
    let s = Sat::start().await;
    s.account("acme").await;
    let path = s.rum_path("acme").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (http, url, path) = (s.anonymous(), s.url.clone(), path.clone());
        tasks.spawn(async move { raw(&http, Method::POST, &url, &path, RUM.into()).await });
    }
    let (mut accepted, mut duplicates) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.expect("task");
        assert_eq!(status, 200, "{body}");
        let n = |k: &str| body[k].as_array().map_or(0, Vec::len);
        accepted += n("accepted");
        duplicates += n("duplicates");
    }
    assert_eq!((accepted, duplicates), (1, 5));
    let devices = s.devices("").await;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].source, "cisco-rum");
    let registered: Vec<Value> = s
        .events("device.register")
        .await
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(registered.len(), 1, "{registered:#?}");
}
