//! "Did you mean …?" for a virtual account the daemon does not know.
//!
//! The suggestions come from the caller's own VA listing (`GET /v1/vas`), which the daemon
//! limits to what the caller may read (SPEC §7), so they can never name a VA the caller could
//! not already list: a mistyped reference teaches nothing about other tenants. The daemon's
//! answer stays what it is (`not_found`, exit 1); only its message grows.

use super::client::{AdminClient, Refused};
use crate::protocol::admin::VaView;

/// At most this many suggestions.
const MAX_SUGGESTIONS: usize = 3;

/// If `err` is the daemon's "virtual account `X` not found", adds the closest VAs the caller
/// may see and the path form; any other error is returned as it is.
pub async fn va_not_found(client: &AdminClient, err: anyhow::Error) -> anyhow::Error {
    let Some(r) = err.downcast_ref::<Refused>() else {
        return err;
    };
    let wanted = r
        .message
        .strip_prefix("virtual account `")
        .and_then(|m| m.strip_suffix("` not found"));
    let (Some(wanted), "not_found") = (wanted, r.code.as_str()) else {
        return err;
    };
    // Best effort: without a listing the daemon's message stands alone.
    let Ok(vas) = client.get::<Vec<VaView>>("/v1/vas").await else {
        return err;
    };
    let paths: Vec<&str> = vas.iter().map(|v| v.path.as_str()).collect();
    Refused {
        status: r.status,
        code: r.code.clone(),
        message: format!("{}{}", r.message, hint(wanted, &paths)),
    }
    .into()
}

/// The text added to the not-found message: the closest paths, then the path form.
fn hint(wanted: &str, paths: &[&str]) -> String {
    let close = closest(wanted, paths);
    let mut out = match close.is_empty() {
        true => ";".to_owned(),
        false => format!("; did you mean {}?", close.join(", ")),
    };
    let example = paths
        .iter()
        .find(|p| p.matches('/').count() >= 2)
        .or(paths.first())
        .copied()
        .unwrap_or("acme/Default/emea");
    out.push_str(&format!(
        " VAs are named by path, ACCOUNT/Default/..., such as {example}, or by id; `satellite va \
         list` shows those you may see"
    ));
    out
}

/// The paths nearest to `wanted`: by edit distance of the whole path, or of the last segment
/// (for a bare name such as `emea`), or those `wanted` is the tail of (`Default/emea`).
fn closest<'a>(wanted: &str, paths: &[&'a str]) -> Vec<&'a str> {
    let wanted = wanted.to_lowercase();
    let last = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
    let wanted_last = last(&wanted);
    // About one edit in three characters, at least one (two for a whole path).
    let near = |d: usize, len: usize, min: usize| d <= (len / 3).max(min);
    let mut scored: Vec<(usize, &str)> = paths
        .iter()
        .filter_map(|p| {
            let p_lc = p.to_lowercase();
            if p_lc.ends_with(&format!("/{wanted}")) {
                return Some((0, *p));
            }
            let whole = distance(&wanted, &p_lc);
            let name = distance(&wanted_last, &last(&p_lc));
            let whole = near(whole, wanted.chars().count(), 2).then_some(whole);
            let name = near(name, wanted_last.chars().count(), 1).then_some(name + 1);
            whole.into_iter().chain(name).min().map(|d| (d, *p))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, p)| p)
        .collect()
}

/// Edit distance over characters, a swap of two neighbours counting as one edit (optimal
/// string alignment): `emae` is one edit from `emea`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATHS: &[&str] = &[
        "acme/Default",
        "acme/Default/emea",
        "acme/Default/emea/paris",
        "acme/Default/amer",
    ];

    #[test]
    fn a_typo_a_bare_name_and_a_missing_account_find_the_path() {
        assert_eq!(closest("acme/Defaul", PATHS), ["acme/Default"]);
        assert_eq!(closest("acme/Default/emae", PATHS)[0], "acme/Default/emea");
        assert_eq!(closest("emae", PATHS), ["acme/Default/emea"]);
        assert_eq!(closest("emea", PATHS)[0], "acme/Default/emea");
        assert_eq!(
            closest("Default/emea/paris", PATHS),
            ["acme/Default/emea/paris"]
        );
        assert!(closest("globex/Default/zzz", PATHS).is_empty());
    }

    #[test]
    fn the_hint_names_the_path_form_even_without_a_suggestion() {
        let h = hint("zzz", PATHS);
        assert!(
            !h.contains("did you mean") && h.starts_with("; VAs are named"),
            "{h}"
        );
        assert!(
            h.contains("ACCOUNT/Default/...") && h.contains("acme/Default/emea"),
            "{h}"
        );
        assert!(hint("x", &[]).contains("ACCOUNT/Default/..."));
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("été", "ete"), 2);
        assert_eq!(distance("emae", "emea"), 1);
    }
}
