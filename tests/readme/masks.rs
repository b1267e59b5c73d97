//! Run-dependent values in the README (ids, secrets, times, codes, fingerprints) and how a
//! README value stands for the value of this run.
//!
//! A mask is a shape, recognised by hand rather than by a regular expression crate the project
//! does not otherwise need. Where the README shows a value of some shape, the run may print any
//! value of the same shape. Identities (ids, secrets, codes, fingerprints) are also *bound*: the
//! first time a README value is matched it stands for that run value from then on, so a value
//! the README shows twice must be the same value twice in the run, two different README values
//! must be two different run values, and a bound value in a later command is replaced by the run
//! value (a token's secret printed by `token create`, then exported for `agent register`).
//! Times, dates and uids are shapes only: two commands may straddle a second or a midnight.

use std::collections::HashMap;

/// The shapes of run-dependent values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `local:uid=1000`: who ran the CLI.
    Uid,
    /// `SRQ1-…`, `SAC1-…`, `SRT1-…`: reservation codes. The README may cut one short with
    /// `...`, since a code is hundreds of characters long.
    Code,
    /// `srt_…` (registration token) and `sat_…` (API token) secrets.
    Secret,
    /// A UUID, lower-case.
    Uuid,
    /// An RFC 3339 time, `2026-03-01T10:00:00Z`.
    Time,
    /// A date, `2026-03-01`.
    Date,
    /// 16 or more lower-case hex digits: keys, key ids, ingest URL keys, serials.
    Hex,
}

impl Shape {
    /// Whether a README value of this shape stands for one run value (see the module docs).
    fn is_bound(self) -> bool {
        !matches!(self, Shape::Uid | Shape::Time | Shape::Date)
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// The number of bytes at the start of `s` that satisfy `f`.
fn run(s: &[u8], f: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|b| f(**b)).count()
}

/// Matches `pattern` at the start of `s`: `9` is a digit, `h` a hex digit, anything else
/// itself. Returns the length matched.
fn pattern(s: &[u8], pattern: &str) -> Option<usize> {
    let p = pattern.as_bytes();
    if s.len() < p.len() {
        return None;
    }
    let ok = p.iter().zip(s).all(|(p, c)| match p {
        b'9' => c.is_ascii_digit(),
        b'h' => is_hex(*c),
        _ => p == c,
    });
    ok.then_some(p.len())
}

fn uid(s: &[u8]) -> Option<usize> {
    let digits = run(s.strip_prefix(b"uid=")?, |b| b.is_ascii_digit());
    (digits > 0).then_some(4 + digits)
}

fn code(s: &[u8]) -> Option<usize> {
    let kind = [b"SRQ1-", b"SAC1-", b"SRT1-"]
        .into_iter()
        .find(|k| s.starts_with(*k))?;
    let body = run(&s[kind.len()..], |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
    });
    (body > 0).then_some(kind.len() + body)
}

fn secret(s: &[u8]) -> Option<usize> {
    if !(s.starts_with(b"srt_") || s.starts_with(b"sat_")) {
        return None;
    }
    let digits = run(&s[4..], is_hex);
    (digits >= 16).then_some(4 + digits)
}

fn time(s: &[u8]) -> Option<usize> {
    let mut n = pattern(s, "9999-99-99T99:99:99")?;
    if s.get(n) == Some(&b'.') {
        let fraction = run(&s[n + 1..], |b| b.is_ascii_digit());
        if fraction > 0 {
            n += 1 + fraction;
        }
    }
    match s.get(n) {
        Some(b'Z') => Some(n + 1),
        Some(b'+' | b'-') => Some(n + 1 + pattern(&s[n + 1..], "99:99")?),
        _ => None,
    }
}

fn date(s: &[u8]) -> Option<usize> {
    let n = pattern(s, "9999-99-99")?;
    // Not a part of a time, and not the start of a longer number.
    (!matches!(s.get(n), Some(b'T') | Some(b'0'..=b'9'))).then_some(n)
}

/// The shape of the value starting at byte `at` of `text`, and its length, if one starts there.
/// A value starts only at the start of a word and ends at the end of one.
pub fn shape_at(text: &str, at: usize) -> Option<(Shape, usize)> {
    let bytes = text.as_bytes();
    if at > 0 && is_word(bytes[at - 1]) {
        return None;
    }
    let s = &bytes[at..];
    let found = [
        (Shape::Uid, uid(s)),
        (Shape::Code, code(s)),
        (Shape::Secret, secret(s)),
        (
            Shape::Uuid,
            pattern(s, "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh"),
        ),
        (Shape::Time, time(s)),
        (Shape::Date, date(s)),
        (Shape::Hex, Some(run(s, is_hex)).filter(|n| *n >= 16)),
    ]
    .into_iter()
    .find_map(|(shape, n)| n.map(|n| (shape, n)))?;
    // A value is a whole word: `deadbeef…x` is not a fingerprint.
    let ends_word = s.get(found.1).is_none_or(|b| !is_word(*b));
    ends_word.then_some(found)
}

/// Which run value each bound README value stands for, and back.
#[derive(Debug, Default)]
pub struct Bindings {
    run_of: HashMap<String, String>,
    readme_of: HashMap<String, String>,
}

/// New pairs (README value, run value) found while matching, not yet bound.
pub type Pairs = Vec<(String, String)>;

impl Bindings {
    /// Binds the pairs of an accepted match.
    pub fn bind(&mut self, pairs: Pairs) {
        for (readme, run) in pairs {
            self.readme_of.insert(run.clone(), readme.clone());
            self.run_of.insert(readme, run);
        }
    }

    /// Checks that `readme` may stand for `run`, given what is bound and the `pending` pairs of
    /// the same output; adds the pair to `pending` if it is new.
    fn check(&self, pending: &mut Pairs, readme: &str, run: &str) -> Result<(), String> {
        let run_of = |r: &str| {
            self.run_of
                .get(r)
                .cloned()
                .or_else(|| pending.iter().find(|p| p.0 == r).map(|p| p.1.clone()))
        };
        let readme_of = |v: &str| {
            self.readme_of
                .get(v)
                .cloned()
                .or_else(|| pending.iter().find(|p| p.1 == v).map(|p| p.0.clone()))
        };
        match (run_of(readme), readme_of(run)) {
            (Some(bound), _) if bound != run => Err(format!(
                "`{readme}` stands for `{bound}` earlier in this run, but here the value is `{run}`"
            )),
            (None, Some(other)) => Err(format!(
                "the value `{run}` is shown as `{other}` earlier in the README, not as `{readme}`"
            )),
            (Some(_), _) => Ok(()),
            (None, None) => {
                pending.push((readme.to_string(), run.to_string()));
                Ok(())
            }
        }
    }

    /// Matches one line of output the README shows against the line the run printed: text
    /// outside values must be equal, a value must have the same shape and, if bound, stand for
    /// the same run value. Returns the new pairs to bind, or why the lines differ.
    pub fn match_line(
        &self,
        readme: &str,
        actual: &str,
        pending: &mut Pairs,
    ) -> Result<(), String> {
        let (e, a) = (readme.as_bytes(), actual.as_bytes());
        let (mut i, mut j) = (0, 0);
        while i < e.len() {
            if let Some((shape, n)) = shape_at(readme, i) {
                let Some((found, m)) = shape_at(actual, j).filter(|(s, _)| *s == shape) else {
                    return Err(format!("no {shape:?} value at column {}", j + 1));
                };
                if found.is_bound() {
                    self.check(pending, &readme[i..i + n], &actual[j..j + m])?;
                }
                i += n;
                j += m;
            } else if a.get(j) == Some(&e[i]) {
                i += 1;
                j += 1;
            } else {
                return Err(format!("they differ from column {}", j + 1));
            }
        }
        if j < a.len() {
            return Err(format!("the run's line goes on at column {}", j + 1));
        }
        Ok(())
    }

    /// `command` with every bound README value replaced by its run value. A cut-short code
    /// (`SAC1-eyJ...`) that nothing printed before cannot be run as it is: that is an error.
    pub fn substitute(&self, command: &str) -> Result<String, String> {
        let mut out = String::with_capacity(command.len());
        let mut i = 0;
        while i < command.len() {
            match shape_at(command, i) {
                Some((shape, n)) if shape.is_bound() => {
                    let value = &command[i..i + n];
                    match self.run_of.get(value) {
                        Some(run) => out.push_str(run),
                        None if value.contains("...") => {
                            return Err(format!(
                                "`{value}` is cut short, but no output shown before it prints \
                                 that value"
                            ));
                        }
                        None => out.push_str(value),
                    }
                    i += n;
                }
                _ => {
                    let c = command[i..].chars().next().expect("inside the string");
                    out.push(c);
                    i += c.len_utf8();
                }
            }
        }
        Ok(out)
    }
}

#[test]
fn shapes_are_recognised_as_whole_words() {
    let at = |s: &str| shape_at(s, 0);
    assert_eq!(
        at("c171ae55-966f-4952-bf5e-ac4eb495516c"),
        Some((Shape::Uuid, 36))
    );
    assert_eq!(at("2026-03-01T10:00:00Z rest"), Some((Shape::Time, 20)));
    assert_eq!(at("2027-06-01T10:31:59.123+02:00"), Some((Shape::Time, 29)));
    assert_eq!(at("2026-12-29)"), Some((Shape::Date, 10)));
    assert_eq!(at("srt_0123456789abcdef0123"), Some((Shape::Secret, 24)));
    assert_eq!(at("SAC1-eyJyZX.9f... --x"), Some((Shape::Code, 17)));
    assert_eq!(at("uid=1000"), Some((Shape::Uid, 8)));
    assert_eq!(
        at("90b6c4f01a7e7cfebccf1b59663349d1/"),
        Some((Shape::Hex, 32))
    );
    assert_eq!(at("90b6c4f01a7e7cfebccf1b59663349d1x"), None);
    assert_eq!(
        at("0123456789abcde"),
        None,
        "15 hex digits are not a fingerprint"
    );
    assert_eq!(
        shape_at("acme-90b6c4f01a7e7cfebccf", 5),
        Some((Shape::Hex, 20))
    );
    assert_eq!(
        shape_at("x90b6c4f01a7e7cfebccf", 1),
        None,
        "not at a word start"
    );
    assert_eq!(at("regid.2019-03.com.example.ADV"), None);
}

#[test]
fn a_readme_value_stands_for_one_run_value() {
    let mut b = Bindings::default();
    let mut pairs = Pairs::new();
    let readme = "token e349fb1c-5bb9-430a-94b3-6264a2a22981 (expires 2026-12-29)";
    let run = "token 02063863-f0ab-4623-a4ad-d61660db7e27 (expires 2027-01-02)";
    b.match_line(readme, run, &mut pairs).unwrap();
    b.bind(pairs);
    // The same README value must be the same run value again.
    let again = "e349fb1c-5bb9-430a-94b3-6264a2a22981";
    let other = "11111111-f0ab-4623-a4ad-d61660db7e27";
    assert!(b.match_line(again, other, &mut Pairs::new()).is_err());
    // A second README value may not stand for a run value already shown as another.
    let second = "22222222-5bb9-430a-94b3-6264a2a22981";
    assert!(
        b.match_line(
            second,
            "02063863-f0ab-4623-a4ad-d61660db7e27",
            &mut Pairs::new()
        )
        .is_err()
    );
    // Shapes must agree, and the text around them must be equal.
    assert!(
        b.match_line("expires 2026-12-29", "expires never", &mut Pairs::new())
            .is_err()
    );
    assert!(
        b.match_line(
            "expires 2026-12-29",
            "expired 2026-12-29",
            &mut Pairs::new()
        )
        .is_err()
    );
    assert!(b.match_line("a", "ab", &mut Pairs::new()).is_err());
    // Later commands get the run's value.
    assert_eq!(
        b.substitute("satellite token revoke e349fb1c-5bb9-430a-94b3-6264a2a22981")
            .unwrap(),
        "satellite token revoke 02063863-f0ab-4623-a4ad-d61660db7e27"
    );
    assert!(
        b.substitute("satellite reserve --return SRT1-eyJ...")
            .is_err()
    );
}
