//! Device timers on a manual clock (SPEC §4): report deadline, authorization expiry,
//! automatic deregistration, clock set back, clock skew.

use time::Duration;

use crate::inproc::{Sat, refused, tag_status};

const ADV: &str = "regid.2019-03.com.example.ADV";

/// Seconds-scale timers: report every hour, authorized for two, deregistered three hours
/// after that.
const TIMERS: &str = "report_interval = \"1h\"\nauthorization_valid = \"2h\"\n\
                      deregister_after = \"3h\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_expires_and_silent_devices_are_deregistered() {
    let s = Sat::start_with("", TIMERS).await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 1).await;
    let (token, _) = s.token("acme/Default").await;
    let t_reg = s.now();
    let (mut silent, answer) = s
        .register_req(s.request(&token, "P", "SILENT", false))
        .await
        .expect("silent");
    assert_eq!(answer.authorization.status, "registered");
    assert_eq!(answer.report_interval_secs, 3600);
    assert_eq!(
        answer.authorization.next_report_by,
        t_reg + Duration::hours(1),
        "a device that never reported is due one report interval after registering"
    );
    assert_eq!(
        answer.authorization.authorization_expires_at,
        t_reg + Duration::hours(2)
    );
    let mut talker = s.register(&token, "P", "TALKER").await.expect("talker");
    let mut waiting = s.register(&token, "P", "WAITING").await.expect("waiting");

    let t0 = s.now();
    let a = silent.report(&[(ADV, 1)]).await.expect("report");
    assert_eq!(a.status, "authorized");
    assert_eq!(a.next_report_by, t0 + Duration::hours(1));
    assert_eq!(a.authorization_expires_at, t0 + Duration::hours(2));
    talker.report(&[]).await.expect("report");
    let w = waiting.report(&[(ADV, 1)]).await.expect("report");
    assert_eq!(w.status, "out_of_compliance");
    let shown = s.device(&silent.id).await;
    assert_eq!(shown.next_report_by, t0 + Duration::hours(1));
    assert_eq!(shown.authorization_expires_at, t0 + Duration::hours(2));

    // The waiting device keeps reporting; the others fall silent and miss their report.
    s.advance(Duration::minutes(90));
    waiting.report(&[(ADV, 1)]).await.expect("report");
    let missed: Vec<_> = s
        .alerts()
        .await
        .into_iter()
        .filter(|a| a.kind == "report_missed")
        .collect();
    assert_eq!(missed.len(), 1, "{missed:#?}");
    assert!(
        missed[0].message.contains("2 device"),
        "{}",
        missed[0].message
    );
    s.advance(Duration::minutes(30) + Duration::seconds(1));
    let a = silent.authorization().await.expect("authorization");
    assert_eq!(a.status, "authorization_expired");
    assert_eq!(a.authorization_expires_at, t0 + Duration::hours(2));
    let expired = s.devices("?status=authorization_expired").await;
    let mut ids: Vec<&str> = expired.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    let mut want = vec![silent.id.as_str(), talker.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert!(
        s.alerts()
            .await
            .iter()
            .any(|a| a.kind == "authorization_expired")
    );

    // The talker keeps in touch without reporting: it stays expired but is not removed.
    // The silent device's last contact is its GET above, at t0 + 2h + 1s.
    let last_silent = t0 + Duration::hours(2) + Duration::seconds(1);
    s.advance(Duration::hours(2));
    talker.authorization().await.expect("contact");
    waiting.report(&[(ADV, 1)]).await.expect("report");
    // Just before the silent device's deadline (last contact + 2h + 3h) nothing is removed.
    let deadline = last_silent + Duration::hours(5);
    s.clock.set(deadline - Duration::minutes(1));
    s.sweep().await;
    assert!(!s.device_missing(&silent.id).await);
    assert_eq!(
        tag_status(&waiting.authorization().await.unwrap(), ADV),
        "out_of_compliance",
        "the silent device still holds the license"
    );

    s.clock.set(deadline + Duration::seconds(1));
    s.sweep().await;
    assert!(s.device_missing(&silent.id).await, "deregistered");
    assert!(!s.device_missing(&talker.id).await, "in contact");
    assert!(!s.device_missing(&waiting.id).await);
    let events = s.events("device.auto_deregister").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].device.as_deref(), Some(silent.id.as_str()));
    let reason = events[0]
        .details
        .iter()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.as_str())
        .expect("a reason");
    assert!(reason.contains("no contact"), "{reason}");
    assert!(
        events[0]
            .details
            .iter()
            .any(|(k, v)| k == "released" && v.contains(ADV)),
        "the event lists the released licenses: {:?}",
        events[0].details
    );
    // Its licenses went back to the pool; it can no longer speak.
    let a = waiting.report(&[(ADV, 1)]).await.expect("report");
    assert_eq!(a.status, "authorized");
    match silent.authorization().await {
        Err(e) => assert!(
            matches!(e.code(), Some("certificate_revoked" | "unknown_instance")),
            "{e}"
        ),
        Ok(a) => panic!("a deregistered device was answered: {a:?}"),
    }
}

/// Setting the clock back extends nothing: an answer's deadlines never move earlier than
/// ones already given, and a token the satellite has seen expire stays expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_the_clock_back_extends_nothing() {
    let s = Sat::start_with("", TIMERS).await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 1).await;
    let (token, _) = s.token("acme/Default").await;
    let mut d = s.register(&token, "P", "S1").await.expect("register");
    let first = d.report(&[(ADV, 1)]).await.expect("report");

    s.advance(Duration::minutes(30));
    let later = d.report(&[(ADV, 1)]).await.expect("report");
    assert_eq!(
        later.authorization_expires_at,
        first.authorization_expires_at + Duration::minutes(30)
    );

    s.clock.advance(-Duration::hours(6));
    let back = d.report(&[(ADV, 1)]).await.expect("report");
    assert!(
        back.authorization_expires_at >= later.authorization_expires_at,
        "{} < {}",
        back.authorization_expires_at,
        later.authorization_expires_at
    );
    assert!(back.next_report_by >= later.next_report_by);
    assert!(
        s.now() >= first.authorization_expires_at - Duration::hours(2) + Duration::minutes(30),
        "the satellite's time does not go back"
    );

    // Time really passes beyond the authorization: expired, even with the clock behind.
    s.clock.advance(Duration::hours(6) + Duration::hours(3));
    assert_eq!(
        d.authorization().await.unwrap().status,
        "authorization_expired"
    );
    s.clock.advance(-Duration::hours(3));
    assert_eq!(
        d.authorization().await.unwrap().status,
        "authorization_expired",
        "setting the clock back does not revive an expired authorization"
    );
}

/// A token the satellite has refused as expired stays expired when the clock is set back,
/// even if nothing else happened in between: the refusal was an act at that time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_stays_expired_when_the_clock_is_set_back() {
    let s = Sat::start().await;
    s.account("acme").await;
    let (token, _) = s
        .token_with(satellite::protocol::admin::CreateToken {
            va: "acme/Default".into(),
            description: String::new(),
            expires_in_days: Some(1),
            max_uses: None,
            allow_export_controlled: false,
        })
        .await;
    s.advance(Duration::days(1) + Duration::seconds(1));
    refused(
        s.register(&token, "P", "S1").await.map(|d| d.id),
        403,
        "token_expired",
    );
    s.clock.advance(-Duration::days(2));
    refused(
        s.register(&token, "P", "S2").await.map(|d| d.id),
        403,
        "token_expired",
    );
    assert!(s.devices("").await.is_empty());
}

/// A report whose time is off by an hour or more is accepted, flagged on the device, in an
/// event and in an alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_is_accepted_but_flagged() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 5).await;
    let (token, _) = s.token("acme/Default").await;
    let mut d = s.register(&token, "P", "SKEWED").await.expect("register");
    let mut ok = s.register(&token, "P", "ONTIME").await.expect("register");

    ok.report_at(&[(ADV, 1)], s.now() - Duration::minutes(59))
        .await
        .expect("report");
    assert!(
        !s.device(&ok.id).await.clock_skew,
        "59 minutes is tolerated"
    );

    let a = d
        .report_at(&[(ADV, 2)], s.now() - Duration::hours(2))
        .await
        .expect("a skewed report is accepted");
    assert_eq!(a.status, "authorized");
    assert_eq!(
        a.authorization_expires_at,
        s.now() + Duration::days(90),
        "deadlines follow the satellite's clock, not the device's"
    );
    assert!(s.device(&d.id).await.clock_skew);
    let events = s.events("device.clock_skew").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].device.as_deref(), Some(d.id.as_str()));
    assert_eq!(events[0].actor, format!("device:{}", d.id));
    let alerts = s.alerts().await;
    let skew: Vec<_> = alerts.iter().filter(|a| a.kind == "clock_skew").collect();
    assert_eq!(skew.len(), 1, "{alerts:#?}");
    assert!(skew[0].message.contains("1 device"), "{}", skew[0].message);

    // Into the future counts too, and a second skewed report does not repeat the event.
    d.report_at(&[(ADV, 2)], s.now() + Duration::hours(2))
        .await
        .expect("report");
    assert_eq!(s.events("device.clock_skew").await.len(), 1);

    // A report on time clears the flag and the alert.
    d.report(&[(ADV, 2)]).await.expect("report");
    assert!(!s.device(&d.id).await.clock_skew);
    assert!(!s.alerts().await.iter().any(|a| a.kind == "clock_skew"));
    refused(
        d.client
            .usage(&crate::inproc::usage_request(1, &[], s.now()))
            .await,
        409,
        "stale_seq",
    );
}
