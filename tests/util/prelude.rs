//! The set-up most tests start from, one line each: an account, its VAs, licenses in them and a
//! registration token, made through the real CLI exactly as an operator would, e.g.
//! `let token = d.account("acme").license(ADV, 5).token();`. Tests whose subject is one of
//! these commands (their output, their refusals) keep calling the CLI themselves.

use super::Daemon;

/// A virtual account of a running daemon, named by its path (`acme/Default/emea`).
pub struct Va<'d> {
    daemon: &'d Daemon,
    pub path: String,
}

/// A registration token as `token create` printed it.
pub struct Token {
    pub id: String,
    /// Shown once by the CLI; what a device registers with.
    pub secret: String,
}

impl Daemon {
    /// Creates the account `name` with the domain `NAME.com` and answers its Default VA.
    pub fn account(&self, name: &str) -> Va<'_> {
        self.account_with_domain(name, &format!("{name}.com"))
    }

    /// Creates the account `name` with `domain` and answers its Default VA.
    pub fn account_with_domain(&self, name: &str, domain: &str) -> Va<'_> {
        self.cli_ok(&["account", "create", name, "--domain", domain]);
        self.va(&format!("{name}/Default"))
    }

    /// A VA that exists already, by its path.
    pub fn va(&self, path: &str) -> Va<'_> {
        Va {
            daemon: self,
            path: path.to_owned(),
        }
    }
}

impl<'d> Va<'d> {
    /// Creates the VA `name` below this one and answers it.
    pub fn child(&self, name: &str) -> Va<'d> {
        self.daemon
            .cli_ok(&["va", "create", name, "--parent", &self.path]);
        self.daemon.va(&format!("{}/{name}", self.path))
    }

    /// Adds `quantity` perpetual licenses of `tag` to this VA.
    pub fn license(&self, tag: &str, quantity: u64) -> &Self {
        self.add_license(tag, quantity, &[])
    }

    /// Adds `quantity` term licenses of `tag`, valid from `start` to `end` (`YYYY-MM-DD`).
    pub fn license_between(&self, tag: &str, quantity: u64, start: &str, end: &str) -> &Self {
        self.add_license(tag, quantity, &["--start", start, "--end", end])
    }

    fn add_license(&self, tag: &str, quantity: u64, extra: &[&str]) -> &Self {
        let quantity = quantity.to_string();
        let mut args = vec![
            "license",
            "add",
            "--va",
            &self.path,
            "--tag",
            tag,
            "--quantity",
            &quantity,
        ];
        args.extend_from_slice(extra);
        self.daemon.cli_ok(&args);
        self
    }

    /// Creates a registration token for this VA (default expiry, unlimited uses).
    pub fn token(&self) -> Token {
        let created = self
            .daemon
            .cli_json(&["token", "create", "--va", &self.path]);
        let field = |name: &str| {
            created[name]
                .as_str()
                .unwrap_or_else(|| panic!("`token create` printed no {name}: {created}"))
                .to_owned()
        };
        Token {
            id: field("id"),
            secret: field("secret"),
        }
    }
}
