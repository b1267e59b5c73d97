//! The `Examples:` section of every command's help (clap's `after_help`), kept together so they
//! read as one manual and stay consistent. A test walks the command tree and checks that every
//! command has one (`tests/cli_polish.rs`).

/// An `Examples:` section, one command line per argument, indented like clap's own sections.
macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line),+)
    };
}

pub const SATELLITE: &str = examples!(
    "satellite serve                                  # the daemon, on its embedded defaults",
    "satellite status                                 # what the running satellite holds",
    "satellite --url https://sat:8444 --ca ca.pem status   # a remote one (SATELLITE_TOKEN)",
    "satellite help license add                       # every command documents itself",
);

pub const SERVE: &str = examples!(
    "satellite serve",
    "satellite --config /etc/satellite/satellite.toml serve",
    "satellite --data-dir /var/lib/satellite serve",
);
pub const COMPLETIONS: &str = examples!(
    "satellite completions bash > /etc/bash_completion.d/satellite",
    "satellite completions zsh > \"${fpath[1]}/_satellite\"",
    "satellite completions fish > ~/.config/fish/completions/satellite.fish",
);
pub const MAN_PAGES: &str = examples!(
    "satellite man-pages --out-dir /usr/local/share/man/man1 && mandb",
    "satellite man-pages --out-dir ./man && man -l ./man/satellite-license-add.1",
);
pub const STATUS: &str = examples!("satellite status", "satellite status --json");
pub const CONFIG: &str = examples!("satellite --config /etc/satellite/satellite.toml config check");
pub const CONFIG_CHECK: &str = CONFIG;

pub const ACCOUNT: &str = examples!(
    "satellite account create acme --domain acme.com",
    "satellite account list",
);
pub const ACCOUNT_CREATE: &str = examples!("satellite account create acme --domain acme.com");
pub const ACCOUNT_LIST: &str = examples!("satellite account list", "satellite account list --json");
pub const ACCOUNT_SHOW: &str = examples!(
    "satellite account show acme",
    "satellite account show acme.com --json | jq -r .rum_ingest.url",
);
pub const ACCOUNT_APPROVE: &str = examples!("satellite account approve lab.acme.com");

pub const VA: &str = examples!(
    "satellite va create emea --parent acme/Default",
    "satellite va list --account acme",
);
pub const VA_CREATE: &str = examples!(
    "satellite va create emea --parent acme/Default",
    "satellite va create paris --parent acme/Default/emea --description \"Paris office\"",
);
pub const VA_LIST: &str = examples!("satellite va list", "satellite va list --account acme");
pub const VA_SHOW: &str = examples!("satellite va show acme/Default/emea");
pub const VA_MOVE: &str = examples!("satellite va move acme/Default/emea/paris --to acme/Default");
pub const VA_DELETE: &str = examples!(
    "satellite va delete acme/Default/emea/paris --dry-run",
    "satellite va delete acme/Default/emea/paris --yes",
);

pub const LICENSE: &str = examples!(
    "satellite license add --va acme/Default --tag regid.2019-03.com.example.ADV --quantity 10",
    "satellite license list --va acme/Default",
);
pub const LICENSE_ADD: &str = examples!(
    "satellite license add --va acme/Default --tag regid.2019-03.com.example.ADV --quantity 10",
    "satellite license add --va acme/Default --tag regid.2019-03.com.example.SEC --quantity 5 \
     --start 2026-01-01 --end 2027-12-31 --label q3",
);
pub const LICENSE_LIST: &str = examples!(
    "satellite license list",
    "satellite license list --va acme/Default/emea --tag regid.2019-03.com.example.ADV",
    "satellite license list --label q3 --json",
);
pub const LICENSE_TRANSFER: &str = examples!(
    "satellite license transfer --from acme/Default --to acme/Default/emea \
     --tag regid.2019-03.com.example.ADV --quantity 4",
);
pub const LICENSE_REMOVE: &str = examples!(
    "satellite license remove 1c774188-e3f9-4cf2-9288-5d0f2c5acc93 --dry-run",
    "satellite license remove 1c774188-e3f9-4cf2-9288-5d0f2c5acc93 --quantity 2 --yes",
);
pub const LICENSE_IMPORT: &str = examples!("satellite license import acme-order-42.json");
pub const LICENSE_SIGN: &str = examples!(
    "satellite license sign --key portal.pem --account acme.com \
     --grant Default:regid.2019-03.com.example.ADV:10 --out acme-order-42.json",
    "satellite license sign --key portal.pem --account acme.com --file-id order-43 \
     --grant Default/emea:regid.2019-03.com.example.SEC:5:2026-01-01:2027-01-01 --out order-43.json",
);

pub const TOKEN: &str = examples!(
    "satellite token create --va acme/Default/emea --max-uses 50",
    "satellite token list --va acme/Default",
);
pub const TOKEN_CREATE: &str = examples!(
    "satellite token create --va acme/Default/emea --description \"paris switches\" --max-uses 50",
    "satellite token create --va acme/Default --expires-in-days 7 --json | jq -r .secret",
);
pub const TOKEN_LIST: &str = examples!(
    "satellite token list",
    "satellite token list --account acme"
);
pub const TOKEN_REVOKE: &str =
    examples!("satellite token revoke e349fb1c-5bb9-430a-94b3-6264a2a22981");

pub const USER: &str = examples!(
    "satellite user create olivia",
    "satellite user grant olivia --role account-admin --account acme",
);
pub const USER_CREATE: &str = examples!("satellite user create olivia");
pub const USER_LIST: &str = examples!("satellite user list");
pub const USER_DELETE: &str = examples!("satellite user delete olivia");
pub const USER_PASSWD: &str = examples!(
    "satellite user passwd olivia",
    "printf '%s\\n' \"$NEW_PASSWORD\" | satellite user passwd olivia --stdin"
);
pub const USER_GRANT: &str = examples!(
    "satellite user grant olivia --role account-admin --account acme",
    "satellite user grant paul --role va-user --va acme/Default/emea",
    "satellite user grant prometheus --role metrics-reader",
);
pub const USER_REVOKE: &str =
    examples!("satellite user revoke paul --role va-user --va acme/Default/emea");

pub const API_TOKEN: &str = examples!(
    "satellite api-token create --user olivia --description laptop",
    "satellite api-token list --user olivia",
);
pub const API_TOKEN_CREATE: &str = examples!(
    "satellite api-token create --user olivia --description laptop --expires-in-days 90",
);
pub const API_TOKEN_LIST: &str = examples!(
    "satellite api-token list",
    "satellite api-token list --user olivia"
);
pub const API_TOKEN_REVOKE: &str =
    examples!("satellite api-token revoke 6f1d2a8e-7c11-4a3b-9d0e-2f4b5c6d7e8f");

pub const EVENTS: &str = examples!(
    "satellite events --since 2026-11-01 --action license",
    "satellite events --va acme/Default/emea --limit 20",
    "satellite events --before 1200          # the page before event 1200",
);

pub const DEVICE: &str = examples!(
    "satellite device list --status out_of_compliance",
    "satellite device show C9300-24T:FOC1234X0AB",
);
pub const DEVICE_LIST: &str = examples!(
    "satellite device list --va acme/Default/emea",
    "satellite device list --status out_of_compliance --json",
    "satellite device list --udi FOC1234 --hostname sw-",
);
pub const DEVICE_SHOW: &str = examples!(
    "satellite device show C9300-24T:FOC1234X0AB",
    "satellite device show 3dd5c020-eeb2-49d0-ad70-6d4be612096c --json",
);
pub const DEVICE_MOVE: &str =
    examples!("satellite device move C9300-24T:FOC1234X0AB --to acme/Default/emea/paris");
pub const DEVICE_REMOVE: &str = examples!(
    "satellite device remove C9300-24T:FOC1234X0AB --dry-run",
    "satellite device remove C9300-24T:FOC1234X0AB --yes",
);
pub const COMPLIANCE: &str = examples!(
    "satellite compliance",
    "satellite compliance --va acme/Default --all",
);
pub const ALERTS: &str = examples!("satellite alerts", "satellite alerts --json");

pub const AGENT: &str = examples!(
    "satellite agent --dir ./dev1 register --url https://127.0.0.1:8443 --ca ca.pem \
     --pid C9300-24T --serial FOC1234X0AB",
    "satellite agent --dir ./dev1 report --usage regid.2019-03.com.example.ADV=3",
);
pub const AGENT_REGISTER: &str = examples!(
    "SATELLITE_REGISTRATION_TOKEN=srt_... satellite agent --dir ./dev1 register \
     --url https://127.0.0.1:8443 --ca ca.pem --pid C9300-24T --serial FOC1234X0AB --hostname sw-01",
);
pub const AGENT_REPORT: &str = examples!(
    "satellite agent --dir ./dev1 report --usage regid.2019-03.com.example.ADV=3",
    "satellite agent --dir ./dev1 report          # nothing in use",
);
pub const AGENT_RENEW: &str = examples!("satellite agent --dir ./dev1 renew");
pub const AGENT_STATUS: &str = examples!("satellite agent --dir ./dev1 status");
pub const AGENT_DEREGISTER: &str = examples!("satellite agent --dir ./dev1 deregister");
pub const AGENT_RESERVE_REQUEST: &str = examples!(
    "satellite agent --dir ./dev1 reserve-request --entitlement regid.2019-03.com.example.ADV:3",
    "satellite agent --dir ./lab reserve-request --pid C9300-24T --serial FOC1 \
     --entitlement regid.2019-03.com.example.ADV",
);
pub const AGENT_RESERVE_INSTALL: &str =
    examples!("satellite agent --dir ./dev1 reserve-install --code SAC1-... --trust-key 5f1e...",);
pub const AGENT_RESERVATION: &str = examples!("satellite agent --dir ./dev1 reservation");
pub const AGENT_RESERVE_RETURN: &str = examples!("satellite agent --dir ./dev1 reserve-return");

pub const BACKUP: &str = examples!(
    "satellite backup --out /var/backups/satellite-$(date +%F).satbak",
    "satellite backup verify /var/backups/satellite-2026-01-31.satbak",
);
pub const BACKUP_VERIFY: &str = examples!(
    "satellite backup verify /var/backups/satellite-2026-01-31.satbak",
    "sha256sum /var/backups/satellite-2026-01-31.satbak   # the same SHA-256 as printed",
);
pub const RESTORE: &str = examples!(
    "satellite restore --in /var/backups/satellite-2026-01-31.satbak --data-dir /var/lib/satellite-new",
);

pub const LOADGEN: &str = examples!(
    "satellite loadgen --url https://127.0.0.1:8443 --ca satellite-data/tls/ca.pem \
     --devices 100 --reports 10000 --concurrency 16",
    "satellite loadgen fill --data-dir /tmp/scale --devices 1000000",
);
pub const LOADGEN_FILL: &str = examples!(
    "satellite loadgen fill --data-dir /tmp/scale --devices 1000000 --vas 1000 --tags 100",
);

pub const SYNC: &str = examples!(
    "satellite sync status",
    "satellite sync export --out req.json      # air gap: then `sync answer` upstream",
);
pub const SYNC_KEYGEN: &str = examples!("satellite sync keygen --out portal.pem");
pub const SYNC_REGISTER: &str = examples!(
    "SATELLITE_SYNC_REGISTRATION_TOKEN=... satellite sync register --upstream https://upstream:8443",
);
pub const SYNC_NOW: &str = examples!("satellite sync now");
pub const SYNC_STATUS: &str = examples!("satellite sync status", "satellite sync status --json");
pub const SYNC_EXPORT: &str = examples!("satellite sync export --out req.json");
pub const SYNC_ANSWER: &str = examples!("satellite sync answer --in req.json --out resp.json");
pub const SYNC_IMPORT: &str = examples!("satellite sync import resp.json");
pub const SYNC_CHILD: &str = examples!(
    "satellite sync child add site-1 --va acme/Default/region",
    "satellite sync child list",
);
pub const SYNC_CHILD_ADD: &str =
    examples!("satellite sync child add site-1 --va acme/Default/region --expires-in-days 3",);
pub const SYNC_CHILD_LIST: &str = examples!("satellite sync child list");
pub const SYNC_DEVICES: &str = examples!("satellite sync devices", "satellite sync devices --json");
pub const SYNC_REMOVE_DEVICE: &str =
    examples!("satellite sync remove-device 3dd5c020-eeb2-49d0-ad70-6d4be612096c");

pub const RESERVE: &str = examples!(
    "satellite reserve --va acme/Default/lab --request SRQ1-...",
    "satellite reserve --return SRT1-...",
    "satellite reserve list",
);
pub const RESERVE_LIST: &str = examples!("satellite reserve list --va acme/Default/lab");
pub const RESERVE_CANCEL: &str =
    examples!("satellite reserve cancel 0d3c5b8e-4f1a-4c2b-9e7d-1a2b3c4d5e6f");
pub const RESERVE_RETURN: &str = examples!("satellite reserve return SRT1-...");
pub const CISCO: &str = examples!(
    "satellite cisco device add edge-1 --va acme/Default --address 10.0.0.5 --user slp --ca ca.pem",
    "satellite cisco poll edge-1",
    "satellite cisco export --account acme --out .          # usage for Cisco's portal",
    "satellite cisco import-ack ACK_UD_SA_24Jan05_14_03_09_417.tar.gz",
    "satellite cisco ack --device C9300-24T:FOC1234X0AB --out ack.xml",
    "satellite cisco reports --va acme/Default/lab",
);
pub const CISCO_EXPORT: &str = examples!(
    "satellite cisco export --out /tmp/                     # names the file UD_SA_<time>.tar.gz",
    "satellite cisco export --va acme/Default/lab --out usage.tar.gz --json",
);
pub const CISCO_IMPORT_ACK: &str =
    examples!("satellite cisco import-ack ACK_UD_SA_24Jan05_14_03_09_417.tar.gz");
pub const CISCO_ACK: &str = examples!(
    "satellite cisco ack --device C9300-24T:FOC1234X0AB --out ack.xml",
    "satellite cisco ack --device FOC1234X0AB --va acme/Default/lab --out ack.xml",
);
pub const CISCO_REPORTS: &str = examples!(
    "satellite cisco reports",
    "satellite cisco reports --va acme/Default/lab --json",
);
