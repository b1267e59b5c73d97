//! Tests of `cisco::export`: the layout, the exact bytes of what the portal reads, and
//! determinism.

use std::io::Read;

use flate2::read::GzDecoder;
use time::macros::datetime;

use super::*;
use crate::protocol::rum;

/// A real report from a Cisco C9800-CL (see tests/data/cisco-rum/).
const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/cisco-rum/example-rum-1671840750.xml"
));

fn fixture_envelope() -> String {
    rum::parse(FIXTURE.as_bytes()).unwrap().remove(0).raw
}

fn udi(serial: &str) -> Udi {
    Udi {
        pid: "C9800-CL-K9".into(),
        serial: serial.into(),
    }
}

fn devices() -> Vec<DeviceUsage> {
    vec![
        DeviceUsage {
            udi: udi("9NTUEA8FIIH"),
            reports: vec![fixture_envelope()],
        },
        DeviceUsage {
            udi: udi("SERIAL2"),
            reports: vec![
                r#"{"payload":"{}","signature":{}}"#.into(),
                "{\"b\": 2}".into(),
            ],
        },
    ]
}

fn usage(devices: &[DeviceUsage]) -> Usage<'_> {
    Usage {
        account: "Example Corp",
        account_id: "",
        va: "Campus",
        va_id: "",
        created_by: "0190a000-0000-7000-8000-000000000001",
        time: datetime!(2024-01-05 14:03:09.417 UTC),
        first_file_id: 1,
        devices,
    }
}

fn export(usage: &Usage<'_>) -> (Vec<u8>, Exported) {
    let mut out = Vec::new();
    let exported = write(usage, &mut out, |_| {}).unwrap();
    (out, exported)
}

/// A member's (mtime, uid, gid, mode).
type Meta = (u64, u64, u64, u32);

/// The members of a gzip tar: name, content, and header fields.
fn members(gz: &[u8]) -> Vec<(String, Vec<u8>, Meta)> {
    let mut archive = tar::Archive::new(GzDecoder::new(gz));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let meta = (
                h.mtime().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mode().unwrap(),
            );
            (name, data, meta)
        })
        .collect()
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn the_name_time_is_the_samples_format_in_utc() {
    assert_eq!(
        stamp(datetime!(2024-01-05 14:03:09.417 UTC)),
        "24Jan05_14_03_09_417"
    );
    assert_eq!(
        stamp(datetime!(2031-12-31 23:59:59.9999 -01:00)),
        "32Jan01_00_59_59_999"
    );
}

#[test]
fn the_file_holds_the_manifest_and_the_va_archive_of_device_files() {
    let devices = devices();
    let (out, exported) = export(&usage(&devices));
    assert_eq!(exported.file_name, "UD_SA_24Jan05_14_03_09_417.tar.gz");
    assert_eq!(exported.va_file_name, "UD_VA_24Jan05_14_03_09_417.tar.gz");
    let outer = members(&out);
    let names: Vec<&str> = outer.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["manifest.mf", "UD_VA_24Jan05_14_03_09_417.tar.gz"]);
    assert_eq!(
        String::from_utf8(outer[0].1.clone()).unwrap(),
        "Manifest-Version: 1.0\n\
         Created-By: \"{\\\"uuid\\\": \\\"0190a000-0000-7000-8000-000000000001\\\"}\"\n\
         Smart-Account: Example Corp\n\
         Smart-Account-ID:\n\
         \n\
         Name: /UD_VA_24Jan05_14_03_09_417.tar.gz\n\
         Specification-VA: Campus\n\
         Specification-VA-ID: \n"
    );
    let inner = members(&outer[1].1);
    let names: Vec<&str> = inner.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "dev_1_24Jan05_14_03_09_417.txt",
            "dev_2_24Jan05_14_03_09_417.txt"
        ]
    );
    let first = String::from_utf8(inner[0].1.clone()).unwrap();
    assert_eq!(
        first,
        format!(
            "<smartLicense><RUMReport><![CDATA[{}]]></RUMReport></smartLicense>",
            fixture_envelope()
        )
    );
    assert_eq!(
        inner[1].1,
        b"<smartLicense><RUMReport><![CDATA[{\"payload\":\"{}\",\"signature\":{}}]]></RUMReport>\
          <RUMReport><![CDATA[{\"b\": 2}]]></RUMReport></smartLicense>"
    );
    // The real report reads back byte for byte through the satellite's own RUM parser.
    assert_eq!(
        rum::parse(first.as_bytes()).unwrap()[0].raw,
        fixture_envelope()
    );
    for (name, _, meta) in outer.iter().chain(&inner) {
        assert_eq!(*meta, (1704463389, 0, 0, 0o644), "{name}");
    }
    assert_eq!(
        exported.devices,
        [
            ExportedDevice {
                file_id: 1,
                file_name: "dev_1_24Jan05_14_03_09_417.txt".into(),
                udi: udi("9NTUEA8FIIH"),
                reports: 1
            },
            ExportedDevice {
                file_id: 2,
                file_name: "dev_2_24Jan05_14_03_09_417.txt".into(),
                udi: udi("SERIAL2"),
                reports: 2
            }
        ]
    );
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let devices = devices();
    let (a, _) = export(&usage(&devices));
    let (b, _) = export(&usage(&devices));
    assert_eq!(a, b);
    // Golden: the inner tar, uncompressed (independent of the compressor's version).
    let outer = members(&a);
    let inner_tar = gunzip(&outer[1].1);
    assert_eq!(inner_tar.len(), 5120);
    assert_eq!(
        crate::hex::encode(&crate::protocol::reservation::sha256(&inner_tar)),
        GOLDEN_INNER_TAR_SHA256
    );
    let mut later = usage(&devices);
    later.time = datetime!(2024-01-05 14:03:09.418 UTC);
    assert_ne!(export(&later).0, a);
}

const GOLDEN_INNER_TAR_SHA256: &str =
    "2d75df8a1474a9c620c42d396892785824c15fbb2d2a6e2a648f54f5e5f1b08d";

#[test]
fn a_report_holding_the_cdata_terminator_is_split_and_reads_back_whole() {
    let report = r#"{"payload":"{\"tag\":\"a]]>b]]>\"}","signature":{}}"#.to_owned();
    let file = device_file(std::slice::from_ref(&report));
    assert_eq!(
        String::from_utf8(file.clone()).unwrap(),
        r#"<smartLicense><RUMReport><![CDATA[{"payload":"{\"tag\":\"a]]]]><![CDATA[>b]]]]><![CDATA[>\"}","signature":{}}]]></RUMReport></smartLicense>"#
    );
    // The satellite's RUM parser joins the sections again (the report itself is refused for
    // its missing fields only after its text was read back exactly).
    let body = String::from_utf8(file).unwrap();
    let err = rum::parse(body.as_bytes()).unwrap_err();
    assert!(matches!(err, rum::RumError::MissingField { .. }), "{err}");
    let fixture = fixture_envelope().replace("DNA_NWStack", "DNA]]>NWStack");
    let body = device_file(std::slice::from_ref(&fixture));
    let parsed = rum::parse(&body).unwrap();
    assert_eq!(parsed[0].raw, fixture);
    assert!(parsed[0].entitlement_tag.contains("DNA]]>NWStack"));
}

#[test]
fn progress_is_reported_after_each_device() {
    let devices = devices();
    let mut seen = Vec::new();
    write(&usage(&devices), Vec::new(), |p| seen.push(p)).unwrap();
    assert_eq!(
        seen,
        [
            Progress {
                devices_done: 1,
                devices_total: 2,
                reports_done: 1
            },
            Progress {
                devices_done: 2,
                devices_total: 2,
                reports_done: 3
            }
        ]
    );
}

#[test]
fn nothing_to_export_and_bad_names_are_refused_with_the_fix() {
    let devices = devices();
    let refused = |usage: &Usage<'_>| write(usage, Vec::new(), |_| {}).unwrap_err().to_string();
    assert_eq!(
        refused(&usage(&[])),
        "there is nothing to export: no device has a report"
    );
    let mut bad = usage(&devices);
    bad.va = "Campus\nName: x";
    assert_eq!(
        refused(&bad),
        "the VA \"Campus\\nName: x\" cannot go in the manifest: it holds a control character; rename it or leave the field empty"
    );
    let mut bad = usage(&devices);
    bad.created_by = "a\"b";
    assert!(refused(&bad).contains("quote"));
    let long = "x".repeat(256);
    let mut bad = usage(&devices);
    bad.account = &long;
    assert!(refused(&bad).contains("longer than 255 bytes"));
    let empty = [DeviceUsage {
        udi: udi("S"),
        reports: vec![],
    }];
    assert_eq!(
        refused(&usage(&empty)),
        "device C9800-CL-K9 S has no report to export"
    );
    let blank = [DeviceUsage {
        udi: udi("S"),
        reports: vec!["{}".into(), String::new()],
    }];
    assert_eq!(
        refused(&usage(&blank)),
        "device C9800-CL-K9 S: report #1 is empty"
    );
}
