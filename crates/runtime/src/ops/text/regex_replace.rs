//! `StaticRegexReplace` (pattern and rewrite as attributes, compiled when the graph is loaded)
//! and `RegexReplace` (as inputs, compiled on each run): replaces the first match
//! (`replace_global = false`) or every match of an RE2 pattern in each string.
//!
//! The `regex` crate stands in for RE2; both are linear-time automata with the same syntax
//! for everything graphs commonly use (classes such as `[[:punct:]]`, `\pL`, alternation,
//! repetition, groups; no backreferences or lookaround in either). Differences: RE2's `\d`,
//! `\w`, `\s` and `\b` are ASCII-only while the `regex` crate's are Unicode-aware, so they
//! differ on non-ASCII text; strings are matched as bytes, UTF-8 where valid, as RE2 does.
//! The rewrite is RE2's: `\0`..`\9` insert a group, `\\` a backslash, and any other escape is
//! an error, as in `RE2::Rewrite`.

use ckpt_graph::Node;
use regex::bytes::Regex;

use crate::ops::{
    expect, kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build_static(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let pattern = node.attr_string("pattern")?;
    let rewrite = node.attr_bytes("rewrite")?;
    let global = node.attr_bool_or("replace_global", true)?;
    let (regex, rewrite) = compile(&pattern, rewrite).map_err(|m| node_error(node, m))?;
    kernel(Static {
        regex,
        rewrite,
        global,
    })
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Dynamic {
        global: node.attr_bool_or("replace_global", true)?,
    })
}

/// The compiled pattern and the rewrite in the `regex` crate's syntax (`${1}`, `$$`).
fn compile(pattern: &str, rewrite: &[u8]) -> Result<(Regex, Vec<u8>), String> {
    let regex = Regex::new(pattern).map_err(|e| format!("invalid pattern {pattern:?}: {e}"))?;
    let mut out = Vec::with_capacity(rewrite.len());
    let mut bytes = rewrite.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&d) if d.is_ascii_digit() => {
                    let group = usize::from(d - b'0');
                    if group >= regex.captures_len() {
                        return Err(format!(
                            "rewrite {:?} refers to group {group}, the pattern has {}",
                            String::from_utf8_lossy(rewrite),
                            regex.captures_len() - 1
                        ));
                    }
                    out.extend_from_slice(format!("${{{group}}}").as_bytes());
                }
                Some(b'\\') => out.push(b'\\'),
                _ => {
                    return Err(format!(
                    "invalid rewrite {:?}: a backslash must be followed by a digit or a backslash",
                    String::from_utf8_lossy(rewrite)
                ))
                }
            },
            b'$' => out.extend_from_slice(b"$$"),
            other => out.push(other),
        }
    }
    Ok((regex, out))
}

fn replace(regex: &Regex, rewrite: &[u8], global: bool, input: Value) -> Result<Value, OpError> {
    let s = expect::<Vec<u8>>(input, "input")?;
    let out: Vec<Vec<u8>> = s
        .data()
        .iter()
        .map(|x| {
            if global {
                regex.replace_all(x, rewrite).into_owned()
            } else {
                regex.replace(x, rewrite).into_owned()
            }
        })
        .collect();
    Ok(Value::Str(TensorBuf::new(s.shape().to_vec(), out)?))
}

#[derive(Debug)]
struct Static {
    regex: Regex,
    rewrite: Vec<u8>,
    global: bool,
}

impl Kernel for Static {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [input] = take_inputs(inputs)?;
        Ok(vec![replace(
            &self.regex,
            &self.rewrite,
            self.global,
            input,
        )?])
    }
}

#[derive(Debug)]
struct Dynamic {
    global: bool,
}

impl Kernel for Dynamic {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [input, pattern, rewrite] = take_inputs(inputs)?;
        let scalar = |v: Value, what: &str| -> Result<Vec<u8>, OpError> {
            let t = expect::<Vec<u8>>(v, what)?;
            match t.data() {
                [s] if t.rank() == 0 => Ok(s.clone()),
                _ => op_bail!("{what} must be a scalar string, got shape {:?}", t.shape()),
            }
        };
        let pattern = scalar(pattern, "pattern")?;
        let rewrite = scalar(rewrite, "rewrite")?;
        let pattern =
            String::from_utf8(pattern).map_err(|_| OpError("pattern is not UTF-8".into()))?;
        let (regex, rewrite) = compile(&pattern, &rewrite).map_err(OpError)?;
        Ok(vec![replace(&regex, &rewrite, self.global, input)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        pattern: &str,
        rewrite: &str,
        global: bool,
        input: &[&str],
    ) -> Result<Vec<String>, String> {
        let (regex, rewrite) = compile(pattern, rewrite.as_bytes())?;
        let v = Value::new(
            vec![input.len()],
            input
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
        let out = replace(&regex, &rewrite, global, v).map_err(|e| e.0)?;
        Ok(out
            .as_strings()
            .unwrap_or_default()
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    #[test]
    fn re2_rewrites_groups_and_literal_dollars() -> Result<(), String> {
        // tf.strings.regex_replace(["ab-cd", "x"], r"(\w+)-(\w+)", r"\2$\1\\") gives these.
        assert_eq!(
            run(r"(\w+)-(\w+)", r"\2$\1\\", true, &["ab-cd", "x"])?,
            vec!["cd$ab\\", "x"]
        );
        assert_eq!(run("[[:punct:]]", "", true, &["a.b,c!"])?, vec!["abc"]);
        assert_eq!(run("o", "0", false, &["foo"])?, vec!["f0o"]);
        assert_eq!(run("o", "0", true, &["foo"])?, vec!["f00"]);
        Ok(())
    }

    #[test]
    fn bad_patterns_and_rewrites_are_errors() {
        assert!(compile("(", b"").is_err());
        assert_eq!(
            compile("(a)", br"\2").err().as_deref(),
            Some("rewrite \"\\\\2\" refers to group 2, the pattern has 1")
        );
        assert!(compile("a", br"\n").is_err());
    }
}
