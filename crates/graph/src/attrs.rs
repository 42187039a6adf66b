//! A node's attributes by name.

use std::collections::BTreeMap;

use ckpt_proto::AttrValue;

/// A node's attributes, sorted by name: a vector searched by binary search. Nodes have a
/// handful of attributes, and a `BTreeMap` leaf reserves room for eleven `AttrValue`s (about
/// 2.4 KB per node), which made a 1-million-node graph take gigabytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attrs(Vec<(String, AttrValue)>);

impl Attrs {
    /// No attributes.
    pub fn new() -> Attrs {
        Attrs(Vec::new())
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The attribute `name`, if present.
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    /// Whether the attribute `name` is present.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets attribute `name`, returning the value it replaces.
    pub fn insert(&mut self, name: String, value: AttrValue) -> Option<AttrValue> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// The attribute names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The attribute values, in name order.
    pub fn values(&self) -> impl Iterator<Item = &AttrValue> {
        self.0.iter().map(|(_, v)| v)
    }

    /// `(name, value)` pairs, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&BTreeMap<String, AttrValue>> for Attrs {
    /// The attributes of a NodeDef (already sorted by name).
    fn from(map: &BTreeMap<String, AttrValue>) -> Attrs {
        let mut v = Vec::with_capacity(map.len());
        v.extend(map.iter().map(|(k, a)| (k.clone(), a.clone())));
        Attrs(v)
    }
}

impl From<BTreeMap<String, AttrValue>> for Attrs {
    /// The attributes of a NodeDef (already sorted by name), moved rather than copied.
    fn from(map: BTreeMap<String, AttrValue>) -> Attrs {
        Attrs(map.into_iter().collect())
    }
}

impl FromIterator<(String, AttrValue)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (String, AttrValue)>>(iter: I) -> Attrs {
        let mut attrs = Attrs::new();
        for (k, v) in iter {
            attrs.insert(k, v);
        }
        attrs
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'a String, &'a AttrValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, AttrValue)>,
        fn(&'a (String, AttrValue)) -> (&'a String, &'a AttrValue),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ckpt_proto::attr_value::Value;

    fn int(i: i64) -> AttrValue {
        AttrValue {
            value: Some(Value::I(i)),
        }
    }

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut a = Attrs::new();
        assert_eq!(a.insert("T".into(), int(1)), None);
        assert_eq!(a.insert("N".into(), int(2)), None);
        assert_eq!(a.insert("axis".into(), int(3)), None);
        assert_eq!(a.insert("N".into(), int(4)), Some(int(2)));
        assert_eq!(a.keys().collect::<Vec<_>>(), ["N", "T", "axis"]);
        assert_eq!(a.get("N"), Some(&int(4)));
        assert!(a.contains_key("axis") && !a.contains_key("x"));
        assert_eq!(a.len(), 3);
        let map: BTreeMap<String, AttrValue> =
            a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(Attrs::from(&map), a);
    }
}
