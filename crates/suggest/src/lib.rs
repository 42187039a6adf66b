//! "Did you mean" suggestions for names a user typed: tensor names in a checkpoint, node and
//! function names in a graph. One matching rule and one threshold for the whole workspace, so
//! `ckpt show` and `ckpt-run --fetch` suggest the same way.
//!
//! ```
//! use ckpt_suggest::{close_names, did_you_mean};
//!
//! let names = ["dense/kernel", "dense/bias", "dense_2/logits", "global_step"];
//! assert_eq!(close_names("dense/kernal", names), ["dense/kernel"]);
//! assert_eq!(close_names("logits", names), ["dense_2/logits"]);
//! assert_eq!(close_names("global", names), ["global_step"]);
//! assert_eq!(did_you_mean(&close_names("dense/kernal", names)), "; did you mean \"dense/kernel\"?");
//! assert_eq!(did_you_mean(&[]), "");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt::Write as _;

/// At most this many suggestions are offered.
pub const MAX_SUGGESTIONS: usize = 3;

/// Queries shorter than this (in characters) are not matched as fragments of longer names:
/// `"x"` would be part of half the names of a graph.
const MIN_FRAGMENT_LEN: usize = 3;

/// The largest edit distance accepted for a query of `len` characters: a third of its length,
/// at least 1 and at most 4 (`"logit"` finds `"logits"`, `"x"` finds `"y"` but not `"xyz"`).
pub fn edit_limit(len: usize) -> usize {
    (len / 3).clamp(1, 4)
}

/// Up to [`MAX_SUGGESTIONS`] names close to `query`, best first:
/// 1. names whose last `/` component equals the query's (`logits` finds `dense_2/logits`);
/// 2. names within [`edit_limit`] edits (Levenshtein distance over characters), nearest first;
/// 3. names that contain the query as a fragment (`global` finds `global_step`), when the
///    query has at least three characters.
///
/// Ties keep the order of `names`' sort (bytewise). `query` itself is never suggested. The work
/// is linear in the number of names: a length filter and a distance computation that stops once
/// the limit is exceeded.
pub fn close_names<'a>(query: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let query_chars: Vec<char> = query.chars().collect();
    let limit = edit_limit(query_chars.len());
    let query_leaf = leaf(query);
    let fragment_ok = query_chars.len() >= MIN_FRAGMENT_LEN;
    let mut scored: Vec<(usize, &str)> = Vec::new();
    let mut row = Vec::new();
    for name in names {
        if name == query {
            continue;
        }
        if leaf(name) == query_leaf {
            scored.push((0, name));
            continue;
        }
        let len = name.chars().count();
        if len.abs_diff(query_chars.len()) <= limit {
            if let Some(d) = bounded_levenshtein(&query_chars, name, limit, &mut row) {
                scored.push((d, name));
                continue;
            }
        }
        if fragment_ok && name.contains(query) {
            scored.push((limit + 1, name));
        }
    }
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, n)| n.to_owned())
        .collect()
}

/// `; did you mean "a", "b" or "c"?` to append to an error message, or nothing when there is
/// no suggestion.
pub fn did_you_mean(suggestions: &[String]) -> String {
    let mut out = String::new();
    let Some((last, rest)) = suggestions.split_last() else {
        return out;
    };
    out.push_str("; did you mean ");
    for (i, s) in rest.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{s:?}");
    }
    if !rest.is_empty() {
        out.push_str(" or ");
    }
    let _ = write!(out, "{last:?}?");
    out
}

fn leaf(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Levenshtein distance between `a` and `b` when it is at most `limit`, else `None`.
fn bounded_levenshtein(a: &[char], b: &str, limit: usize, row: &mut Vec<usize>) -> Option<usize> {
    row.clear();
    row.extend(0..=a.len());
    for (j, cb) in b.chars().enumerate() {
        let mut diag = j; // row[0] of the previous row
        let mut left = j + 1; // row[0] of this row
        let mut best = left;
        for (i, &ca) in a.iter().enumerate() {
            let up = row.get(i + 1).copied().unwrap_or(usize::MAX);
            let cost = usize::from(ca != cb);
            let value = (diag + cost).min(up.saturating_add(1)).min(left + 1);
            diag = up;
            if let Some(slot) = row.get_mut(i + 1) {
                *slot = value;
            }
            left = value;
            best = best.min(value);
        }
        if let Some(first) = row.first_mut() {
            *first = j + 1;
        }
        if best > limit {
            return None;
        }
    }
    row.last().copied().filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: &str, b: &str) -> Option<usize> {
        let a: Vec<char> = a.chars().collect();
        bounded_levenshtein(&a, b, 10, &mut Vec::new())
    }

    #[test]
    fn levenshtein_matches_known_distances() {
        assert_eq!(distance("kitten", "sitting"), Some(3));
        assert_eq!(distance("", "abc"), Some(3));
        assert_eq!(distance("abc", ""), Some(3));
        assert_eq!(distance("flaw", "lawn"), Some(2));
        assert_eq!(distance("same", "same"), Some(0));
        let a: Vec<char> = "kitten".chars().collect();
        assert_eq!(bounded_levenshtein(&a, "sitting", 2, &mut Vec::new()), None);
    }

    #[test]
    fn suggestions_prefer_leaf_matches_then_close_names() {
        let names = ["dense_2/logits", "logit", "pred", "dense/kernel", "loss"];
        let got = close_names("logits", names);
        assert_eq!(got, ["dense_2/logits", "logit"]);
        assert!(close_names("completely_different", names).is_empty());
    }

    #[test]
    fn tensor_names_of_a_checkpoint() {
        let names = [
            "dense/bias",
            "dense/kernel",
            "dense_1/kernel",
            "global_step",
        ];
        assert_eq!(
            close_names("dense/kernal", names),
            ["dense/kernel", "dense_1/kernel"]
        );
        assert_eq!(close_names("global", names), ["global_step"]);
        assert!(close_names("zzzzzzzz", names).is_empty());
        // Short queries are not fragments of everything.
        assert!(close_names("e", ["dense/kernel", "step"]).is_empty());
        // At most three, nearest first.
        let many = ["ab1", "ab22", "ab3", "ab4", "ab"];
        assert_eq!(close_names("abc", many), ["ab", "ab1", "ab3"]);
    }

    #[test]
    fn suggestion_lists_read_naturally() {
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["a".into()]), "; did you mean \"a\"?");
        assert_eq!(
            did_you_mean(&["a".into(), "b".into(), "c".into()]),
            "; did you mean \"a\", \"b\" or \"c\"?"
        );
    }
}
