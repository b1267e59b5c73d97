//! Golden-bytes tests of every table: each pins a record's stored bytes (format byte first)
//! and its key. If one fails, the stored format changed: add a new `FORMAT` with an upgrade
//! path instead of editing the expected bytes. `every_table_has_a_golden_bytes_test` makes a
//! new table without one fail.

use std::collections::{BTreeMap, BTreeSet};

use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::domain::{
    AccountStatus, AuthorizationState, DeviceTrust, EntitlementStatus, InstanceSource,
    InstanceStatus, LicenseKind, LicenseSource, Outstanding, ReportHolder, Role, RoleGrant, Scope,
    Udi,
};
use crate::hex::encode as hex;
use crate::store::codec::encode;

fn id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn udi(pid: &str, serial: &str) -> Udi {
    Udi {
        pid: pid.into(),
        serial: serial.into(),
    }
}

/// Checks that `record` is stored as `bytes` (whitespace ignored) under `key`, both hex.
fn assert_golden<R: Record>(record: &R, key: &str, bytes: &str) {
    let encoded = encode(record);
    assert_eq!(
        encoded[0],
        R::FORMAT,
        "{}: the format byte comes first",
        R::TABLE
    );
    assert_eq!(
        hex(&encoded),
        bytes.replace(char::is_whitespace, ""),
        "{}: the stored bytes changed; add a new FORMAT with an upgrade instead of editing the \
         expected bytes",
        R::TABLE
    );
    assert_eq!(
        hex(&record.key()),
        key.replace(char::is_whitespace, ""),
        "{}: the key changed, so stored records would no longer be found under it",
        R::TABLE
    );
}

/// Declares the golden-bytes tests, each checking one or more records with [`assert_golden`],
/// and `GOLDEN_TABLES`, the tables they cover, so that a table cannot be left out unnoticed.
macro_rules! golden {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident() { $($ty:ty = $value:expr, key $key:expr, bytes $bytes:expr;)+ }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[test]
            fn $name() {
                $(assert_golden::<$ty>(&$value, $key, $bytes);)+
            }
        )*

        /// Every table a golden-bytes test above covers.
        const GOLDEN_TABLES: &[&str] = &[$($(<$ty as Record>::TABLE,)+)*];
    };
}

golden! {
    /// An account, field by field.
    fn golden_account() {
        Account = account(),
        key "01010101010101010101010101010101",
        bytes "01\
             1000000000000000\
             01010101010101010101010101010101\
             0400000000000000\
             61636d65\
             0800000000000000\
             61636d652e636f6d\
             01000000\
             ea070000\
             0200\
             03040500000000\
             000000\
             1000000000000000\
             02020202020202020202020202020202";
    }

    fn golden_license_and_event() {
        License = license(),
        key "03030303030303030303030303030303",
        bytes "01100000000000000003030303030303030303030303030303100000000000000001010101010101\
             01010101010101010110000000000000000202020202020202020202020202020201000000000000\
             0074010000000000000054050000000000000001000000ea070000010000000000000000000000eb\
             0700000100000000000000000000000100000000000100000000000000010000000000000078ea07\
             0000010000000000000000000000";
        Event = event(),
        key "0000000000000007",
        bytes "010700000000000000ea070000010000000000000000000000010000000000000061010000000000\
             000062010000000000000063000000010000000000000001000000000000006b0100000000000000\
             76";
    }

    fn golden_user_grants() {
        User = user(),
        key "04040404040404040404040404040404",
        bytes "0110000000000000000404040404040404040404040404040403000000000000006f707301000000\
             000000000400000002000000100000000000000005050505050505050505050505050505ea070000\
             010000000000000000000000";
    }

    /// A console password: the PHC string as given, keyed by the user's id.
    fn golden_user_password() {
        UserPassword = UserPassword {
            user: UserId(id(4)),
            phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            set_at: datetime!(2026-01-02 03:04:05 UTC),
        },
        key "04040404040404040404040404040404",
        bytes "011000000000000000040404040404040404040404040404042c00000000000000246172676f6e32\
             696424763d3139246d3d31393435362c743d322c703d3124633246736441246147467a6141ea0700\
             00020003040500000000000000";
    }

    /// A child's record on its upstream and one acknowledged item on a child.
    fn golden_sync_records() {
        ChildSatellite = child(),
        key "73697465",
        bytes GOLDEN_CHILD;
        SyncedItem = synced_item(),
        key "6465763a78",
        bytes GOLDEN_ITEM;
    }

    /// A polled Cisco device: both kinds of trust, the sealed password as opaque bytes.
    fn golden_cisco_device() {
        CiscoDevice = cisco_device(DeviceTrust::Fingerprint([0xcc; 32])),
        key "08080808080808080808080808080808",
        bytes "01100000000000000008080808080808080808080808080808100000000000000001010101010101\
             01010101010101010110000000000000000202020202020202020202020202020202000000000000\
             0072310300000000000000683a310100000000000000750300000000000000eeeeee01000000cccc\
             ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccea070000010000000000000000000000010000000000000061";
        CiscoDevice = cisco_device(DeviceTrust::Ca("PEM".into())),
        key "08080808080808080808080808080808",
        bytes "01100000000000000008080808080808080808080808080808100000000000000001010101010101\
             01010101010101010110000000000000000202020202020202020202020202020202000000000000\
             0072310300000000000000683a310100000000000000750300000000000000eeeeee000000000300\
             00000000000050454dea070000010000000000000000000000010000000000000061";
    }

    fn golden_reservation() {
        Reservation = reservation(),
        key "06060606060606060606060606060606",
        bytes "01100000000000000006060606060606060606060606060606100000000000000001010101010101\
             01010101010101010110000000000000000202020202020202020202020202020201000000000000\
             005001000000000000005301000000000000000100000000000000740200000000000000ea070000\
             01000000000000000000000001000000000000006101000000000000006eaaaaaaaaaaaaaaaaaaaa\
             aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\
             bbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    }

    /// Format 2 of an imported file, and format 1 (no issuer; keyed by the file id) as schema 1
    /// stored it: these are the bytes a schema-1 store holds.
    fn golden_imported_file() {
        ImportedFile = imported_v2(),
        key "01010101010101010101010101010101\
             0006\
             706f7274616c\
             6f7264657231",
        bytes "0206000000000000006f72646572311000000000000000010101010101010101010101010101010600\
             000000000000706f7274616cea070000010000000000000000000000010000000000000010000000\
             0000000003030303030303030303030303030303";
        ImportedFileV1 = imported_v1(),
        key "6f7264657231",
        bytes GOLDEN_IMPORTED_V1;
    }

    fn golden_virtual_account() {
        VirtualAccount = virtual_account(),
        key "05050505050505050505050505050505",
        bytes "01100000000000000005050505050505050505050505050505100000000000000001010101010101\
             01010101010101010103000000000000006c61620700000000000000746865206c61620110000000\
             0000000002020202020202020202020202020202ea070000020003040500000000000000";
    }

    fn golden_registration_token() {
        RegistrationToken = registration_token(),
        key "07070707070707070707070707070707",
        bytes "01100000000000000007070707070707070707070707070707100000000000000001010101010101\
             01010101010101010110000000000000000505050505050505050505050505050505000000000000\
             007261636b731111111111111111111111111111111111111111111111111111111111111111ea07\
             0000020003040500000000000000ea070000220004050600000000000000010a0000000300000001\
             01ea0700001400000001000000000000000800000000000000757365723a6f7073";
    }

    fn golden_api_token() {
        ApiToken = api_token(),
        key "08080808080808080808080808080808",
        bytes "01100000000000000008080808080808080808080808080808100000000000000004040404040404\
             04040404040404040402000000000000006369222222222222222222222222222222222222222222\
             2222222222222222222222ea07000002000304050000000000000001eb0700000200030405000000\
             0000000001ea0700009e0008090a00000000000000";
    }

    /// A device with every optional field set: usage, its last answer, its certificate.
    fn golden_product_instance() {
        ProductInstance = product_instance(),
        key "09090909090909090909090909090909",
        bytes "01100000000000000009090909090909090909090909090909100000000000000001010101010101\
             01010101010101010110000000000000000505050505050505050505050505050505000000000000\
             0043393330300400000000000000464f433103000000000000007377310600000000000000696f73\
             2d7865040000000000000031372e3901000000ea0700000200030405000000000000002a00000000\
             00000001100000000000000007070707070707070707070707070707010104000000000000003061\
             306201eb070000020003040500000000000000ea0700003f000506070000000000000001ea070000\
             3f0005060000000000000000010c0000000000000001ea0700003f00050000000000000000000200\
             0000000000000300000000000000646e61020000000000000003000000000000006e657401000000\
             00000000010200000002000000000000000300000000000000646e61020000000000000000000000\
             03000000000000006e6574010000000000000001000000ea0700005e0005060700000000000000ea\
             07000040000506070000000000000001";
    }

    fn golden_revoked_certificate() {
        RevokedCertificate = revoked_certificate(),
        key "30613062",
        bytes "01040000000000000030613062100000000000000009090909090909090909090909090909ea0700\
             003f0005060700000000000000eb0700000200030405000000000000000d0000000000000072652d\
             72656769737465726564";
    }

    /// A Cisco RUM report, keyed by device serial and report id.
    fn golden_rum_record() {
        RumRecord = rum_record(),
        key "464f4331000000010203040506",
        bytes "01060504030201000010000000000000000101010101010101010101010101010110000000000000\
             0009090909090909090909090909090909050000000000000043393330300400000000000000464f\
             43310300000000000000646e610200000000000000ea0700003f0005060700000000000000070000\
             00000000007b2272223a317d";
    }

    /// A child's binding to its upstream, with a request outstanding.
    fn golden_upstream_binding() {
        UpstreamBinding = upstream_binding(),
        key "757073747265616d",
        bytes "01040000000000000073697465020000000000000068710f0000000000000068747470733a2f2f68\
             713a38343433040000000000000061623132030000000000000050454d1000000000000000010101\
             01010101010101010101010101100000000000000002020202020202020202020202020202150000\
             000000000061636d652e636f6d2f44656661756c742f73697465ea07000002000304050000000000\
             0000050000000000000001040000000000000002000000000000007b7d0200000000000000050000\
             00000000006465763a78013333333333333333333333333333333333333333333333333333333333\
             33333305000000000000007573653a7900ea07000003000000000000000000000003000000000000\
             0001ea070000020017000000000000000000";
    }

    /// A child's record with every optional field set, and the upstream's copies of its
    /// devices, usage and RUM reports.
    fn golden_upstream_side_sync_records() {
        ChildSatellite = full_child(),
        key "7369746532",
        bytes "01050000000000000073697465321000000000000000010101010101010101010101010101011000\
             00000000000002020202020202020202020202020202030303030303030303030303030303030303\
             0303030303030303030303030303ea070000020003040500000000000000ea070000020003040500\
             00000000000005000000000000006c6f63616c010200000000000000616201020000000000000030\
             6301ea07000003000000000000000000000007000000000000000800000000000000010200000000\
             0000007b7d01ea070000040000000000000000000000010000000000000001000000000000006401\
             0000000000000072";
        RemoteInstance = remote_instance(),
        key "73697465006931",
        bytes "01040000000000000073697465020000000000000069311000000000000000020202020202020202\
             02020202020202050000000000000043393330300400000000000000464f43310300000000000000\
             7377310600000000000000696f732d7865040000000000000031372e39ea07000002000304050000\
             0000000000ea070000030003040500000000000000";
        RemoteUsage = remote_usage(),
        key "736974650030323032303230322d303230322d303230322d303230322d3032303230323032303230\
             3200646e61",
        bytes "01040000000000000073697465100000000000000002020202020202020202020202020202030000\
             0000000000646e61030000000000000006000000000000000500000000000000ea07000003000304\
             0500000000000000";
        RelayedRum = relayed_rum(),
        key "7369746500464f4331003737",
        bytes "010400000000000000736974654d0000000000000005000000000000004339333030040000000000\
             0000464f433107000000000000007b2272223a317dea070000030003040500000000000000";
    }

    /// A usage export for Cisco's portal (one own device, one relayed) and a delivered ACK.
    fn golden_cisco_records() {
        CiscoExport = cisco_export(),
        key "0000000000000007",
        bytes "01070000000000000001000000000000006610000000000000000101010101010101010101010101\
             0101100000000000000002020202020202020202020202020202ea07000001000000000000000000\
             00000100000000000000610200000000000000070000000000000001000000000000005001000000\
             00000000530000000010000000000000000404040404040404040404040404040402000000000000\
             00010000000000000002000000000000000800000000000000010000000000000050010000000000\
             0000540100000001000000000000006301000000000000000300000000000000";
        CiscoAck = cisco_ack(),
        key "6162",
        bytes "01020000000000000061621000000000000000010101010101010101010101010101011000000000\
             00000002020202020202020202020202020202010000000000000050010000000000000053000000\
             00100000000000000004040404040404040404040404040404010000000000000001000000000000\
             0001070000000000000004000000000000003c782f3e01ea07000001000000000000000000000001\
             ea07000002000000000000000000000000010000000000000064";
    }

    /// An event naming an account, a VA and a device.
    fn golden_event_with_every_subject() {
        Event = full_event(),
        key "0000000000000102",
        bytes "010201000000000000ea070000010000000000000000000000010000000000000061010000000000\
             00006201000000000000006301100000000000000001010101010101010101010101010101011000\
             00000000000002020202020202020202020202020202010400000000000000464f43310200000000\
             00000001000000000000006b01000000000000007602000000000000006b320000000000000000";
    }
}

/// A new table must come with its golden-bytes test: its format is pinned from the start.
#[test]
fn every_table_has_a_golden_bytes_test() {
    let covered: BTreeSet<&str> = GOLDEN_TABLES.iter().copied().collect();
    let missing: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| !covered.contains(t))
        .collect();
    assert!(
        missing.is_empty(),
        "tables without a golden-bytes test: {missing:?}; add one to `golden!` in {}",
        file!()
    );
}

/// A device whose last answer is not its usage line for line keeps the answer's own list
/// (`domain/model/answer.rs`). Stored, it is written as any answer: the golden record's bytes
/// with the answer's units, and it reads back as the same record.
#[test]
fn a_device_answer_kept_whole_is_stored_as_any_answer() {
    let mut listed = product_instance();
    let mut answer = listed.answer().expect("the golden device keeps its answer");
    answer.entitlements[0].1 = 5;
    listed.set_answer(&answer);
    assert!(listed.last_answer.as_ref().unwrap().keeps_its_lines());
    assert!(!product_instance().last_answer.unwrap().keeps_its_lines());

    // "dna" (length, bytes) then its units: first in the usage, then in the answer's list.
    let dna = |units: &str| format!("0300000000000000646e61{units}00000000000000");
    let golden = hex(&encode(&product_instance()));
    let at = golden.rfind(&dna("02")).expect("the answer's dna line");
    assert!(golden.find(&dna("02")) < Some(at), "the usage comes first");
    let expected = format!(
        "{}{}{}",
        &golden[..at],
        dna("05"),
        &golden[at + dna("02").len()..]
    );
    let encoded = encode(&listed);
    assert_eq!(hex(&encoded), expected);
    let read: ProductInstance =
        crate::store::decode(ProductInstance::TABLE, &listed.key(), &encoded).unwrap();
    assert_eq!(read, listed);
    assert_eq!(read.answer(), Some(answer));
}

/// Were a device's usage changed without its answer, the answer's packed statuses would
/// belong to another usage: the record is then written without an answer, not a wrong one.
#[test]
fn a_device_whose_usage_changed_under_its_answer_is_stored_without_one() {
    let mut changed = product_instance();
    changed.usage.insert("net", 4);
    let read: ProductInstance =
        crate::store::decode(ProductInstance::TABLE, &changed.key(), &encode(&changed)).unwrap();
    assert_eq!(read.last_answer, None);
    assert_eq!(read.usage, changed.usage);
}

fn account() -> Account {
    Account {
        id: AccountId(id(1)),
        name: "acme".into(),
        domain: "acme.com".into(),
        status: AccountStatus::Active,
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        default_va: VaId(id(2)),
    }
}

fn license() -> License {
    License {
        id: LicenseId(id(3)),
        account: AccountId(id(1)),
        va: VaId(id(2)),
        entitlement_tag: "t".into(),
        display_name: "T".into(),
        quantity: 5,
        kind: LicenseKind::Term {
            start: datetime!(2026-01-01 0:00 UTC),
            end: datetime!(2027-01-01 0:00 UTC),
        },
        export_controlled: true,
        source: LicenseSource::Manual,
        order_ref: None,
        labels: BTreeSet::from(["x".to_string()]),
        created_at: datetime!(2026-01-01 0:00 UTC),
    }
}

fn event() -> Event {
    Event {
        seq: 7,
        at: datetime!(2026-01-01 0:00 UTC),
        actor: "a".into(),
        action: "b".into(),
        subject: "c".into(),
        account: None,
        va: None,
        device: None,
        details: vec![("k".into(), "v".into())],
    }
}

fn user() -> User {
    User {
        id: UserId(id(4)),
        name: "ops".into(),
        grants: BTreeSet::from([RoleGrant {
            role: Role::VaUser,
            scope: Scope::Va(VaId(id(5))),
        }]),
        created_at: datetime!(2026-01-01 0:00 UTC),
    }
}

fn child() -> ChildSatellite {
    ChildSatellite {
        name: "site".into(),
        account: AccountId(id(1)),
        root: VaId(id(2)),
        token_hash: [3; 32],
        token_expires_at: datetime!(2026-01-02 03:04:05 UTC),
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        created_by: "local".into(),
        key: Some("ab".into()),
        cert_serial: None,
        registered_at: None,
        last_request_seq: 7,
        response_seq: 8,
        last_response: None,
        last_seen: None,
        pending_removals: vec![("d".into(), "r".into())],
    }
}

fn synced_item() -> SyncedItem {
    SyncedItem {
        key: "dev:x".into(),
        digest: [9; 32],
    }
}

const GOLDEN_CHILD: &str = "010400000000000000736974651000000000000000010101010101010101010101010101011000000000000000020202020202020202020202020202020303030303030303030303030303030303030303030303030303030303030303ea070000020003040500000000000000ea07000002000304050000000000000005000000000000006c6f63616c010200000000000000616200000700000000000000080000000000000000000100000000000000010000000000000064010000000000000072";
const GOLDEN_ITEM: &str =
    "0105000000000000006465763a780909090909090909090909090909090909090909090909090909090909090909";

fn reservation() -> Reservation {
    Reservation {
        id: ReservationId(id(6)),
        account: AccountId(id(1)),
        va: VaId(id(2)),
        udi: udi("P", "S"),
        entitlements: BTreeMap::from([("t".to_string(), 2u64)]),
        created_at: datetime!(2026-01-01 0:00 UTC),
        created_by: "a".into(),
        request_nonce: "n".into(),
        code_sha256: [0xaa; 32],
        return_proof_sha256: [0xbb; 32],
    }
}

/// Format 1 of an imported file (no issuer; keyed by the file id), as schema 1 stored it.
const GOLDEN_IMPORTED_V1: &str = "0106000000000000006f7264657231100000000000000001010101010101010101010101010101ea0700000100000000000000000000000100000000000000100000000000000003030303030303030303030303030303";

impl Record for ImportedFileV1 {
    const TABLE: &'static str = ImportedFile::TABLE;
    const FORMAT: u8 = 1;
    fn key(&self) -> Vec<u8> {
        self.file_id.as_bytes().to_vec()
    }
}

fn imported_v1() -> ImportedFileV1 {
    ImportedFileV1 {
        file_id: "order1".into(),
        account: AccountId(id(1)),
        imported_at: datetime!(2026-01-01 0:00 UTC),
        licenses: vec![LicenseId(id(3))],
    }
}

fn imported_v2() -> ImportedFile {
    ImportedFile {
        file_id: "order1".into(),
        account: AccountId(id(1)),
        issuer: "portal".into(),
        imported_at: datetime!(2026-01-01 0:00 UTC),
        licenses: vec![LicenseId(id(3))],
    }
}

fn virtual_account() -> VirtualAccount {
    VirtualAccount {
        id: VaId(id(5)),
        account: AccountId(id(1)),
        name: "lab".into(),
        description: "the lab".into(),
        parent: Some(VaId(id(2))),
        created_at: datetime!(2026-01-02 03:04:05 UTC),
    }
}

fn registration_token() -> RegistrationToken {
    RegistrationToken {
        id: TokenId(id(7)),
        account: AccountId(id(1)),
        va: VaId(id(5)),
        description: "racks".into(),
        secret_hash: [0x11; 32],
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        expires_at: datetime!(2026-02-03 04:05:06 UTC),
        max_uses: Some(10),
        uses: 3,
        allow_export_controlled: true,
        revoked_at: Some(datetime!(2026-01-20 00:00:01 UTC)),
        created_by: "user:ops".into(),
    }
}

fn api_token() -> ApiToken {
    ApiToken {
        id: ApiTokenId(id(8)),
        user: UserId(id(4)),
        description: "ci".into(),
        secret_hash: [0x22; 32],
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        expires_at: Some(datetime!(2027-01-02 03:04:05 UTC)),
        revoked_at: Some(datetime!(2026-06-07 08:09:10 UTC)),
    }
}

fn product_instance() -> ProductInstance {
    let mut i = ProductInstance {
        id: InstanceId(id(9)),
        account: AccountId(id(1)),
        va: VaId(id(5)),
        udi: udi("C9300", "FOC1"),
        hostname: "sw1".into(),
        product: "ios-xe".into(),
        version: "17.9".into(),
        source: InstanceSource::Rum,
        registered_at: datetime!(2026-01-02 03:04:05 UTC).into(),
        order: 42,
        token: Some(TokenId(id(7))),
        export_allowed: true,
        cert_serial: Some("0a0b".into()),
        cert_not_after: Some(datetime!(2027-01-02 03:04:05 UTC).into()),
        last_contact: datetime!(2026-03-04 05:06:07 UTC).into(),
        last_report_at: Some(datetime!(2026-03-04 05:06:00 UTC).into()),
        last_seq: Some(12.into()),
        last_measured_at: Some(datetime!(2026-03-04 05:00:00 UTC).into()),
        usage: [("dna", 2u64), ("net", 1)].into_iter().collect(),
        last_answer: None,
        clock_skew: true,
    };
    i.set_answer(&AuthorizationState {
        status: InstanceStatus::OutOfCompliance,
        entitlements: vec![
            ("dna".into(), 2, EntitlementStatus::Authorized),
            ("net".into(), 1, EntitlementStatus::OutOfCompliance),
        ],
        expires_at: datetime!(2026-04-04 05:06:07 UTC),
        next_report_by: datetime!(2026-03-05 05:06:07 UTC),
    });
    i
}

fn revoked_certificate() -> RevokedCertificate {
    RevokedCertificate {
        serial: "0a0b".into(),
        instance: InstanceId(id(9)),
        revoked_at: datetime!(2026-03-04 05:06:07 UTC),
        not_after: datetime!(2027-01-02 03:04:05 UTC),
        reason: "re-registered".into(),
    }
}

fn rum_record() -> RumRecord {
    RumRecord {
        report_id: 0x0102_0304_0506,
        account: AccountId(id(1)),
        instance: InstanceId(id(9)),
        udi: udi("C9300", "FOC1"),
        entitlement_tag: "dna".into(),
        count: 2,
        received_at: datetime!(2026-03-04 05:06:07 UTC),
        raw: "{\"r\":1}".into(),
    }
}

fn upstream_binding() -> UpstreamBinding {
    UpstreamBinding {
        me: "site".into(),
        upstream: "hq".into(),
        url: "https://hq:8443".into(),
        upstream_key: "ab12".into(),
        ca_pem: "PEM".into(),
        account: AccountId(id(1)),
        root: VaId(id(2)),
        root_path: "acme.com/Default/site".into(),
        bound_at: datetime!(2026-01-02 03:04:05 UTC),
        next_seq: 5,
        outstanding: Some(Outstanding {
            seq: 4,
            body: "{}".into(),
            items: vec![("dev:x".into(), Some([0x33; 32])), ("use:y".into(), None)],
            created_at: datetime!(2026-01-03 00:00:00 UTC),
        }),
        last_response_seq: 3,
        last_success: Some(datetime!(2026-01-02 23:00:00 UTC)),
    }
}

fn full_child() -> ChildSatellite {
    ChildSatellite {
        name: "site2".into(),
        cert_serial: Some("0c".into()),
        registered_at: Some(datetime!(2026-01-03 00:00:00 UTC)),
        last_response: Some("{}".into()),
        last_seen: Some(datetime!(2026-01-04 00:00:00 UTC)),
        ..child()
    }
}

fn remote_instance() -> RemoteInstance {
    RemoteInstance {
        child: "site".into(),
        id: "i1".into(),
        va: VaId(id(2)),
        udi: udi("C9300", "FOC1"),
        hostname: "sw1".into(),
        product: "ios-xe".into(),
        version: "17.9".into(),
        registered_at: datetime!(2026-01-02 03:04:05 UTC),
        received_at: datetime!(2026-01-03 03:04:05 UTC),
    }
}

fn remote_usage() -> RemoteUsage {
    RemoteUsage {
        child: "site".into(),
        va: VaId(id(2)),
        tag: "dna".into(),
        devices: 3,
        units_requested: 6,
        units_granted: 5,
        measured_at: datetime!(2026-01-03 03:04:05 UTC),
    }
}

fn relayed_rum() -> RelayedRum {
    RelayedRum {
        child: "site".into(),
        report_id: 77,
        udi: udi("C9300", "FOC1"),
        raw: "{\"r\":1}".into(),
        received_at: datetime!(2026-01-03 03:04:05 UTC),
    }
}

fn full_event() -> Event {
    Event {
        seq: 0x0102,
        account: Some(AccountId(id(1))),
        va: Some(VaId(id(2))),
        device: Some("FOC1".into()),
        details: vec![("k".into(), "v".into()), ("k2".into(), String::new())],
        ..event()
    }
}

/// A format-1 imported file read today comes back as format 2 with the empty issuer, which
/// holds its id for every issuer of its account.
#[test]
fn an_imported_file_in_format_1_is_upgraded_to_format_2() {
    let v1 = crate::store::decode::<ImportedFile>(
        ImportedFile::TABLE,
        b"order1",
        &encode(&imported_v1()),
    )
    .expect("format 1 upgrades");
    assert_eq!(
        v1,
        ImportedFile {
            issuer: String::new(),
            ..imported_v2()
        }
    );
}

/// A schema-1 store's imported files are re-keyed by account, issuer and file id when a
/// schema-2 satellite opens it, and keep everything they held.
#[test]
fn schema_2_re_keys_the_imported_files_of_a_schema_1_store() {
    use crate::store::{MIGRATIONS, SCHEMA_VERSION, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut second = imported_v1();
    second.file_id = "order2".into();
    second.account = AccountId(id(9));
    {
        let old = Store::open_with(&path, TABLES, 1, &[]).unwrap();
        for f in [imported_v1(), second.clone()] {
            old.put_raw(ImportedFile::TABLE, &f.key(), &encode(&f))
                .unwrap();
        }
        old.commit_blocking(Batch::new()).unwrap();
    }
    // Opened by the current release: schema 1 → 2 re-keys, 2 → 3 and 3 → 4 change no record.
    assert_eq!(SCHEMA_VERSION, 4);
    let store = Store::open_with(&path, TABLES, SCHEMA_VERSION, MIGRATIONS).unwrap();
    let mut found: Vec<ImportedFile> = store.scan::<ImportedFile>().map(Result::unwrap).collect();
    found.sort_by(|a, b| a.file_id.cmp(&b.file_id));
    let expected: Vec<ImportedFile> = [imported_v1(), second]
        .into_iter()
        .map(Into::into)
        .collect();
    assert_eq!(found, expected);
    for f in &expected {
        let raw = store.get_raw(ImportedFile::TABLE, &Record::key(f)).unwrap();
        assert_eq!(
            raw.expect("under the new key")[0],
            2,
            "rewritten in format 2"
        );
    }
    assert!(
        store
            .get_raw(ImportedFile::TABLE, b"order1")
            .unwrap()
            .is_none()
    );
    assert_eq!(store.count::<ImportedFile>().unwrap(), 2);
}

fn cisco_export() -> CiscoExport {
    CiscoExport {
        first_file_id: 7,
        file_name: "f".into(),
        account: AccountId(id(1)),
        va: VaId(id(2)),
        created_at: datetime!(2026-01-01 0:00 UTC),
        created_by: "a".into(),
        devices: vec![
            crate::domain::ExportedFile {
                file_id: 7,
                udi: udi("P", "S"),
                holder: ReportHolder::Local(InstanceId(id(4))),
                report_ids: vec![1, 2],
            },
            crate::domain::ExportedFile {
                file_id: 8,
                udi: udi("P", "T"),
                holder: ReportHolder::Child("c".into()),
                report_ids: vec![3],
            },
        ],
    }
}

fn cisco_ack() -> CiscoAck {
    CiscoAck {
        id: "ab".into(),
        account: AccountId(id(1)),
        va: VaId(id(2)),
        udi: udi("P", "S"),
        holder: ReportHolder::Local(InstanceId(id(4))),
        report_ids: vec![1],
        file_id: Some(7),
        bytes: b"<x/>".to_vec(),
        has_policy: true,
        received_at: datetime!(2026-01-01 0:00 UTC),
        delivery: Some(crate::domain::Delivery {
            at: datetime!(2026-01-02 0:00 UTC),
            ok: false,
            detail: "d".into(),
        }),
    }
}

fn cisco_device(trust: DeviceTrust) -> CiscoDevice {
    CiscoDevice {
        id: CiscoDeviceId(id(8)),
        account: AccountId(id(1)),
        va: VaId(id(2)),
        name: "r1".into(),
        address: "h:1".into(),
        username: "u".into(),
        sealed_password: vec![0xee; 3],
        trust,
        created_at: datetime!(2026-01-01 0:00 UTC),
        created_by: "a".into(),
    }
}
