//! Tests of `rum`.

use super::*;
use serde_json::json;

/// A real report from a Cisco C9800-CL (see tests/data/cisco-rum/).
const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/cisco-rum/example-rum-1671840750.xml"
));

fn payload(report_id: u64) -> Value {
    json!({
        "version": "2.0",
        "asset_identification": {
            "report_id": report_id,
            "asset": { "name": "regid.2018-05.com.cisco.WLC_9500C,1.0_test" },
            "instance": { "sudi": { "udi_pid": "C9800-CL-K9", "udi_serial_number": "SERIAL1" } }
        },
        "meta": {
            "entitlement_tag": "regid.2018-06.com.cisco.DNA_NWStack,1.0_test",
            "software_version": "17.09.02"
        },
        "measurements": [
            { "start_time": 100, "end_time": 200, "value": { "type": "COUNT", "value": "2" } },
            { "start_time": 200, "end_time": 300, "value": { "type": "COUNT", "value": "5" } }
        ]
    })
}

fn envelope(payload: &Value) -> String {
    json!({
        "payload": payload.to_string(),
        "signature": { "signing_type": "builtin", "key": "k", "value": "c2lnbmF0dXJl" }
    })
    .to_string()
}

/// The envelope of report 1 after `edit` changed its payload.
fn with(edit: impl FnOnce(&mut Value)) -> String {
    let mut p = payload(1);
    edit(&mut p);
    envelope(&p)
}

/// Sets (or, with `None`, removes) the payload field at a JSON pointer.
fn set(p: &mut Value, pointer: &str, value: Option<Value>) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = p.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match value {
        Some(v) => parent.insert(key.to_owned(), v),
        None => parent.remove(key),
    };
}

fn measurements(list: Value) -> String {
    with(|p| set(p, "/measurements", Some(list)))
}

fn xml(envelopes: &[String]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<smartLicense>\n");
    for e in envelopes {
        out.push_str(&format!("<RUMReport>\n<![CDATA[{e}]]>\n</RUMReport>\n"));
    }
    out + "</smartLicense>\n"
}

fn ok(body: &str) -> Vec<RumReport> {
    parse(body.as_bytes()).unwrap_or_else(|e| panic!("body refused: {e}"))
}

macro_rules! assert_refused {
    ($body:expr, $pattern:pat $(if $guard:expr)?) => {{
        let body = $body;
        match parse(AsRef::<[u8]>::as_ref(&body)) {
            Err(e) => assert!(matches!(e, $pattern $(if $guard)?), "wrong error: {e:?} ({e})"),
            Ok(r) => panic!("accepted: {r:?}"),
        }
    }};
}

#[test]
fn the_real_fixture_parses_to_its_one_report() {
    let reports = ok(FIXTURE);
    let cdata = FIXTURE
        .split_once("<![CDATA[")
        .and_then(|(_, rest)| rest.split_once("]]>"))
        .map(|(json, _)| json)
        .unwrap();
    assert_eq!(
        reports,
        vec![RumReport {
            report_id: 1671840750,
            udi_pid: "C9800-CL-K9".into(),
            udi_serial: "9NTUEA8FIIH".into(),
            entitlement_tag:
                "regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896"
                    .into(),
            asset_name:
                "regid.2018-05.com.cisco.WLC_9500C,1.0_85665885-b865-4e32-8184-5510412fcb54".into(),
            software_version: Some("17.09.02".into()),
            // Three measurements (counts 2, 3, 3); the last ends at 1673790212.
            count: 3,
            measured_at: 1673790212,
            raw: cdata.to_owned(),
        }]
    );
    assert!(reports[0].raw.starts_with("{\n  \"payload\"") && reports[0].raw.ends_with('}'));
}

#[test]
fn the_count_comes_from_the_latest_count_measurement() {
    let body = measurements(json!([
        { "end_time": 300, "value": { "type": "COUNT", "value": "7" } },
        { "end_time": 100, "value": { "type": "COUNT", "value": "1" } },
        { "end_time": 900, "value": { "type": "MEMORY", "value": "42" } },
        { "end_time": 250, "value": { "type": "COUNT", "value": "4" } }
    ]));
    let r = &ok(&body)[0];
    assert_eq!((r.count, r.measured_at), (7, 300));
}

#[test]
fn on_equal_end_times_the_last_measurement_wins() {
    let body = measurements(json!([
        { "end_time": 300, "value": { "type": "COUNT", "value": "7" } },
        { "end_time": 300, "value": { "type": "COUNT", "value": "8" } },
        { "end_time": 200, "value": { "type": "COUNT", "value": "9" } }
    ]));
    assert_eq!(ok(&body)[0].count, 8);
}

#[test]
fn two_reports_in_one_xml_body_keep_their_order() {
    let (a, b) = (envelope(&payload(2)), envelope(&payload(1)));
    let body = xml(&[a.clone(), b.clone()]).replace(
        "<smartLicense>\n",
        "<smartLicense>\n<RUMReportAck>ignored</RUMReportAck>\n",
    );
    let reports = ok(&body);
    assert_eq!(
        reports.iter().map(|r| r.report_id).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(
        (reports[0].raw.as_str(), reports[1].raw.as_str()),
        (a.as_str(), b.as_str())
    );
    assert_eq!((reports[1].count, reports[1].measured_at), (5, 300));
}

#[test]
fn a_bare_json_envelope_is_one_report() {
    let body = format!(" \n{}\n", envelope(&payload(9)));
    let reports = ok(&body);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].report_id, 9);
    assert_eq!(reports[0].raw, body.trim());
}

#[test]
fn a_json_array_keeps_each_element_text_exactly() {
    let (a, b) = (envelope(&payload(1)), envelope(&payload(2)));
    let body = format!("[\n  {a} ,\n\t{b}]  ");
    let reports = ok(&body);
    assert_eq!(
        reports.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>(),
        [&a, &b]
    );
}

#[test]
fn a_count_may_be_a_json_number_and_up_to_the_maximum() {
    let body = measurements(json!([{ "end_time": 1, "value": { "type": "COUNT", "value": 4 } }]));
    assert_eq!(ok(&body)[0].count, 4);
    let body = measurements(
        json!([{ "end_time": 1, "value": { "type": "COUNT", "value": "1000000000000" } }]),
    );
    assert_eq!(ok(&body)[0].count, MAX_COUNT);
}

#[test]
fn a_repeated_report_id_keeps_the_first_report() {
    let first = envelope(&payload(1));
    let again = with(|p| set(p, "/meta/entitlement_tag", Some(json!("other"))));
    let reports = ok(&xml(&[first.clone(), envelope(&payload(2)), again]));
    assert_eq!(
        reports.iter().map(|r| r.report_id).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(reports[0].raw, first);
}

#[test]
fn a_byte_order_mark_and_cdata_whitespace_are_tolerated() {
    let e = envelope(&payload(1));
    let body = format!("\u{feff}<RUMReport a=\"b\"><![CDATA[ \n{e}\r\n]]></RUMReport>");
    assert_eq!(ok(&body)[0].raw, e);
}

#[test]
fn software_version_is_optional_but_checked() {
    let body = with(|p| set(p, "/meta/software_version", None));
    assert_eq!(ok(&body)[0].software_version, None);
    let body = with(|p| set(p, "/meta/software_version", Some(json!(17))));
    assert_refused!(
        body,
        RumError::WrongType {
            field: "meta.software_version",
            ..
        }
    );
}

#[test]
fn an_empty_body_is_refused() {
    assert_refused!(b"", RumError::Empty);
    assert_refused!(b" \r\n\t", RumError::Empty);
}

#[test]
fn a_body_that_is_not_utf8_is_refused() {
    assert_refused!(
        b"<RUMReport>\xff</RUMReport>",
        RumError::NotUtf8 { offset: 11 }
    );
}

#[test]
fn a_body_neither_xml_nor_json_is_refused() {
    assert_refused!(b"payload=1", RumError::UnknownFormat { found: 'p' });
}

#[test]
fn xml_without_a_rum_report_is_refused() {
    assert_refused!(
        b"<?xml version=\"1.0\"?><smartLicense/>",
        RumError::NoReport
    );
    assert_refused!(b"<RUMReportAck></RUMReportAck>", RumError::NoReport);
    assert_refused!(b" [ ] ", RumError::NoReport);
}

#[test]
fn an_unterminated_element_is_refused() {
    let e = envelope(&payload(1));
    assert_refused!(
        format!("<RUMReport><![CDATA[{e}]]>"),
        RumError::UnterminatedElement { .. }
    );
    assert_refused!(b"<RUMReport", RumError::UnterminatedElement { .. });
    let second = format!("{}<RUMReport>{e}", xml(std::slice::from_ref(&e)));
    assert_refused!(
        second,
        RumError::UnterminatedElement {
            at: ReportAt { index: 1, .. }
        }
    );
}

#[test]
fn an_unterminated_cdata_section_is_refused() {
    let e = envelope(&payload(1));
    let body = format!("<RUMReport><![CDATA[{e}</RUMReport>");
    assert_refused!(body, RumError::UnterminatedCdata { .. });
}

#[test]
fn an_element_without_cdata_is_refused() {
    assert_refused!(
        b"<RUMReport>{}</RUMReport>",
        RumError::NotCdata { offset: 11, .. }
    );
    assert_refused!(b"<RUMReport/>", RumError::NotCdata { .. });
    let e = envelope(&payload(1));
    let body = format!("<RUMReport><![CDATA[{e}]]>extra</RUMReport>");
    assert_refused!(body, RumError::NotCdata { .. });
}

#[test]
fn an_envelope_that_is_not_json_is_refused() {
    assert_refused!(
        b"<RUMReport><![CDATA[{nope]]></RUMReport>",
        RumError::InvalidJson { .. }
    );
    assert_refused!(b"{\"payload\": ", RumError::InvalidJson { .. });
    let e = envelope(&payload(1));
    assert_refused!(format!("[{e} {e}]"), RumError::InvalidJson { .. });
    assert_refused!(format!("[{e},]"), RumError::InvalidJson { .. });
    assert_refused!(format!("[{e}"), RumError::InvalidJson { .. });
    assert_refused!(format!("[{e}] x"), RumError::InvalidJson { .. });
    assert_refused!(format!("{e} x"), RumError::InvalidJson { .. });
}

#[test]
fn an_envelope_that_is_not_an_object_is_refused() {
    assert_refused!(b"[1]", RumError::NotAnObject { .. });
    assert_refused!(
        b"<RUMReport><![CDATA[\"x\"]]></RUMReport>",
        RumError::NotAnObject { .. }
    );
}

#[test]
fn an_envelope_without_payload_or_signature_is_refused() {
    assert_refused!(
        b"{\"signature\": {}}",
        RumError::MissingField {
            field: "payload",
            ..
        }
    );
    let body = json!({ "payload": payload(1).to_string() }).to_string();
    assert_refused!(
        body,
        RumError::MissingField {
            field: "signature",
            ..
        }
    );
    let body = json!({ "payload": payload(1).to_string(), "signature": "x" }).to_string();
    assert_refused!(
        body,
        RumError::WrongType {
            field: "signature",
            ..
        }
    );
}

#[test]
fn a_payload_that_is_not_a_string_is_refused() {
    let body = json!({ "payload": payload(1), "signature": {} }).to_string();
    assert_refused!(body, RumError::PayloadNotString { .. });
}

#[test]
fn a_payload_that_is_not_json_is_refused() {
    let body = json!({ "payload": "{not json", "signature": {} }).to_string();
    assert_refused!(body, RumError::PayloadNotJson { .. });
    let body = json!({ "payload": "[1]", "signature": {} }).to_string();
    assert_refused!(body, RumError::PayloadNotJson { .. });
}

#[test]
fn a_missing_report_id_is_refused() {
    let body = with(|p| set(p, "/asset_identification/report_id", None));
    assert_refused!(
        body,
        RumError::MissingField {
            field: "asset_identification.report_id",
            ..
        }
    );
}

#[test]
fn a_missing_udi_pid_is_refused() {
    let body = with(|p| set(p, "/asset_identification/instance/sudi/udi_pid", None));
    let field = "asset_identification.instance.sudi.udi_pid";
    assert_refused!(body, RumError::MissingField { field: f, .. } if f == field);
}

#[test]
fn a_missing_udi_serial_number_is_refused() {
    let body = with(|p| {
        set(
            p,
            "/asset_identification/instance/sudi/udi_serial_number",
            None,
        )
    });
    let field = "asset_identification.instance.sudi.udi_serial_number";
    assert_refused!(body, RumError::MissingField { field: f, .. } if f == field);
    // A missing parent object is the same missing field.
    let body = with(|p| set(p, "/asset_identification/instance", None));
    assert_refused!(body, RumError::MissingField { field: f, .. } if f.ends_with("udi_pid"));
}

#[test]
fn a_missing_entitlement_tag_is_refused() {
    let body = with(|p| set(p, "/meta/entitlement_tag", None));
    assert_refused!(
        body,
        RumError::MissingField {
            field: "meta.entitlement_tag",
            ..
        }
    );
}

#[test]
fn a_missing_asset_name_is_refused() {
    let body = with(|p| set(p, "/asset_identification/asset", None));
    assert_refused!(
        body,
        RumError::MissingField {
            field: "asset_identification.asset.name",
            ..
        }
    );
}

#[test]
fn missing_measurements_are_refused() {
    let body = with(|p| set(p, "/measurements", None));
    assert_refused!(
        body,
        RumError::MissingField {
            field: "measurements",
            ..
        }
    );
    let body = measurements(json!({}));
    assert_refused!(
        body,
        RumError::WrongType {
            field: "measurements",
            ..
        }
    );
}

#[test]
fn a_report_id_that_is_not_a_non_negative_integer_is_refused() {
    for id in [json!(-1), json!("1671840750"), json!(1.5), json!(null)] {
        let body = with(|p| set(p, "/asset_identification/report_id", Some(id)));
        assert_refused!(body, RumError::InvalidReportId { .. });
    }
}

#[test]
fn a_report_without_a_count_measurement_is_refused() {
    assert_refused!(measurements(json!([])), RumError::NoCountMeasurement { .. });
    let other = json!([{ "end_time": 1, "value": { "type": "count", "value": "1" } }]);
    assert_refused!(measurements(other), RumError::NoCountMeasurement { .. });
}

#[test]
fn a_malformed_count_measurement_is_refused() {
    let no_end = json!([{ "value": { "type": "COUNT", "value": "1" } }]);
    assert_refused!(
        measurements(no_end),
        RumError::InvalidMeasurement { measurement: 0, .. }
    );
    let bad_end = json!([{ "end_time": -5, "value": { "type": "COUNT", "value": "1" } }]);
    assert_refused!(measurements(bad_end), RumError::InvalidMeasurement { .. });
    let no_value = json!([{ "end_time": 1, "value": { "type": "COUNT" } }]);
    assert_refused!(measurements(no_value), RumError::InvalidMeasurement { .. });
    let not_object = json!([{ "end_time": 1, "value": { "type": "COUNT", "value": "1" } }, 3]);
    assert_refused!(
        measurements(not_object),
        RumError::InvalidMeasurement { measurement: 1, .. }
    );
}

#[test]
fn a_count_that_is_not_a_decimal_non_negative_integer_is_refused() {
    let values = [
        json!(""),
        json!(" 3"),
        json!("3 "),
        json!("+3"),
        json!("-3"),
        json!("3.0"),
        json!("0x3"),
        json!("٣"),
        json!(-3),
        json!(3.5),
        json!(null),
        json!(true),
    ];
    for value in values {
        // An older measurement is checked too, not only the latest.
        let list = json!([
            { "end_time": 1, "value": { "type": "COUNT", "value": value } },
            { "end_time": 2, "value": { "type": "COUNT", "value": "1" } }
        ]);
        assert_refused!(
            measurements(list),
            RumError::InvalidCount { measurement: 0, .. }
        );
    }
}

#[test]
fn a_count_above_the_maximum_is_refused_naming_it() {
    let values = [
        json!("1000000000001"),
        json!(1_000_000_000_001u64),
        json!(u64::MAX),
        json!(i64::MAX),
        json!("18446744073709551615"),
        json!("99999999999999999999999999"),
        json!(1e30),
    ];
    for value in values {
        let list = json!([{ "end_time": 1, "value": { "type": "COUNT", "value": value } }]);
        let e = parse(measurements(list).as_bytes()).expect_err("refused");
        assert!(matches!(e, RumError::CountTooLarge { .. }), "{e:?}");
        assert!(
            e.to_string().contains("maximum of 1000000000000 units"),
            "{e}"
        );
    }
    // An integer literal beyond u64 (parsed as a float) is too large, not malformed.
    let huge = measurements(json!([{ "end_time": 1, "value": { "type": "COUNT", "value": 0 } }]))
        .replace(
            "\\\"value\\\":0",
            "\\\"value\\\":123456789012345678901234567890",
        );
    assert_refused!(huge, RumError::CountTooLarge { .. });
}

#[test]
fn more_than_a_thousand_reports_are_refused() {
    let one = envelope(&payload(1));
    let many: Vec<String> = (0..=MAX_REPORTS as u64)
        .map(|id| envelope(&payload(id)))
        .collect();
    assert_refused!(xml(&many), RumError::TooManyReports { .. });
    assert_refused!(
        format!("[{}]", many.join(",")),
        RumError::TooManyReports { .. }
    );
    let thousand = vec![one; MAX_REPORTS];
    // A thousand copies of one report are accepted (and de-duplicated to one).
    assert_eq!(ok(&format!("[{}]", thousand.join(","))).len(), 1);
}

#[test]
fn a_string_field_over_1024_bytes_is_refused() {
    let long = "A".repeat(MAX_FIELD_BYTES + 1);
    let body = with(|p| {
        set(
            p,
            "/asset_identification/instance/sudi/udi_serial_number",
            Some(json!(long)),
        )
    });
    assert_refused!(body, RumError::FieldTooLong { len: 1025, .. });
    let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!("é".repeat(513)))));
    assert_refused!(
        body,
        RumError::FieldTooLong {
            field: "meta.entitlement_tag",
            len: 1026,
            ..
        }
    );
    let limit = "B".repeat(MAX_FIELD_BYTES);
    let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!(limit))));
    assert_eq!(ok(&body)[0].entitlement_tag.len(), MAX_FIELD_BYTES);
}

#[test]
fn an_empty_or_non_string_text_field_is_refused() {
    let body = with(|p| {
        set(
            p,
            "/asset_identification/instance/sudi/udi_pid",
            Some(json!("")),
        )
    });
    assert_refused!(body, RumError::InvalidText { .. });
    let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!("a\nb"))));
    assert_refused!(body, RumError::InvalidText { .. });
    let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!(["a"]))));
    assert_refused!(
        body,
        RumError::WrongType {
            field: "meta.entitlement_tag",
            ..
        }
    );
}

#[test]
fn error_messages_name_the_report_and_the_field() {
    let bad = with(|p| {
        set(p, "/asset_identification/report_id", Some(json!(77)));
        set(p, "/meta/entitlement_tag", None);
    });
    let err = parse(xml(&[envelope(&payload(1)), bad]).as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "report #1 (report_id 77): `meta.entitlement_tag` is missing"
    );
    let err = parse(b"[1]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "report #0: a RUM report must be a JSON object `{\"payload\", \"signature\"}`"
    );
}

mod shapes;
