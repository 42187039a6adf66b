//! "Did you mean" suggestions for names a user typed.

/// At most this many suggestions are offered.
const MAX_SUGGESTIONS: usize = 3;

/// Names close to `query`: first those whose last `/` component equals the query's (so
/// `logits` finds `dense_2/logits`), then those within a small edit distance, best first.
pub(crate) fn suggest<'a>(query: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let query_chars: Vec<char> = query.chars().collect();
    // A third of the length, at least 1 and at most 4: "logit" finds "logits", "x" does not
    // find every other one-letter name... unless it is one edit away.
    let limit = (query_chars.len() / 3).clamp(1, 4);
    let query_leaf = leaf(query);
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
        // Cheap length filter before the quadratic distance.
        let len = name.chars().count();
        if len.abs_diff(query_chars.len()) > limit {
            continue;
        }
        if let Some(d) = bounded_levenshtein(&query_chars, name, limit, &mut row) {
            scored.push((d, name));
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
    }

    #[test]
    fn suggestions_prefer_leaf_matches_then_close_names() {
        let names = ["dense_2/logits", "logit", "pred", "dense/kernel", "loss"];
        let got = suggest("logits", names.iter().copied());
        assert_eq!(got, ["dense_2/logits", "logit"]);
        assert!(suggest("completely_different", names.iter().copied()).is_empty());
    }
}
