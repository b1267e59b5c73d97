//! [`TagCounts`]: a device's usage, entitlement tag by tag.

use serde::{Deserialize, Serialize};

use super::Tag;

/// Units per entitlement tag, sorted by tag: a device uses a few tags, and a `BTreeMap` would
/// allocate a node of eleven slots (~370 bytes) per device, which at a million devices is a
/// third of a gigabyte. Stored as a map, so the bytes on disk are those of the `BTreeMap` it
/// replaced (the golden-bytes tests pin them). A boxed slice, not a `Vec`: 8 bytes less in
/// every device record (`domain::tests::load::a_device_record_fits_its_size_class`); a change
/// of a device's tags builds a new one, as shrinking the `Vec` to fit did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagCounts(pub(super) Box<[(Tag, u64)]>);

impl TagCounts {
    pub fn new() -> Self {
        TagCounts(Box::default())
    }

    fn find(&self, tag: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(t, _)| (**t).cmp(tag))
    }

    pub fn get(&self, tag: &str) -> Option<&u64> {
        self.find(tag).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, tag: &str) -> bool {
        self.find(tag).is_ok()
    }

    /// Sets the units of `tag`, returning the previous value.
    pub fn insert(&mut self, tag: impl Into<Tag> + AsRef<str>, units: u64) -> Option<u64> {
        match self.find(tag.as_ref()) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, units)),
            Err(i) => {
                let mut lines = std::mem::take(&mut self.0).into_vec();
                lines.insert(i, (tag.into(), units));
                self.0 = lines.into_boxed_slice();
                None
            }
        }
    }

    pub fn remove(&mut self, tag: &str) -> Option<u64> {
        let i = self.find(tag).ok()?;
        let mut lines = std::mem::take(&mut self.0).into_vec();
        let (_, units) = lines.remove(i);
        self.0 = lines.into_boxed_slice();
        Some(units)
    }

    /// Tags in order, with their units.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Tag, &u64)> + Clone {
        self.0.iter().map(|(t, n)| (t, n))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter().map(|(t, _)| t)
    }

    pub fn values(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|(_, n)| n)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces each tag with the shared copy in `names` (adding the ones it lacks).
    pub fn intern(&mut self, names: &mut std::collections::HashSet<Tag>) {
        for (tag, _) in &mut self.0 {
            *tag = intern(names, tag);
        }
    }
}

/// The shared copy of `tag` in `names`, added if it is not there yet.
pub fn intern(names: &mut std::collections::HashSet<Tag>, tag: &Tag) -> Tag {
    match names.get(&**tag) {
        Some(shared) => shared.clone(),
        None => {
            names.insert(tag.clone());
            tag.clone()
        }
    }
}

impl<T: Into<Tag> + AsRef<str>> FromIterator<(T, u64)> for TagCounts {
    /// Later entries of a repeated tag win, as with a map.
    fn from_iter<I: IntoIterator<Item = (T, u64)>>(iter: I) -> Self {
        let mut lines: Vec<(Tag, u64)> = iter.into_iter().map(|(t, n)| (t.into(), n)).collect();
        // A stable sort keeps a repeated tag's entries in order; reversed, the last comes first
        // and is the one `dedup` keeps.
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        lines.reverse();
        lines.dedup_by(|a, b| a.0 == b.0);
        lines.reverse();
        TagCounts(lines.into_boxed_slice())
    }
}

impl<'a> IntoIterator for &'a TagCounts {
    type Item = (&'a Tag, &'a u64);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (Tag, u64)>, fn(&'a (Tag, u64)) -> (&'a Tag, &'a u64)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(t, n)| (t, n))
    }
}

impl std::ops::Index<&str> for TagCounts {
    type Output = u64;

    fn index(&self, tag: &str) -> &u64 {
        self.get(tag).expect("no such entitlement tag")
    }
}

impl Serialize for TagCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(t, n)| (&**t, n)))
    }
}

impl<'de> Deserialize<'de> for TagCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TagCounts;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of entitlement tags to units")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TagCounts, A::Error> {
                let mut entries: Vec<(String, u64)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((tag, units)) = map.next_entry::<String, u64>()? {
                    entries.push((tag, units));
                }
                Ok(entries.into_iter().collect())
            }
        }
        d.deserialize_map(Visitor)
    }
}
