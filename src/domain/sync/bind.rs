//! The child's side of binding: the account and the path to the dedicated root are created
//! (or adopted) here, and the numbered requests it sends are recorded on the binding.

use time::OffsetDateTime;

use super::messages::BindInput;
use crate::domain::access::Principal;
use crate::domain::catalog::{Catalog, Change, Record};
use crate::domain::catalog::{Outstanding, UpstreamBinding};
use crate::domain::error::DomainError;
use crate::domain::events::NewEvent;
use crate::domain::ids::{AccountId, IdSource, VaId};
use crate::domain::model::{Account, AccountStatus, VirtualAccount};

impl Catalog {
    /// Binds this satellite to an upstream: creates (or adopts) the account by its domain and
    /// the path to the dedicated root. System administrators only; one upstream at most.
    pub fn bind_upstream(
        &self,
        p: &Principal,
        input: &BindInput,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, UpstreamBinding), DomainError> {
        self.check_system(p)?;
        self.check_not_bound()?;
        let mut change = Change::silent();
        let (account, default_va) = self.bound_account(input, &mut change, now, ids)?;
        let root = self.mirror_root(account, default_va, input, &mut change, now, ids)?;
        let binding = UpstreamBinding::new(input, account, root, now);
        change.event = Some(
            NewEvent::new("sync.register", &input.upstream)
                .account(account)
                .va(root)
                .detail("url", &input.url)
                .detail("as", &input.me)
                .detail("va", &input.root_path)
                .detail("upstream_key", &input.upstream_key),
        );
        Ok((
            change.put(Record::UpstreamBinding(binding.clone())),
            binding,
        ))
    }

    fn check_not_bound(&self) -> Result<(), DomainError> {
        match &self.sync.binding {
            Some(b) => Err(DomainError::Conflict(format!(
                "this satellite is already bound to upstream `{}` ({}) as `{}`",
                b.upstream, b.url, b.me
            ))),
            None => Ok(()),
        }
    }

    /// The account the upstream's subtree belongs to, by its domain: the one here, or a new
    /// one with its Default VA (added to `change`). Answers the account and its Default VA.
    fn bound_account(
        &self,
        input: &BindInput,
        change: &mut Change,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(AccountId, VaId), DomainError> {
        if let Some(a) = self.accounts().find(|a| a.domain == input.account_domain) {
            return Ok((a.id, a.default_va));
        }
        if self
            .account_by_name_or_domain(&input.account_name)
            .is_some()
        {
            return Err(DomainError::Conflict(format!(
                "an account named `{}` exists here with another domain; rename it before binding",
                input.account_name
            )));
        }
        let account = Account {
            id: AccountId::fresh(ids),
            name: input.account_name.clone(),
            domain: input.account_domain.clone(),
            status: AccountStatus::Active,
            created_at: now,
            default_va: VaId::fresh(ids),
        };
        change.put.push(Record::Va(VirtualAccount {
            id: account.default_va,
            account: account.id,
            name: crate::domain::DEFAULT_VA_NAME.to_string(),
            description: String::new(),
            parent: None,
            created_at: now,
        }));
        let ids = (account.id, account.default_va);
        change.put.push(Record::Account(account));
        Ok(ids)
    }

    /// The VA at the upstream's root path below the Default VA: existing VAs of that name are
    /// adopted, the rest of the path is created (added to `change`).
    fn mirror_root(
        &self,
        account: AccountId,
        default_va: VaId,
        input: &BindInput,
        change: &mut Change,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<VaId, DomainError> {
        let mut current = default_va;
        let mut created_here = false;
        for name in path_segments(&input.root_path)? {
            let existing = (!created_here)
                .then(|| {
                    self.children(current)
                        .find(|v| v.name == name)
                        .map(|v| v.id)
                })
                .flatten();
            current = match existing {
                Some(id) => id,
                None => {
                    created_here = true;
                    let va = VirtualAccount {
                        id: VaId::fresh(ids),
                        account,
                        name: name.to_string(),
                        description: format!("managed by upstream {}", input.upstream),
                        parent: Some(current),
                        created_at: now,
                    };
                    let id = va.id;
                    change.put.push(Record::Va(va));
                    id
                }
            };
        }
        Ok(current)
    }

    /// Records the request numbered `seq` as sent and outstanding.
    pub fn record_outstanding(
        &self,
        outstanding: Outstanding,
    ) -> Result<(Change, UpstreamBinding), DomainError> {
        let mut b = self.bound()?.clone();
        let event = NewEvent::new("sync.request.create", &b.upstream)
            .account(b.account)
            .detail("seq", outstanding.seq)
            .detail("changes", outstanding.items.len());
        b.next_seq = outstanding.seq + 1;
        b.outstanding = Some(outstanding);
        Ok((
            Change::new(event).put(Record::UpstreamBinding(b.clone())),
            b,
        ))
    }

    pub(super) fn bound(&self) -> Result<&UpstreamBinding, DomainError> {
        self.sync.binding.as_ref().ok_or_else(|| {
            DomainError::Refused(
                "this satellite is not bound to an upstream; bind it with `satellite sync \
                 register --upstream URL --registration-token TOKEN`"
                    .into(),
            )
        })
    }
}

impl UpstreamBinding {
    /// A fresh binding: nothing sent, nothing answered yet.
    fn new(input: &BindInput, account: AccountId, root: VaId, now: OffsetDateTime) -> Self {
        UpstreamBinding {
            me: input.me.clone(),
            upstream: input.upstream.clone(),
            url: input.url.clone(),
            upstream_key: input.upstream_key.clone(),
            ca_pem: input.ca_pem.clone(),
            account,
            root,
            root_path: input.root_path.clone(),
            bound_at: now,
            next_seq: 1,
            outstanding: None,
            last_response_seq: 0,
            last_success: None,
        }
    }
}

/// The VA names after `Default` in `DOMAIN/Default/a/b`.
fn path_segments(path: &str) -> Result<Vec<&str>, DomainError> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.get(1) {
        Some(&crate::domain::DEFAULT_VA_NAME) if parts.iter().all(|p| !p.is_empty()) => {
            Ok(parts[2..].to_vec())
        }
        _ => Err(DomainError::Invalid(format!(
            "`{path}` is not a virtual account path of the form DOMAIN/Default/..."
        ))),
    }
}
