//! Property tests: random sequences of tree and license operations, checked against a small
//! independent model after every step.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum TreeOp {
    /// Create a VA under the `parent`-th VA (in creation order, across both accounts).
    Create {
        parent: usize,
        name: u8,
    },
    /// Create a VA under the deepest VA, to reach the depth limit often.
    CreateDeep {
        name: u8,
    },
    Move {
        va: usize,
        to: usize,
    },
    Delete {
        va: usize,
    },
}

fn tree_op() -> impl Strategy<Value = TreeOp> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..4).prop_map(|(parent, name)| TreeOp::Create { parent, name }),
        2 => (0u8..4).prop_map(|name| TreeOp::CreateDeep { name }),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(va, to)| TreeOp::Move { va, to }),
        1 => any::<usize>().prop_map(|va| TreeOp::Delete { va }),
    ]
}

/// What the tree should look like: every VA's account, parent and name, in creation order.
#[derive(Default)]
struct TreeModel {
    order: Vec<VaId>,
    nodes: BTreeMap<VaId, (AccountId, Option<VaId>, String)>,
}

impl TreeModel {
    fn add(&mut self, id: VaId, account: AccountId, parent: Option<VaId>, name: &str) {
        self.order.push(id);
        self.nodes.insert(id, (account, parent, name.to_string()));
    }

    fn pick(&self, i: usize) -> VaId {
        self.order[i % self.order.len()]
    }

    fn parent(&self, v: VaId) -> Option<VaId> {
        self.nodes[&v].1
    }

    fn depth(&self, v: VaId) -> usize {
        let mut d = 1;
        let mut at = v;
        while let Some(p) = self.parent(at) {
            d += 1;
            at = p;
            assert!(d <= MAX_VA_DEPTH + 1, "the model has a cycle");
        }
        d
    }

    fn kids(&self, v: VaId) -> Vec<VaId> {
        self.order
            .iter()
            .copied()
            .filter(|c| self.parent(*c) == Some(v))
            .collect()
    }

    fn height(&self, v: VaId) -> usize {
        1 + self
            .kids(v)
            .into_iter()
            .map(|c| self.height(c))
            .max()
            .unwrap_or(0)
    }

    fn below(&self, v: VaId, root: VaId) -> bool {
        let mut at = Some(v);
        while let Some(x) = at {
            if x == root {
                return true;
            }
            at = self.parent(x);
        }
        false
    }

    fn name_taken(&self, parent: VaId, name: &str, except: Option<VaId>) -> bool {
        self.kids(parent)
            .into_iter()
            .any(|c| Some(c) != except && self.nodes[&c].2 == name)
    }
}

/// Checks that the catalog holds exactly the model's tree and that the tree is well formed.
fn check_tree(c: &Catalog, m: &TreeModel, accounts: &[Account]) -> Result<(), TestCaseError> {
    let mut seen = 0;
    for a in accounts {
        let sub = c.subtree(a.default_va);
        seen += sub.len();
        let mut expected: Vec<VaId> = m
            .order
            .iter()
            .copied()
            .filter(|v| m.nodes[v].0 == a.id)
            .collect();
        expected.sort();
        let mut got = sub.clone();
        got.sort();
        prop_assert_eq!(got, expected);
        for v in sub {
            let va = c.va(v).expect("listed VAs exist");
            let (account, parent, name) = &m.nodes[&v];
            prop_assert_eq!(va.account, *account);
            prop_assert_eq!(va.parent, *parent);
            prop_assert_eq!(&va.name, name);
            let level = c.level(v);
            prop_assert!(level <= MAX_VA_DEPTH, "level {} of {}", level, c.va_path(v));
            prop_assert_eq!(level, m.depth(v));
            // The ancestor chain ends at the Default VA of the VA's own account.
            let chain: Vec<VaId> = c.ancestors(v).take(MAX_VA_DEPTH + 1).collect();
            prop_assert!(chain.len() < MAX_VA_DEPTH);
            prop_assert_eq!(*chain.last().unwrap_or(&v), a.default_va);
            let mut kids: Vec<VaId> = c.children(v).map(|k| k.id).collect();
            let mut want = m.kids(v);
            kids.sort();
            want.sort();
            prop_assert_eq!(kids, want);
        }
    }
    prop_assert_eq!(seen, m.nodes.len());
    Ok(())
}

fn snapshots(c: &Catalog, accounts: &[Account]) -> Vec<Snapshot> {
    accounts.iter().map(|a| snapshot(c, a)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tree_operations_keep_the_tree_bounded_acyclic_and_refusals_inert(
        ops in prop::collection::vec(tree_op(), 1..120)
    ) {
        let (mut c, a) = with_account("Acme", "example.com");
        let b = add_account(&mut c, "Other", "other.org");
        let accounts = [a.clone(), b.clone()];
        let mut m = TreeModel::default();
        m.add(a.default_va, a.id, None, "Default");
        m.add(b.default_va, b.id, None, "Default");

        for op in ops {
            let before = snapshots(&c, &accounts);
            let accepted = match op {
                TreeOp::Create { .. } | TreeOp::CreateDeep { .. } => {
                    let (parent, name) = match op {
                        TreeOp::Create { parent, name } => (m.pick(parent), name),
                        TreeOp::CreateDeep { name } => {
                            let deepest = m.order.iter().copied().max_by_key(|v| m.depth(*v));
                            (deepest.unwrap(), name)
                        }
                        _ => unreachable!(),
                    };
                    let name = format!("n{name}");
                    let taken = m.name_taken(parent, &name, None);
                    let too_deep = m.depth(parent) + 1 > MAX_VA_DEPTH;
                    match c.create_va(&admin(), parent, &name, "", NOW, &IDS) {
                        Ok((change, va)) => {
                            prop_assert!(!taken && !too_deep);
                            prop_assert_eq!(va.parent, Some(parent));
                            c.apply(&change);
                            m.add(va.id, m.nodes[&parent].0, Some(parent), &name);
                            true
                        }
                        Err(e) => {
                            prop_assert!(taken || too_deep, "refused: {:?}", e);
                            if !taken {
                                prop_assert!(matches!(e, DomainError::Refused(_)), "{:?}", e);
                            } else if !too_deep {
                                prop_assert!(matches!(e, DomainError::Conflict(_)), "{:?}", e);
                            }
                            false
                        }
                    }
                }
                TreeOp::Move { va, to } => {
                    let (va, to) = (m.pick(va), m.pick(to));
                    let ok = m.parent(va).is_some()
                        && m.nodes[&va].0 == m.nodes[&to].0
                        && !m.below(to, va)
                        && !m.name_taken(to, &m.nodes[&va].2, Some(va))
                        && m.depth(to) + m.height(va) <= MAX_VA_DEPTH;
                    match c.move_va(&admin(), va, to) {
                        Ok((change, moved)) => {
                            prop_assert!(ok, "accepted a move that must be refused");
                            prop_assert_eq!(moved.parent, Some(to));
                            c.apply(&change);
                            m.nodes.get_mut(&va).unwrap().1 = Some(to);
                            true
                        }
                        Err(e) => {
                            prop_assert!(!ok, "refused a valid move: {:?}", e);
                            false
                        }
                    }
                }
                TreeOp::Delete { va } => {
                    let va = m.pick(va);
                    let ok = m.parent(va).is_some() && m.kids(va).is_empty();
                    match c.delete_va(&admin(), va, 0, NOW) {
                        Ok(change) => {
                            prop_assert!(ok, "accepted a delete that must be refused");
                            c.apply(&change);
                            m.nodes.remove(&va);
                            m.order.retain(|v| *v != va);
                            prop_assert!(c.va(va).is_none());
                            true
                        }
                        Err(e) => {
                            prop_assert!(!ok, "refused a valid delete: {:?}", e);
                            false
                        }
                    }
                }
            };
            if !accepted {
                prop_assert_eq!(snapshots(&c, &accounts), before);
            }
            check_tree(&c, &m, &accounts)?;
        }
    }
}

#[derive(Clone, Debug)]
enum LicOp {
    Add {
        va: usize,
        tag: u8,
        qty: i64,
        kind: u8,
    },
    Transfer {
        from: usize,
        to: usize,
        tag: u8,
        qty: i64,
    },
}

fn lic_op() -> impl Strategy<Value = LicOp> {
    prop_oneof![
        1 => (0usize..6, 0u8..3, 1i64..20, 0u8..4)
            .prop_map(|(va, tag, qty, kind)| LicOp::Add { va, tag, qty, kind }),
        2 => (0usize..6, 0usize..6, 0u8..3, -1i64..25)
            .prop_map(|(from, to, tag, qty)| LicOp::Transfer { from, to, tag, qty }),
    ]
}

fn kind_of(k: u8) -> LicenseKind {
    match k {
        0 => LicenseKind::Perpetual,
        1 => active_term(),
        2 => expired_term(),
        _ => future_term(),
    }
}

/// Units of `tag` in `va` that can still be transferred (not expired at [`NOW`]).
fn unexpired(c: &Catalog, va: VaId, tag: &str) -> u64 {
    c.licenses_in(va)
        .filter(|l| l.entitlement_tag == tag && !l.is_expired_at(NOW))
        .map(|l| l.quantity)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn license_transfers_conserve_quantities_and_keep_entries_intact(
        ops in prop::collection::vec(lic_op(), 1..60)
    ) {
        let (mut c, a) = with_account("Acme", "example.com");
        let b = add_account(&mut c, "Other", "other.org");
        let va_a = mk_va(&mut c, a.default_va, "a");
        let va_b = mk_va(&mut c, a.default_va, "b");
        let va_c = mk_va(&mut c, va_a, "c");
        let bx = mk_va(&mut c, b.default_va, "x");
        let vas = [a.default_va, va_a, va_b, va_c, b.default_va, bx];
        let account_of = |i: usize| if i < 4 { a.id } else { b.id };
        let accounts = [a.clone(), b.clone()];

        // The entries as added, by order reference, and the expected units per (VA, tag):
        // (unexpired, expired).
        let mut added: Vec<License> = Vec::new();
        let mut units: BTreeMap<(VaId, String), (u64, u64)> = BTreeMap::new();

        for op in ops {
            let before = snapshots(&c, &accounts);
            match op {
                LicOp::Add { va, tag, qty, kind } => {
                    let tag = format!("tag{tag}");
                    let n = added.len();
                    let mut s = spec(&tag, qty, kind_of(kind));
                    s.order_ref = Some(format!("o{n}"));
                    s.labels = [format!("L{n}")].into();
                    s.export_controlled = n.is_multiple_of(2);
                    let l = add_lic(&mut c, vas[va], s);
                    prop_assert_eq!(l.account, account_of(va));
                    let slot = units.entry((vas[va], tag)).or_default();
                    if l.is_expired_at(NOW) {
                        slot.1 += qty as u64;
                    } else {
                        slot.0 += qty as u64;
                    }
                    added.push(l);
                }
                LicOp::Transfer { from, to, tag, qty } => {
                    let tag = format!("tag{tag}");
                    let have = units.get(&(vas[from], tag.clone())).map_or(0, |u| u.0);
                    let ok = account_of(from) == account_of(to)
                        && from != to
                        && qty > 0
                        && have >= qty as u64;
                    match c.transfer_licenses(&admin(), vas[from], vas[to], &tag, qty, None, NOW, &IDS) {
                        Ok(change) => {
                            prop_assert!(ok, "accepted a transfer that must be refused");
                            c.apply(&change);
                            let q = qty as u64;
                            units.get_mut(&(vas[from], tag.clone())).unwrap().0 -= q;
                            units.entry((vas[to], tag)).or_default().0 += q;
                        }
                        Err(e) => {
                            prop_assert!(!ok, "refused a valid transfer: {:?}", e);
                            prop_assert_eq!(snapshots(&c, &accounts), before);
                        }
                    }
                }
            }

            // Every (VA, tag) holds what the model says, split into unexpired and expired.
            for (i, va) in vas.iter().enumerate() {
                for t in 0..3 {
                    let tag = format!("tag{t}");
                    let want = units.get(&(*va, tag.clone())).copied().unwrap_or((0, 0));
                    let got_unexpired = unexpired(&c, *va, &tag);
                    prop_assert_eq!((got_unexpired, qty_in(&c, *va, &tag) - got_unexpired), want);
                    let valid: u64 = c
                        .licenses_in(*va)
                        .filter(|l| l.entitlement_tag == tag && l.is_valid_at(NOW))
                        .map(|l| l.quantity)
                        .sum();
                    let line = c.pool(*va, NOW, |_, _| 0).into_iter().find(|l| l.entitlement_tag == tag);
                    prop_assert_eq!(line.map_or(0, |l| l.purchased), valid);
                }
                for l in c.licenses_in(*va) {
                    prop_assert!(l.quantity > 0, "an entry with quantity 0");
                    prop_assert_eq!(l.va, *va);
                    prop_assert_eq!(l.account, account_of(i));
                }
            }
            // Each added entry's units are conserved across its pieces, which keep its kind,
            // dates, labels and flags.
            let all: Vec<License> = vas.iter().flat_map(|v| c.licenses_in(*v).cloned()).collect();
            for orig in &added {
                let pieces: Vec<&License> =
                    all.iter().filter(|l| l.order_ref == orig.order_ref).collect();
                prop_assert!(pieces.iter().any(|p| p.id == orig.id), "the original id survives");
                let total: u64 = pieces.iter().map(|p| p.quantity).sum();
                prop_assert_eq!(total, orig.quantity);
                for p in pieces {
                    prop_assert_eq!(&p.entitlement_tag, &orig.entitlement_tag);
                    prop_assert_eq!(p.kind, orig.kind);
                    prop_assert_eq!(&p.labels, &orig.labels);
                    prop_assert_eq!(p.export_controlled, orig.export_controlled);
                    prop_assert_eq!(p.created_at, orig.created_at);
                    prop_assert_eq!(p.account, orig.account);
                }
            }
        }
    }
}
