//! Compliance as devices see it (SPEC §4): per VA and tag, in registration order, all or
//! nothing per device, a strict prefix; term licenses only between their dates; repeated and
//! stale reports; forced re-registration.

use time::Duration;

use satellite::protocol::admin::AddLicense;

use crate::inproc::{Dev, Sat, refused, tag_status, usage_request};

const ADV: &str = "regid.2019-03.com.example.ADV";
const ESS: &str = "regid.2019-03.com.example.ESS";

/// Each device's status for `tag`, asked with `GET /v1/authorization` after the fact.
async fn statuses(devs: &[Dev], tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in devs {
        let a = d.authorization().await.expect("authorization");
        assert_eq!(a.instance_id, d.id);
        out.push(tag_status(&a, tag));
    }
    out
}

fn expected(k: usize, n: usize) -> Vec<String> {
    (0..k)
        .map(|i| {
            if i < n {
                "authorized"
            } else {
                "out_of_compliance"
            }
            .to_string()
        })
        .collect()
}

/// K devices register in a known order and report at once; exactly the first N are
/// authorized, whatever the interleaving of their reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_registered_devices_get_the_licenses_whatever_the_report_order() {
    const K: usize = 40;
    const N: usize = 10;
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", ADV, N as i64).await;
    let (token, _) = s.token("acme/Default").await;
    let mut devs = Vec::new();
    for i in 0..K {
        devs.push(
            s.register(&token, "C9300-24T", &format!("FOC{i:04}"))
                .await
                .expect("register"),
        );
    }

    // Round 1: everyone at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, d) in devs.iter().enumerate() {
        let mut d = d.clone();
        tasks.spawn(async move {
            let a = d.report(&[(ADV, 1)]).await.expect("report");
            (i, d, a)
        });
    }
    let mut round: Vec<Option<Dev>> = vec![None; K];
    while let Some(done) = tasks.join_next().await {
        let (i, d, a) = done.expect("task");
        assert_eq!(a.instance_id, d.id);
        round[i] = Some(d);
    }
    let mut devs: Vec<Dev> = round.into_iter().map(|d| d.expect("reported")).collect();
    assert_eq!(statuses(&devs, ADV).await, expected(K, N));
    assert_eq!(s.in_use("acme/Default", ADV).await, N as u64);
    let short = s.devices("?status=out_of_compliance").await;
    assert_eq!(short.len(), K - N);
    let ok = s.devices("?status=authorized").await;
    let mut ok_ids: Vec<&str> = ok.iter().map(|d| d.id.as_str()).collect();
    let mut first: Vec<&str> = devs[..N].iter().map(|d| d.id.as_str()).collect();
    ok_ids.sort();
    first.sort();
    assert_eq!(
        ok_ids, first,
        "the authorized devices are the first registered"
    );

    // Round 2: the last registered reports first, one after the other; every answer is
    // already the final one because all devices are in the pool.
    for i in (0..K).rev() {
        let a = devs[i].report(&[(ADV, 1)]).await.expect("report");
        assert_eq!(tag_status(&a, ADV), expected(K, N)[i], "device {i}");
        assert_eq!(
            a.status,
            expected(K, N)[i],
            "the instance status is its worst tag"
        );
    }
    assert_eq!(statuses(&devs, ADV).await, expected(K, N));

    // Round 3: an interleaving of odd devices first, concurrently in two halves.
    let order: Vec<usize> = (0..K)
        .filter(|i| i % 2 == 1)
        .chain((0..K).step_by(2))
        .collect();
    for half in order.chunks(K / 2) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in half {
            let mut d = devs[i].clone();
            tasks.spawn(async move {
                d.report(&[(ADV, 1)]).await.expect("report");
                (i, d.seq)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, seq) = done.expect("task");
            devs[i].seq = seq;
        }
    }
    assert_eq!(statuses(&devs, ADV).await, expected(K, N));
    assert_eq!(s.in_use("acme/Default", ADV).await, N as u64);
}

/// The same K ≫ N scenario on a fresh satellite where the reports arrive last-registered
/// first: the early answers were given while the pool was not full, but once everyone has
/// reported the first N registered hold the licenses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_report_order_from_scratch_still_ends_with_the_first_registered() {
    const K: usize = 15;
    const N: usize = 4;
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", ADV, N as i64).await;
    let (token, _) = s.token("acme/Default").await;
    let mut devs = Vec::new();
    for i in 0..K {
        devs.push(
            s.register(&token, "C9300-24T", &format!("FOC{i:04}"))
                .await
                .expect("register"),
        );
    }
    for i in (0..K).rev() {
        devs[i].report(&[(ADV, 1)]).await.expect("report");
    }
    assert_eq!(statuses(&devs, ADV).await, expected(K, N));
    assert_eq!(s.in_use("acme/Default", ADV).await, N as u64);
}

/// With 2 units left, a device asking for 3 gets none; and allocation is a strict prefix, so a
/// later device asking for 2 is out of compliance too. Other tags and other VAs are separate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_gets_all_it_asks_for_or_nothing() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.va("acme/Default", "lab").await;
    s.license("acme/Default", ADV, 5).await;
    s.license("acme/Default", ESS, 10).await;
    s.license("acme/Default/lab", ADV, 3).await;
    let (token, _) = s.token("acme/Default").await;
    let (lab_token, _) = s.token("acme/Default/lab").await;
    let mut a = s.register(&token, "P", "A").await.expect("a");
    let mut b = s.register(&token, "P", "B").await.expect("b");
    let mut c = s.register(&token, "P", "C").await.expect("c");
    let mut lab = s.register(&lab_token, "P", "LAB").await.expect("lab");

    let ra = a.report(&[(ADV, 3), (ESS, 1)]).await.expect("a");
    assert_eq!(ra.status, "authorized");
    let rb = b.report(&[(ADV, 3), (ESS, 1)]).await.expect("b");
    assert_eq!(tag_status(&rb, ADV), "out_of_compliance", "3 asked, 2 left");
    assert_eq!(tag_status(&rb, ESS), "authorized", "tags are independent");
    assert_eq!(rb.status, "out_of_compliance", "the worst of its tags");
    let rc = c.report(&[(ADV, 2)]).await.expect("c");
    assert_eq!(
        tag_status(&rc, ADV),
        "out_of_compliance",
        "the first device that does not fit and every later one are out of compliance"
    );
    // Another VA's pool is its own.
    let rl = lab.report(&[(ADV, 3)]).await.expect("lab");
    assert_eq!(rl.status, "authorized");
    // A tag without any license in the VA is unknown.
    let rl = lab.report(&[(ADV, 3), (ESS, 1)]).await.expect("lab");
    assert_eq!(tag_status(&rl, ESS), "unknown");
    assert_eq!(tag_status(&rl, ADV), "authorized");
    assert_ne!(rl.status, "authorized");

    assert_eq!(s.in_use("acme/Default", ADV).await, 3, "only a's units");
    assert_eq!(s.in_use("acme/Default", ESS).await, 2);

    // b lowers its ask to 2: it fits now, and c (registered after b) still does not.
    let rb = b.report(&[(ADV, 2), (ESS, 1)]).await.expect("b");
    assert_eq!(rb.status, "authorized");
    assert_eq!(
        tag_status(&c.authorization().await.unwrap(), ADV),
        "out_of_compliance"
    );
    assert_eq!(s.in_use("acme/Default", ADV).await, 5);
}

/// Term licenses count only between their start and end (SPEC §4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn term_licenses_count_only_between_start_and_end() {
    let s = Sat::start().await;
    s.account("acme").await;
    let now = s.now();
    s.add_license(AddLicense {
        va: "acme/Default".into(),
        entitlement_tag: ADV.into(),
        display_name: String::new(),
        quantity: 2,
        start: Some(now + Duration::days(1)),
        end: Some(now + Duration::days(3)),
        export_controlled: false,
        order_ref: None,
        labels: Vec::new(),
    })
    .await;
    let (token, _) = s.token("acme/Default").await;
    let mut d = s.register(&token, "P", "S1").await.expect("register");

    let a = d.report(&[(ADV, 2)]).await.expect("report");
    assert_eq!(
        tag_status(&a, ADV),
        "out_of_compliance",
        "a term license that has not started does not count (and the tag is licensed, so not unknown)"
    );
    assert_eq!(s.in_use("acme/Default", ADV).await, 0);

    s.advance(Duration::days(1) + Duration::seconds(1));
    let a = d.report(&[(ADV, 2)]).await.expect("report");
    assert_eq!(tag_status(&a, ADV), "authorized", "inside the term");
    assert_eq!(s.in_use("acme/Default", ADV).await, 2);

    s.advance(Duration::days(2));
    let a = d.report(&[(ADV, 2)]).await.expect("report");
    assert_eq!(tag_status(&a, ADV), "out_of_compliance", "after the end");
    assert_eq!(s.in_use("acme/Default", ADV).await, 0);
}

/// A repeated `seq` returns the stored answer and changes nothing; an older one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_report_is_idempotent_and_an_older_one_is_refused() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 5).await;
    let (token, _) = s.token("acme/Default").await;
    let mut d = s.register(&token, "P", "S1").await.expect("register");

    let measured = s.now();
    let first = d.report_at(&[(ADV, 3)], measured).await.expect("seq 1");
    assert_eq!(first.status, "authorized");
    let devices = s.devices("").await;
    let licenses = s.licenses().await;
    let events = s.all_events().await.len();

    // The agent's retry: the same seq and content, later.
    s.advance(Duration::minutes(5));
    let again = d
        .client
        .usage(&usage_request(1, &[(ADV, 3)], measured))
        .await
        .expect("repeat");
    assert_eq!(again, first, "a repeat gets the identical answer");
    // Same seq with other content: still the stored answer, nothing applied.
    let other = d
        .client
        .usage(&usage_request(1, &[(ADV, 5), (ESS, 1)], measured))
        .await
        .expect("repeat with other content");
    assert_eq!(other, first);
    assert_eq!(
        serde_json::to_value(s.devices("").await).unwrap(),
        serde_json::to_value(&devices).unwrap(),
        "the device is unchanged (usage, last report, counted once)"
    );
    assert_eq!(s.in_use("acme/Default", ADV).await, 3);
    assert_eq!(
        serde_json::to_value(s.licenses().await).unwrap(),
        serde_json::to_value(&licenses).unwrap()
    );
    assert_eq!(s.all_events().await.len(), events);

    // A newer report applies; then an older seq is refused.
    d.report(&[(ADV, 4)]).await.expect("seq 2");
    assert_eq!(d.seq, 2);
    refused(
        d.client
            .usage(&usage_request(1, &[(ADV, 1)], s.now()))
            .await,
        409,
        "stale_seq",
    );
    assert_eq!(s.in_use("acme/Default", ADV).await, 4);
    let shown = s.device(&d.id).await;
    assert_eq!(shown.entitlements.len(), 1);
    assert_eq!(shown.entitlements[0].count, 4);
}

/// Re-registering a UDI needs `force`; it keeps the instance (and its place in the
/// registration order), revokes the old certificate and never counts the device twice; `force`
/// never replaces a device of another VA (SPEC §3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_re_registration_replaces_the_device_without_counting_it_twice() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 3).await;
    let (token, _) = s.token("acme/Default").await;
    let mut first = s
        .register(&token, "C9300-24T", "FOC1")
        .await
        .expect("first");
    let mut second = s
        .register(&token, "C9300-24T", "FOC2")
        .await
        .expect("second");
    first.report(&[(ADV, 2)]).await.expect("report");
    assert_eq!(
        tag_status(&second.report(&[(ADV, 2)]).await.unwrap(), ADV),
        "out_of_compliance"
    );

    refused(
        s.register(&token, "C9300-24T", "FOC1").await.map(|d| d.id),
        409,
        "already_registered",
    );
    let (mut again, answer) = s
        .register_req(s.request(&token, "C9300-24T", "FOC1", true))
        .await
        .expect("forced re-registration");
    assert_eq!(answer.instance_id, first.id, "the same instance");
    assert_eq!(s.devices("").await.len(), 2);
    refused(first.authorization().await, 401, "certificate_revoked");

    again.seq = 0;
    let a = again
        .report(&[(ADV, 2)])
        .await
        .expect("report after re-registration");
    assert_eq!(
        tag_status(&a, ADV),
        "authorized",
        "it keeps its place in the order"
    );
    assert_eq!(s.in_use("acme/Default", ADV).await, 2, "counted once");
    assert_eq!(
        tag_status(&second.authorization().await.unwrap(), ADV),
        "out_of_compliance"
    );
    let events = s.events("device.reregister").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].device.as_deref(), Some(first.id.as_str()));

    // `force` with another VA's token (issue #10: a va-admin of a sub-VA took over a device of
    // its parent it could not even see): refused as already registered, nothing changes.
    s.va("acme/Default", "lab").await;
    s.license("acme/Default/lab", ADV, 2).await;
    let (lab_token, lab_token_id) = s.token("acme/Default/lab").await;
    refused(
        s.register_req(s.request(&lab_token, "C9300-24T", "FOC1", true))
            .await
            .map(|(d, _)| d.id),
        409,
        "already_registered",
    );
    assert_eq!(s.device(&first.id).await.va_path, "acme/Default");
    let a = again
        .authorization()
        .await
        .expect("the real device keeps its certificate");
    assert_eq!(tag_status(&a, ADV), "authorized");
    assert_eq!(s.in_use("acme/Default", ADV).await, 2);
    assert_eq!(s.in_use("acme/Default/lab", ADV).await, 0);
    assert_eq!(
        s.events("device.reregister").await.len(),
        1,
        "no second re-registration"
    );
    let lab = s
        .tokens()
        .await
        .into_iter()
        .find(|t| t.id == lab_token_id)
        .unwrap();
    assert_eq!(lab.uses, 0, "the refused use is not counted");
    assert_eq!(s.devices("").await.len(), 2);
}
