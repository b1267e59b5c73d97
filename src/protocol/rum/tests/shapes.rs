//! Tests of the report shapes beyond the pushed 17.9 one: the older shape with `report_id`
//! under `meta`, split CDATA sections, and `usage` arrays pulled from a device.

use super::*;

/// The older payload shape, as Cisco's GVE sample README shows a C8000V on IOS XE 17.6 writing
/// it (serials and uuids replaced): no `version`, `signature` inside `asset_identification`,
/// `report_id` in `meta`.
fn older_payload(report_id: u64) -> Value {
    json!({
        "asset_identification": {
            "asset": { "name": "regid.2019-10.com.cisco.C8000V,1.0_00000000-0000-0000-0000-000000000001" },
            "instance": { "sudi": { "udi_pid": "C8000V", "udi_serial_number": "SERIAL0002" } },
            "signature": { "signing_type": "builtin", "key": "regid.2019-10.com.cisco.C8000V,1.0_x", "value": "c2ln" }
        },
        "meta": {
            "entitlement_tag": "regid.2018-12.com.cisco.DNA_P_50M_A,1.0_00000000-0000-0000-0000-000000000002",
            "report_id": report_id,
            "software_version": "17.06.02",
            "ha_udi": [{ "role": "Active", "sudi": { "udi_pid": "C8000V", "udi_serial_number": "SERIAL0002" } }]
        },
        "measurements": [{
            "log_time": 1657549482, "metric_name": "ENTITLEMENT", "start_time": 1657549046,
            "end_time": 1657550382, "sample_interval": 1336, "num_samples": 2,
            "meta": { "termination_reason": "CurrentUsageRequested" },
            "value": { "type": "COUNT", "value": "1" }
        }]
    })
}

/// A report as a device's `all-reports` answer carries it: with `header` `{"type": "rum"}`.
fn pulled_envelope(payload: &Value) -> String {
    json!({
        "payload": payload.to_string(),
        "header": { "type": "rum" },
        "signature": {
            "sudi": { "udi_pid": "C9800-CL-K9", "udi_serial_number": "SERIAL1" },
            "signing_type": "builtin", "key": "k", "value": "c2lnbmF0dXJl"
        }
    })
    .to_string()
}

fn ids(reports: &[RumReport]) -> Vec<u64> {
    reports.iter().map(|r| r.report_id).collect()
}

#[test]
fn the_older_shape_with_report_id_under_meta_parses() {
    let body = envelope(&older_payload(1646687408));
    let r = &ok(&body)[0];
    assert_eq!(r.report_id, 1646687408);
    assert_eq!(
        (r.udi_pid.as_str(), r.udi_serial.as_str()),
        ("C8000V", "SERIAL0002")
    );
    assert_eq!((r.count, r.measured_at), (1, 1657550382));
    assert_eq!(r.software_version.as_deref(), Some("17.06.02"));
}

#[test]
fn a_report_with_both_ids_must_carry_one_id() {
    let same = with(|p| set(p, "/meta/report_id", Some(json!(1))));
    assert_eq!(ids(&ok(&same)), [1]);
    let differ = with(|p| set(p, "/meta/report_id", Some(json!(2))));
    assert_refused!(
        differ,
        RumError::ConflictingReportIds {
            first: 1,
            second: 2,
            ..
        }
    );
    let bad = envelope(&older_payload(0)).replace("\\\"report_id\\\":0", "\\\"report_id\\\":-3");
    assert_refused!(
        bad,
        RumError::InvalidReportId {
            field: "meta.report_id",
            ..
        }
    );
    let neither = with(|p| set(p, "/asset_identification/report_id", None));
    assert_refused!(
        neither,
        RumError::MissingField {
            field: "asset_identification.report_id",
            ..
        }
    );
}

#[test]
fn a_cdata_section_split_around_its_terminator_is_joined() {
    // A tag holding `]]>` cannot sit in one CDATA section; a writer splits the section there.
    let e = with(|p| set(p, "/meta/entitlement_tag", Some(json!("tag]]>end"))));
    assert!(e.contains("]]>"));
    let split = e.replace("]]>", "]]]]><![CDATA[>");
    let body = format!("<smartLicense><RUMReport><![CDATA[{split}]]></RUMReport></smartLicense>");
    let r = &ok(&body)[0];
    assert_eq!(r.raw, e);
    assert_eq!(r.entitlement_tag, "tag]]>end");
    // Whitespace between sections is text, as in XML; around the envelope it is trimmed.
    let e = envelope(&payload(1));
    let (head, tail) = e.split_at(5);
    assert_eq!(head, "{\"pay");
    let body = format!("<RUMReport> <![CDATA[ {head}]]> <![CDATA[{tail}\n]]>\n</RUMReport>");
    assert_refused!(
        body,
        RumError::MissingField {
            field: "payload",
            ..
        }
    );
    let body = format!("<RUMReport> <![CDATA[ {head}]]><![CDATA[{tail}\n]]>\n</RUMReport>");
    assert_eq!(ok(&body)[0].raw, e);
}

#[test]
fn a_pulled_usage_array_goes_through_the_same_checks() {
    let a = pulled_envelope(&payload(7));
    let b = pulled_envelope(&older_payload(8));
    let again = pulled_envelope(&payload(7));
    let pulled = parse_pulled(&format!("[{a}, {b},\n{again}]")).unwrap();
    assert_eq!(ids(&pulled.reports), [7, 8]);
    assert_eq!(pulled.reports[0].raw, a);
    assert!(pulled.other.is_empty());
    // The same text pushed as a body gives the same reports.
    assert_eq!(ok(&format!("[{a}, {b},\n{again}]")), pulled.reports);

    let bad = pulled_envelope(&payload(9)).replace("\"signature\"", "\"signed\"");
    let err = parse_pulled(&format!("[{a},{bad}]")).unwrap_err();
    assert_eq!(err.to_string(), "report #1: `signature` is missing");
}

#[test]
fn an_empty_pulled_array_holds_nothing() {
    let pulled = parse_pulled(" [ \n ] ").unwrap();
    assert!(pulled.reports.is_empty() && pulled.other.is_empty());
    assert!(matches!(parse_pulled(""), Err(RumError::Empty)));
    assert!(matches!(
        parse_pulled("{}"),
        Err(RumError::UnknownFormat { found: '{' })
    ));
    assert!(matches!(
        parse_pulled("[1,"),
        Err(RumError::InvalidJson { .. })
    ));
}

#[test]
fn pulled_elements_of_another_kind_are_set_aside_verbatim() {
    let dlc = r#"{"header": {"type": "dlc"}, "payload": "opaque"}"#;
    let rum = pulled_envelope(&payload(3));
    let pulled = parse_pulled(&format!("[{dlc},{rum}]")).unwrap();
    assert_eq!(ids(&pulled.reports), [3]);
    assert_eq!(
        pulled.other,
        [OtherElement {
            index: 0,
            kind: "\"dlc\"".into(),
            raw: dlc.into()
        }]
    );
}

#[test]
fn ten_thousand_pulled_reports_are_accepted_and_one_more_is_refused() {
    let many: Vec<String> = (0..MAX_PULLED_REPORTS as u64)
        .map(|id| pulled_envelope(&payload(id)))
        .collect();
    let body = format!("[{}]", many.join(","));
    let pulled = parse_pulled(&body).unwrap();
    assert_eq!(pulled.reports.len(), 10_000);
    assert_eq!(pulled.reports[9_999].report_id, 9_999);
    // A pushed body keeps its own, smaller cap.
    assert!(matches!(
        parse(body.as_bytes()),
        Err(RumError::TooManyReports { max: MAX_REPORTS })
    ));
    let over = format!("[{},{}]", many.join(","), pulled_envelope(&payload(10_000)));
    assert!(matches!(
        parse_pulled(&over),
        Err(RumError::TooManyReports { max: 10_000 })
    ));
}
