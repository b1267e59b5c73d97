//! Tests of `cisco::pull`: the device's answers and the import body.

use serde_json::json;

use super::*;

/// A real report from a Cisco C9800-CL (see tests/data/cisco-rum/), as its envelope text.
fn fixture_envelope() -> String {
    let xml = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cisco-rum/example-rum-1671840750.xml"
    ));
    rum::parse(xml.as_bytes()).unwrap().remove(0).raw
}

/// A small pulled report with `header`, as `all-reports` carries it.
fn envelope(report_id: u64) -> String {
    let payload = json!({
        "asset_identification": {
            "report_id": report_id,
            "asset": { "name": "regid.2018-05.com.cisco.WLC_9500C,1.0_x" },
            "instance": { "sudi": { "udi_pid": "C9800-CL-K9", "udi_serial_number": "SERIAL1" } }
        },
        "meta": { "entitlement_tag": "regid.2018-06.com.cisco.DNA_NWStack,1.0_x" },
        "measurements": [{ "end_time": 300, "value": { "type": "COUNT", "value": "2" } }]
    });
    json!({ "payload": payload.to_string(), "header": { "type": "rum" }, "signature": {} })
        .to_string()
}

fn ids(pulled: &Pulled) -> Vec<u64> {
    pulled.reports.iter().map(|r| r.report_id).collect()
}

#[test]
fn the_usage_answer_goes_through_the_rum_parser_keeping_each_report_verbatim() {
    let real = fixture_envelope();
    let body = format!(
        "{{\"usage\": [{real}, {}, {}], \"extra\": 1}}",
        envelope(5),
        envelope(5)
    );
    let pulled = decode_usage(body.as_bytes()).unwrap();
    assert_eq!(ids(&pulled), [1671840750, 5]);
    assert_eq!(pulled.reports[0].raw, real);
}

#[test]
fn an_absent_or_empty_usage_is_nothing_and_one_object_is_one_report() {
    for body in [
        "{}",
        "{\"usage\": null}",
        "{\"usage\": []}",
        "\u{feff} {\"other\": 1}",
    ] {
        let pulled = decode_usage(body.as_bytes()).unwrap();
        assert!(
            pulled.reports.is_empty() && pulled.other.is_empty(),
            "{body}"
        );
    }
    let pulled = decode_usage(format!("{{\"usage\": {}}}", envelope(9)).as_bytes()).unwrap();
    assert_eq!(ids(&pulled), [9]);
    assert_eq!(pulled.reports[0].raw, envelope(9));
}

#[test]
fn garbage_truncated_or_misshapen_answers_are_refused() {
    let truncated = format!("{{\"usage\": [{}", envelope(1));
    for body in [
        &b"<html>503</html>"[..],
        b"",
        b"\xff\xfe",
        b"[1]",
        truncated.as_bytes(),
    ] {
        let e = decode_usage(body).unwrap_err();
        assert!(
            matches!(
                e,
                PullError::InvalidJson { .. } | PullError::WrongType { .. }
            ),
            "{e:?}"
        );
    }
    assert_eq!(
        decode_usage(b"<html>").unwrap_err().to_string(),
        "`the answer` must be a JSON object"
    );
    assert_eq!(
        decode_usage(b"{\"usage\": \"all\"}")
            .unwrap_err()
            .to_string(),
        "`usage` must be an array of RUM reports"
    );
    assert_eq!(
        decode_usage(b"{\"usage\": [], \"usage\": []}").unwrap_err(),
        PullError::InvalidJson {
            reason: "duplicate field `usage` at line 1 column 21".into()
        }
    );
    let bad = envelope(1).replace("\"signature\"", "\"sig\"");
    assert_eq!(
        decode_usage(format!("{{\"usage\": [{bad}]}}").as_bytes())
            .unwrap_err()
            .to_string(),
        "`usage`: report #0: `signature` is missing"
    );
}

#[test]
fn ten_thousand_reports_from_one_device_are_taken() {
    let reports: Vec<String> = (1..=10_000).map(envelope).collect();
    let body = format!("{{\"usage\":[{}]}}", reports.join(","));
    let pulled = decode_usage(body.as_bytes()).unwrap();
    assert_eq!(pulled.reports.len(), 10_000);
    let more = format!("{{\"usage\":[{},{}]}}", reports.join(","), envelope(10_001));
    assert_eq!(
        decode_usage(more.as_bytes()).unwrap_err(),
        PullError::Rum(rum::RumError::TooManyReports { max: 10_000 })
    );
}

#[test]
fn an_answer_over_the_size_limit_is_refused_before_parsing() {
    let big = vec![b' '; MAX_USAGE_BYTES + 1];
    assert_eq!(
        decode_usage(&big).unwrap_err().to_string(),
        "the answer is 67108865 bytes, more than the 67108864 a device's usage may take"
    );
    let big = vec![b' '; MAX_LIST_BYTES + 1];
    assert!(matches!(
        decode_list(&big),
        Err(PullError::TooLarge { what: "list", .. })
    ));
}

#[test]
fn the_list_keeps_each_entry_and_reads_its_report_id_when_present() {
    let body = br#"{"usage_list": [{"report_id": 17, "state": "CLOSED"}, {"id": "x"}, 3]}"#;
    let list = decode_list(body).unwrap();
    assert_eq!(
        list,
        [
            ListEntry {
                report_id: Some(17),
                raw: r#"{"report_id": 17, "state": "CLOSED"}"#.into()
            },
            ListEntry {
                report_id: None,
                raw: r#"{"id": "x"}"#.into()
            },
            ListEntry {
                report_id: None,
                raw: "3".into()
            }
        ]
    );
    assert!(decode_list(b"{}").unwrap().is_empty());
    assert!(decode_list(b"{\"usage_list\": null}").unwrap().is_empty());
    assert_eq!(
        decode_list(b"{\"usage_list\": {}}").unwrap_err(),
        PullError::WrongType {
            field: "usage_list",
            expected: "an array"
        }
    );
    assert!(matches!(
        decode_list(b"{\"usage_list\": [1,"),
        Err(PullError::InvalidJson { .. })
    ));
    let many = format!("{{\"usage_list\": [{}]}}", vec!["{}"; 10_001].join(","));
    assert_eq!(
        decode_list(many.as_bytes()).unwrap_err(),
        PullError::TooManyEntries
    );
    let max = format!("{{\"usage_list\": [{}]}}", vec!["{}"; 10_000].join(","));
    assert_eq!(decode_list(max.as_bytes()).unwrap().len(), 10_000);
}

#[test]
fn import_bodies_carry_the_file_byte_for_byte_in_either_encoding() {
    let ack =
        b"<smartLicense><smartLicenseRumAck><data>a'b</data></smartLicenseRumAck></smartLicense>\n";
    let raw = ImportEncoding::RawXml;
    assert_eq!(encode_import(ack, &raw), ack);
    assert_eq!(decode_import(&encode_import(ack, &raw), &raw).unwrap(), ack);
    let b64 = ImportEncoding::base64_json("ack_file").unwrap();
    let body = encode_import(ack, &b64);
    assert!(
        body.starts_with(b"{\"ack_file\":\"PHNtYXJ0TGljZW5zZT"),
        "{body:?}"
    );
    assert_eq!(decode_import(&body, &b64).unwrap(), ack);
}

#[test]
fn bad_import_bodies_and_field_names_are_refused() {
    let b64 = ImportEncoding::base64_json("data").unwrap();
    for body in [
        &b"{}"[..],
        b"{\"data\": 1}",
        b"{\"data\": \"!!\"}",
        b"{\"data\":\"\",\"x\":1}",
        b"<x/>",
    ] {
        let e = decode_import(body, &b64).unwrap_err();
        assert!(
            matches!(
                e,
                PullError::BadImport {
                    encoding: "base64 in JSON",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_eq!(
        decode_import(b"{\"data\": 1}", &ImportEncoding::RawXml)
            .unwrap_err()
            .to_string(),
        "the import body is not what the `raw XML` encoding sends: it does not start with `<`"
    );
    let huge = vec![b'<'; MAX_IMPORT_BYTES + 1];
    assert!(decode_import(&huge, &ImportEncoding::RawXml).is_err());
    for name in ["", "a b", "x\"", &"y".repeat(65)] {
        assert_eq!(
            ImportEncoding::base64_json(name).unwrap_err(),
            PullError::BadFieldName(name.into())
        );
    }
}

#[test]
fn request_paths_are_the_documented_ones() {
    assert_eq!(days(30), "/smartlic-service/days/30");
    for path in [CLOSE_REPORTS, LIST, ALL_REPORTS, IMPORT] {
        assert!(path.starts_with("/smartlic-service/"), "{path}");
    }
}
