//! A device's last answer kept against its usage (`model/answer.rs`): the same answer comes
//! back whatever is kept, and only an answer whose lines are not the usage's keeps a list.

use proptest::prelude::*;

use super::*;

const STATUSES: [EntitlementStatus; 4] = [
    EntitlementStatus::Authorized,
    EntitlementStatus::OutOfCompliance,
    EntitlementStatus::NotAuthorized,
    EntitlementStatus::Unknown,
];

fn usage(lines: &[(&str, u64)]) -> TagCounts {
    lines.iter().map(|(t, n)| (*t, *n)).collect()
}

fn answer_of(usage: &TagCounts, statuses: &[EntitlementStatus]) -> AuthorizationState {
    AuthorizationState {
        status: InstanceStatus::OutOfCompliance,
        entitlements: usage
            .iter()
            .zip(statuses.iter().cycle())
            .map(|((t, n), s)| (t.clone(), *n, *s))
            .collect(),
        expires_at: NOW + Duration::days(90),
        next_report_by: NOW + Duration::hours(8),
    }
}

#[test]
fn an_answer_to_the_usage_keeps_only_its_statuses() {
    let u = usage(&[("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]);
    let answer = answer_of(&u, &STATUSES);
    let kept = LastAnswer::new(&answer, &u);
    assert!(!kept.keeps_its_lines());
    assert_eq!(kept.answer(&u), Some(answer.clone()));
    assert_eq!(kept.lines(&u).unwrap().len(), 5);
    assert_eq!(LastAnswer::from_owned(answer, &u), kept);
    // The record keeps no vector for it: the inline answer is smaller than the one it replaced.
    assert!(
        std::mem::size_of::<Option<LastAnswer>>()
            < std::mem::size_of::<Option<AuthorizationState>>(),
        "Option<LastAnswer> is {} bytes",
        std::mem::size_of::<Option<LastAnswer>>()
    );
}

#[test]
fn an_answer_that_is_not_the_usage_keeps_its_lines() {
    let u = usage(&[("a", 1), ("b", 2)]);
    let mut other_units = answer_of(&u, &STATUSES);
    other_units.entitlements[1].1 = 7;
    let mut other_tag = answer_of(&u, &STATUSES);
    other_tag.entitlements[0].0 = "z".into();
    let mut fewer = answer_of(&u, &STATUSES);
    fewer.entitlements.pop();
    let many: Vec<(String, u64)> = (0..=PACKED_LINES)
        .map(|n| (format!("t{n:02}"), 1))
        .collect();
    let many_usage: TagCounts = many.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    let too_many = answer_of(&many_usage, &STATUSES);
    for (answer, u) in [
        (other_units, &u),
        (other_tag, &u),
        (fewer, &u),
        (too_many, &many_usage),
    ] {
        let kept = LastAnswer::new(&answer, u);
        assert!(kept.keeps_its_lines(), "{answer:?}");
        assert_eq!(kept.answer(u), Some(answer));
    }
}

/// Every path that changes a device's usage sets or clears its answer. Were one not to, the
/// packed statuses would belong to another usage: the answer is then gone rather than wrong.
#[test]
fn a_usage_changed_under_a_packed_answer_gives_no_answer() {
    let mut u = usage(&[("a", 1), ("b", 2)]);
    let kept = LastAnswer::new(&answer_of(&u, &STATUSES), &u);
    u.insert("b", 3);
    assert_eq!(kept.answer(&u), None);
    assert!(kept.lines(&u).is_none());
}

/// A repeated report gets the answer the first one got, after the catalog has moved on.
#[test]
fn a_repeated_report_gets_the_kept_answer() {
    let (mut c, account) = with_account("acme", "acme.com");
    let va = account.default_va;
    add_lic(&mut c, va, perpetual("dna", 1));
    let id = register(&mut c, va, 1);
    let timers = DeviceTimers::default();
    let first = match c
        .report_usage(id, 1, NOW, &[("dna".into(), 2)], NOW, &timers)
        .unwrap()
    {
        UsageOutcome::Applied(change, answer) => {
            c.apply(&change);
            answer
        }
        UsageOutcome::Repeat(_) => panic!("a first report is applied"),
    };
    assert_eq!(first.entitlements[0].2, EntitlementStatus::OutOfCompliance);
    assert!(
        !c.fleet.instances[&id]
            .last_answer
            .as_ref()
            .unwrap()
            .keeps_its_lines()
    );
    add_lic(&mut c, va, perpetual("dna", 5));
    match c
        .report_usage(id, 1, NOW, &[("dna".into(), 2)], NOW, &timers)
        .unwrap()
    {
        UsageOutcome::Repeat(again) => assert_eq!(again, first),
        UsageOutcome::Applied(..) => panic!("a repeated seq is not applied again"),
    }
}

proptest! {
    #[test]
    fn whatever_is_kept_the_same_answer_comes_back(
        lines in proptest::collection::btree_map("[a-z]{1,6}", 0u64..1_000_000, 0..24),
        statuses in proptest::collection::vec(0usize..4, 1..24),
        change in proptest::option::of((0usize..24, 1u64..5)),
    ) {
        let u: TagCounts = lines.iter().map(|(t, n)| (t.as_str(), *n)).collect();
        let statuses: Vec<_> = statuses.iter().map(|s| STATUSES[*s]).collect();
        let mut answer = answer_of(&u, &statuses);
        let mut differs = false;
        if let Some((line, more)) = change
            && !answer.entitlements.is_empty()
        {
            let n = line % answer.entitlements.len();
            answer.entitlements[n].1 += more;
            differs = true;
        }
        let kept = LastAnswer::new(&answer, &u);
        prop_assert_eq!(kept.keeps_its_lines(), differs || u.len() > PACKED_LINES);
        prop_assert_eq!(kept.answer(&u), Some(answer));
    }
}

proptest! {
    /// A device's usage, a boxed slice rebuilt on each change of its tags, answers as the
    /// `BTreeMap` it replaced: built from entries with repeats (the last wins), then changed.
    #[test]
    fn a_usage_answers_like_a_map(
        built in proptest::collection::vec(("[a-d]{1,2}", 0u64..5), 0..12),
        changes in proptest::collection::vec(("[a-d]{1,2}", proptest::option::of(0u64..5)), 0..24),
    ) {
        use std::collections::BTreeMap;
        let mut usage: TagCounts = built.iter().map(|(t, n)| (t.as_str(), *n)).collect();
        let mut model: BTreeMap<String, u64> = built.iter().cloned().collect();
        for (tag, units) in changes {
            match units {
                Some(n) => prop_assert_eq!(usage.insert(tag.as_str(), n), model.insert(tag, n)),
                None => prop_assert_eq!(usage.remove(&tag), model.remove(&tag)),
            }
            prop_assert!(usage.iter().map(|(t, n)| (&**t, *n)).eq(model.iter().map(|(t, n)| (t.as_str(), *n))));
            prop_assert_eq!(usage.len(), model.len());
        }
    }
}
