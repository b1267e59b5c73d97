//! Tests of `cisco::ack`: archives laid out as the research infers the portal's answer, and
//! every refusal.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use time::macros::datetime;

use super::*;
use crate::protocol::cisco::export;
use crate::protocol::device::Udi;

const ACK_1: &str =
    "<smartLicense><smartLicenseRumAck><data>OPAQUE-1</data></smartLicenseRumAck></smartLicense>";
const ACK_2: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<smartLicense>\n<smartLicenseRumAck>\n<data>OPAQUE-2</data>\n<signature>s</signature>\n</smartLicenseRumAck>\n<smartLicensePolicy><policy>P</policy></smartLicensePolicy>\n</smartLicense>\n";

/// One tar member: a name written as is (unchecked, so tests can write hostile ones), a type
/// and content.
struct Member<'a> {
    name: &'a str,
    kind: tar::EntryType,
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind: tar::EntryType::Regular,
        data,
    }
}

fn tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let mut header = tar::Header::new_ustar();
        header.as_mut_bytes()[..m.name.len()].copy_from_slice(m.name.as_bytes());
        header.set_entry_type(m.kind);
        header.set_size(m.data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        if m.kind.is_symlink() || m.kind.is_hard_link() {
            header.set_link_name("ACK_dev_1_x").unwrap();
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(m.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn targz(members: &[Member<'_>]) -> Vec<u8> {
    gz(&tar(members))
}

/// The portal's answer as inferred: an outer archive holding `ACK_UD_VA_....tar.gz`.
fn portal_archive() -> Vec<u8> {
    let inner = targz(&[
        file("ACK_dev_1_24Jan05_14_03_09_417.txt", ACK_1.as_bytes()),
        file("ACK_dev_2_24Jan05_14_03_09_417.txt", ACK_2.as_bytes()),
    ]);
    targz(&[
        file("ACK_UD_VA_24Jan05_14_03_09_417.tar.gz", &inner),
        file("README.txt", b"hello"),
    ])
}

fn refused(bytes: &[u8]) -> AckError {
    match read(bytes) {
        Err(e) => e,
        Ok(a) => panic!("accepted: {a:?}"),
    }
}

#[test]
fn the_portals_archive_gives_each_ack_verbatim_with_its_device_file_number() {
    let archive = read(&portal_archive()[..]).unwrap();
    assert_eq!(archive.ignored, ["README.txt"]);
    let [one, two] = &archive.acks[..] else {
        panic!("{:?}", archive.acks)
    };
    assert_eq!(one.file_id, 1);
    assert_eq!(
        one.member,
        "ACK_UD_VA_24Jan05_14_03_09_417.tar.gz/ACK_dev_1_24Jan05_14_03_09_417.txt"
    );
    assert_eq!(one.bytes, ACK_1.as_bytes());
    assert_eq!(
        one.rum_ack_bytes(),
        b"<smartLicenseRumAck><data>OPAQUE-1</data></smartLicenseRumAck>"
    );
    assert_eq!(one.policy_bytes().count(), 0);
    assert_eq!(two.file_id, 2);
    assert_eq!(two.bytes, ACK_2.as_bytes());
    assert_eq!(
        two.policy_bytes().collect::<Vec<_>>(),
        [&b"<smartLicensePolicy><policy>P</policy></smartLicensePolicy>"[..]]
    );
}

#[test]
fn ack_files_directly_in_the_archive_and_directories_are_read() {
    let bytes = targz(&[
        Member {
            name: "acks/",
            kind: tar::EntryType::Directory,
            data: b"",
        },
        file("acks/ACK_dev_7_x.txt", ACK_1.as_bytes()),
    ]);
    let archive = read(&bytes[..]).unwrap();
    assert_eq!(archive.acks[0].file_id, 7);
    assert_eq!(archive.acks[0].member, "acks/ACK_dev_7_x.txt");
}

#[test]
fn an_input_that_is_not_gzip_is_refused() {
    assert_eq!(
        refused(b"").to_string(),
        "the file is not gzip-compressed (it does not start with 1f 8b); give the ACK archive exactly as Cisco's portal returned it"
    );
    assert!(matches!(
        refused(&tar(&[file("ACK_dev_1_x", ACK_1.as_bytes())])),
        AckError::NotGzip { .. }
    ));
    let inner_plain = targz(&[file("ACK_UD_VA_x.tar.gz", b"plain text")]);
    assert_eq!(
        refused(&inner_plain),
        AckError::NotGzip {
            what: "member \"ACK_UD_VA_x.tar.gz\"".into()
        }
    );
}

#[test]
fn gzip_that_is_not_tar_is_refused() {
    let e = refused(&gz(&[b'x'; 2000]));
    assert!(matches!(e, AckError::NotTar { .. }), "{e:?}");
    let mut damaged = portal_archive();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    damaged[middle + 1] ^= 0xff;
    let e = refused(&damaged);
    assert!(
        matches!(
            e,
            AckError::Damaged { .. } | AckError::NotTar { .. } | AckError::NotGzip { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn a_truncated_archive_is_refused_wherever_it_is_cut() {
    let whole = portal_archive();
    for cut in [
        3,
        10,
        whole.len() / 3,
        whole.len() / 2,
        whole.len() - 9,
        whole.len() - 1,
    ] {
        let e = refused(&whole[..cut]);
        assert!(
            matches!(e, AckError::Truncated { .. }),
            "cut at {cut} of {}: {e:?}",
            whole.len()
        );
    }
    assert_eq!(
        refused(&whole[..whole.len() - 1]).to_string(),
        "the file ends too early (truncated in transfer or on disk?); give the ACK archive exactly as Cisco's portal returned it"
    );
}

#[test]
fn a_member_name_leaving_the_archive_is_refused() {
    for name in [
        "../ACK_dev_1_x",
        "/etc/ACK_dev_1_x",
        "a/../../ACK_dev_1_x",
        "a\\..\\b",
    ] {
        let e = refused(&targz(&[file(name, ACK_1.as_bytes())]));
        assert_eq!(
            e,
            AckError::UnsafePath {
                member: name.into()
            }
        );
    }
    // Inside an inner archive too.
    let inner = targz(&[file("../ACK_dev_1_x", ACK_1.as_bytes())]);
    let e = refused(&targz(&[file("ACK_UD_VA_x.tar.gz", &inner)]));
    assert_eq!(
        e,
        AckError::UnsafePath {
            member: "ACK_UD_VA_x.tar.gz/../ACK_dev_1_x".into()
        }
    );
}

#[test]
fn links_and_special_members_are_refused() {
    for (kind, what) in [
        (tar::EntryType::Symlink, "symbolic link"),
        (tar::EntryType::Link, "hard link"),
        (tar::EntryType::Fifo, "special member (tar type '6')"),
    ] {
        let bytes = targz(&[
            file("ACK_dev_1_x", ACK_1.as_bytes()),
            Member {
                name: "ACK_dev_2_x",
                kind,
                data: b"",
            },
        ]);
        assert_eq!(
            refused(&bytes),
            AckError::NotAFile {
                member: "ACK_dev_2_x".into(),
                kind: what.into()
            }
        );
    }
}

#[test]
fn an_oversized_member_is_refused_before_it_is_read() {
    let limits = Limits {
        ack_bytes: 64,
        ..Limits::DEFAULT
    };
    let e = read_with(&portal_archive()[..], &limits).unwrap_err();
    assert_eq!(
        e.to_string(),
        "member \"ACK_UD_VA_24Jan05_14_03_09_417.tar.gz/ACK_dev_1_24Jan05_14_03_09_417.txt\" is larger than 64 bytes, far more than ACKs take; if it is genuine, split the upload into smaller exports"
    );
    // A header announcing a huge member, with nothing behind it, is refused on the header.
    let mut header = tar::Header::new_ustar();
    header.set_path("ACK_dev_1_x").unwrap();
    header.set_size(1 << 40);
    header.set_cksum();
    let e = refused(&gz(header.as_bytes()));
    assert!(
        matches!(e, AckError::TooLarge { max: 1048576, .. }),
        "{e:?}"
    );
}

#[test]
fn a_gzip_bomb_ends_in_an_error_not_in_memory_exhaustion() {
    // 300 MiB of zeros compress to well under 1 MiB; the default limit is 256 MiB.
    let mut bomb = GzEncoder::new(Vec::new(), Compression::default());
    bomb.write_all(&tar(&[file("ACK_dev_1_x", ACK_1.as_bytes())])[..1024])
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..300 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    assert_eq!(
        refused(&bomb),
        AckError::TooLarge {
            what: "the file once decompressed".into(),
            max: 256 << 20
        }
    );
}

#[test]
fn too_many_members_are_refused() {
    let names: Vec<String> = (0..5).map(|i| format!("ACK_dev_{i}_x")).collect();
    let members: Vec<Member<'_>> = names.iter().map(|n| file(n, ACK_1.as_bytes())).collect();
    let limits = Limits {
        members: 4,
        ..Limits::DEFAULT
    };
    let e = read_with(&targz(&members)[..], &limits).unwrap_err();
    assert_eq!(e, AckError::TooManyMembers { max: 4 });
    assert_eq!(read(&targz(&members)[..]).unwrap().acks.len(), 5);
}

#[test]
fn an_archive_without_an_ack_is_refused() {
    let e = refused(&targz(&[file("notes.txt", b"x")]));
    assert_eq!(
        e.to_string(),
        "the archive holds no ACK (no `ACK_dev_...` file); give the ACK archive exactly as Cisco's portal returned it"
    );
}

#[test]
fn a_usage_export_is_not_taken_for_an_ack_archive() {
    let devices = [export::DeviceUsage {
        udi: Udi {
            pid: "C9800-CL-K9".into(),
            serial: "S1".into(),
        },
        reports: vec![r#"{"payload":"{}","signature":{}}"#.into()],
    }];
    let usage = export::Usage {
        account: "A",
        account_id: "",
        va: "V",
        va_id: "",
        created_by: "u",
        time: datetime!(2024-01-05 14:03:09 UTC),
        first_file_id: 1,
        devices: &devices,
    };
    let mut bytes = Vec::new();
    export::write(&usage, &mut bytes, |_| {}).unwrap();
    let e = refused(&bytes);
    assert_eq!(
        e.to_string(),
        "the archive holds no ACK (no `ACK_dev_...` file) — this is a usage export (UD_SA_...) for the portal, not the ACK archive it returns; give the ACK archive exactly as Cisco's portal returned it"
    );
}

#[test]
fn an_ack_file_of_the_wrong_shape_or_name_is_refused() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "ACK_dev_1_x",
            "<smartLicense></smartLicense>",
            "it holds no `<smartLicenseRumAck>`",
        ),
        (
            "ACK_dev_1_x",
            "<other/>",
            "its root is not `<smartLicense>`",
        ),
        (
            "ACK_dev_1_x",
            "<smartLicense><smartLicenseRumAck><database/></smartLicenseRumAck></smartLicense>",
            "its `<smartLicenseRumAck>` has no `<data>`",
        ),
        (
            "ACK_dev_1_x",
            "<smartLicense><smartLicenseRumAck><data>x</data></smartLicense>",
            "an element is not closed",
        ),
        (
            "ACK_dev_1_x",
            "<smartLicense><smartLicenseRumAck><data/></smartLicenseRumAck><smartLicenseRumAck><data/></smartLicenseRumAck></smartLicense>",
            "it holds more than one `<smartLicenseRumAck>`",
        ),
        (
            "ACK_dev_1_x",
            "<smartLicense><smartLicenseRumAck><data>x</data></smartLicenseRumAck>",
            "its root is not `<smartLicense>`",
        ),
    ];
    for (name, content, reason) in cases {
        let e = refused(&targz(&[file(name, content.as_bytes())]));
        assert_eq!(
            e,
            AckError::NotAnAck {
                member: name.into(),
                reason: reason.into()
            },
            "{content}"
        );
    }
    for name in [
        "ACK_dev_x_1",
        "ACK_dev__1",
        "ACK_dev_99999999999999999999_1",
    ] {
        let e = refused(&targz(&[file(name, ACK_1.as_bytes())]));
        assert_eq!(
            e,
            AckError::BadAckName {
                member: name.into()
            }
        );
    }
}

#[test]
fn two_acks_for_one_device_file_are_refused() {
    let inner = targz(&[file("ACK_dev_3_b", ACK_1.as_bytes())]);
    let bytes = targz(&[
        file("ACK_dev_3_a", ACK_1.as_bytes()),
        file("ACK_UD_VA_x.tar.gz", &inner),
    ]);
    assert_eq!(
        refused(&bytes),
        AckError::Duplicate {
            file_id: 3,
            first: "ACK_dev_3_a".into(),
            second: "ACK_UD_VA_x.tar.gz/ACK_dev_3_b".into()
        }
    );
}

#[test]
fn nested_archives_share_one_decompressed_budget() {
    // Each inner archive stays under the limit, and so does the outer one; together they would
    // hold several times the limit in memory (a nested gzip bomb), so the whole is refused.
    let padded = format!("{}{}", &ACK_1[..ACK_1.len() - 15], " ".repeat(900)) + "</smartLicense>";
    let names: Vec<Vec<String>> = (0..10)
        .map(|i| (0..8).map(|j| format!("ACK_dev_{}_x", i * 8 + j)).collect())
        .collect();
    let inners: Vec<Vec<u8>> = names
        .iter()
        .map(|n| {
            targz(
                &n.iter()
                    .map(|n| file(n, padded.as_bytes()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let inner_names: Vec<String> = (0..10).map(|i| format!("ACK_UD_VA_{i}.tar.gz")).collect();
    let outer = targz(
        &inner_names
            .iter()
            .zip(&inners)
            .map(|(n, data)| file(n, data))
            .collect::<Vec<_>>(),
    );
    let limits = Limits {
        archive_bytes: 16 << 10,
        ..Limits::DEFAULT
    };
    assert!(tar(&[file("x", &inners[0])]).len() < 16 << 10);
    let e = read_with(&outer[..], &limits).unwrap_err();
    assert!(matches!(e, AckError::TooLarge { max: 16384, .. }), "{e:?}");
    // The same archive is read under the default limits: 80 ACKs.
    assert_eq!(read(&outer[..]).unwrap().acks.len(), 80);
}
