//! The `checkpoint` state file: a text-format `CheckpointState` naming the latest
//! checkpoint of a directory and the ones kept before it.
//!
//! ```
//! use ckpt_bundle::state::{format_state, parse_state};
//!
//! let st = parse_state("model_checkpoint_path: \"model.ckpt-5\"\n\
//!                       all_model_checkpoint_paths: \"model.ckpt-5\"\n")?;
//! assert_eq!(st.model_checkpoint_path, "model.ckpt-5");
//! assert_eq!(parse_state(&format_state(&st))?, st);
//! # Ok::<(), ckpt_bundle::Error>(())
//! ```

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use ckpt_proto::CheckpointState;

use crate::error::{Error, Result};
use crate::paths::{index_path, meta_path, strip_data_suffix};

/// The state file's name inside a checkpoint directory (`latest_filename` default).
pub const STATE_FILE_NAME: &str = "checkpoint";

/// Reads `dir/checkpoint`. As TensorFlow's `get_checkpoint_state` does, relative paths in
/// it are joined onto `dir`, and an empty `model_checkpoint_path` is an error.
pub fn read_state(dir: &Path) -> Result<CheckpointState> {
    let path = dir.join(STATE_FILE_NAME);
    let mut st = read_raw(&path)?;
    if st.model_checkpoint_path.is_empty() {
        return Err(Error::StateFile {
            path,
            line: 0,
            reason: "model_checkpoint_path is empty or missing".to_string(),
        });
    }
    let join = |p: &str| join_dir(dir, p).to_string_lossy().into_owned();
    st.model_checkpoint_path = join(&st.model_checkpoint_path);
    for p in &mut st.all_model_checkpoint_paths {
        *p = join(p);
    }
    Ok(st)
}

fn read_raw(path: &Path) -> Result<CheckpointState> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| Error::StateFile {
        path: path.to_path_buf(),
        line: 0,
        reason: format!("not UTF-8 text ({e})"),
    })?;
    parse_state(&text).map_err(|e| match e {
        Error::StateSyntax { line, reason } => Error::StateFile {
            path: path.to_path_buf(),
            line,
            reason,
        },
        other => other,
    })
}

/// The latest checkpoint prefix of `dir`, as `tf.train.latest_checkpoint`: `None` when
/// there is no state file or the checkpoint it names has no `.index`. When the state file
/// holds an absolute path that no longer exists (the directory was moved or copied), the
/// same file name inside `dir` is tried.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.join(STATE_FILE_NAME).is_file() {
        return Ok(None);
    }
    let st = read_state(dir)?;
    Ok(find_existing(dir, &st.model_checkpoint_path))
}

pub(crate) fn join_dir(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// The prefix `p` names, if its `.index` exists, trying `dir/<file name>` for a stale
/// absolute path.
pub(crate) fn find_existing(dir: &Path, p: &str) -> Option<PathBuf> {
    let joined = join_dir(dir, p);
    if index_path(&joined).is_file() {
        return Some(joined);
    }
    let moved = dir.join(joined.file_name()?);
    index_path(&moved).is_file().then_some(moved)
}

/// Records `new_prefix` as the latest checkpoint of `dir`, as TF1's `Saver.save` does:
/// it becomes `model_checkpoint_path` and the last of `all_model_checkpoint_paths`; when
/// `max_to_keep` is `Some(n)` with `n > 0`, the oldest entries beyond `n` are dropped
/// and their files (`.index`, `.data-*`, `.meta`) deleted. `Some(0)` and `None` keep all,
/// as in TensorFlow. Paths inside `dir` are written relative to it, others absolute.
/// The file is replaced atomically.
pub fn update_state(dir: &Path, new_prefix: &Path, max_to_keep: Option<usize>) -> Result<()> {
    let state_path = dir.join(STATE_FILE_NAME);
    let mut st = if state_path.is_file() {
        read_raw(&state_path)?
    } else {
        CheckpointState::default()
    };
    let abs_dir = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let abs_new = std::path::absolute(new_prefix).map_err(|e| Error::io(new_prefix, e))?;
    let entry = match abs_new.strip_prefix(&abs_dir) {
        Ok(rel) if rel.components().count() > 0 => rel.to_string_lossy().into_owned(),
        _ => abs_new.to_string_lossy().into_owned(),
    };

    let keep_times = !st.all_model_checkpoint_timestamps.is_empty()
        && st.all_model_checkpoint_timestamps.len() == st.all_model_checkpoint_paths.len();
    let mut paths = Vec::new();
    let mut times = Vec::new();
    for (i, p) in st.all_model_checkpoint_paths.iter().enumerate() {
        let same = std::path::absolute(join_dir(dir, p)).is_ok_and(|a| a == abs_new);
        if !same {
            paths.push(p.clone());
            if keep_times {
                times.push(
                    st.all_model_checkpoint_timestamps
                        .get(i)
                        .copied()
                        .unwrap_or(0.0),
                );
            }
        }
    }
    paths.push(entry.clone());
    if keep_times {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        times.push(now);
    }
    let mut dropped = Vec::new();
    if let Some(n) = max_to_keep.filter(|&n| n > 0) {
        while paths.len() > n {
            dropped.push(paths.remove(0));
            if keep_times && !times.is_empty() {
                times.remove(0);
            }
        }
    }
    st.model_checkpoint_path = entry;
    st.all_model_checkpoint_paths = paths;
    st.all_model_checkpoint_timestamps = times;
    write_atomic(&state_path, format_state(&st).as_bytes())?;

    for old in dropped {
        delete_checkpoint_files(&join_dir(dir, &old))?;
    }
    Ok(())
}

/// Deletes `<prefix>.index`, `<prefix>.meta` and every `<prefix>.data-*-of-*`; files
/// already gone are not an error.
pub fn delete_checkpoint_files(prefix: &Path) -> Result<()> {
    let remove = |p: &Path| match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, e)),
        _ => Ok(()),
    };
    remove(&index_path(prefix))?;
    remove(&meta_path(prefix))?;
    let (Some(parent), Some(base)) = (prefix.parent(), prefix.file_name()) else {
        return Ok(());
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let base = base.to_string_lossy();
    let list = match std::fs::read_dir(parent) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(parent, e)),
    };
    for entry in list {
        let entry = entry.map_err(|e| Error::io(parent, e))?;
        let name = entry.file_name();
        if let Some(name) = name.to_str() {
            if strip_data_suffix(name) == Some(&*base) {
                remove(&entry.path())?;
            }
        }
    }
    Ok(())
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random u64 for temporary file names (`.tempstate<random>`, as TensorFlow names them).
pub(crate) fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = crate::paths::with_suffix(path, &format!(".tmp{}", random_u64()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Formats `st` as TensorFlow 2.21's Python `text_format.MessageToString` does: one
/// `field: value` line per value, proto3 defaults left out, strings C-escaped (UTF-8 kept,
/// other control bytes as octal), doubles in Python's `repr` form.
pub fn format_state(st: &CheckpointState) -> String {
    let mut out = String::new();
    if !st.model_checkpoint_path.is_empty() {
        let _ = writeln!(
            out,
            "model_checkpoint_path: \"{}\"",
            c_escape(&st.model_checkpoint_path)
        );
    }
    for p in &st.all_model_checkpoint_paths {
        let _ = writeln!(out, "all_model_checkpoint_paths: \"{}\"", c_escape(p));
    }
    for t in &st.all_model_checkpoint_timestamps {
        let _ = writeln!(
            out,
            "all_model_checkpoint_timestamps: {}",
            py_float_repr(*t)
        );
    }
    // Python protobuf writes a proto3 double unless its bits are all zero (so -0.0 shows).
    if st.last_preserved_timestamp.to_bits() != 0 {
        let _ = writeln!(
            out,
            "last_preserved_timestamp: {}",
            py_float_repr(st.last_preserved_timestamp)
        );
    }
    out
}

/// How Python protobuf (7.x, as TensorFlow 2.21 ships it) escapes a string field: C escapes
/// for quotes, backslash, tab, newline and carriage return, three-digit octal for other
/// control bytes and DEL, UTF-8 passed through.
fn c_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
    out
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in [-4, 16), otherwise `d.ddde+XX`.
pub(crate) fn py_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // Rust's `{:e}` prints the shortest round-trip digits, e.g. "-1.7952995269227304e9".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                let (i, f) = digits.split_at(int_len);
                out.push_str(i);
                out.push('.');
                out.push_str(f);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n(
                '0',
                usize::try_from(-exp - 1).unwrap_or(0),
            ));
            out.push_str(&digits);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
    out
}

/// Parses the text format of a `CheckpointState` (the state file's contents).
///
/// Accepts what protobuf's text parsers accept for this message: fields in any order,
/// `#` comments, adjacent string literals concatenated, single or double quotes, C, octal,
/// hex and unicode escapes, `[a, b]` lists for repeated fields, `inf`/`nan` doubles.
/// Unknown fields are skipped (newer TensorFlow versions may add some).
pub fn parse_state(text: &str) -> Result<CheckpointState> {
    let mut p = TextParser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut st = CheckpointState::default();
    let mut seen_model = false;
    let mut seen_last = false;
    loop {
        p.skip_space();
        if p.at_end() {
            break;
        }
        let name = p.ident()?;
        p.skip_space();
        let has_colon = p.eat(b':');
        p.skip_space();
        match name.as_str() {
            "model_checkpoint_path" => {
                if seen_model {
                    return Err(p.err("model_checkpoint_path given twice"));
                }
                seen_model = true;
                st.model_checkpoint_path = p.string()?;
            }
            "last_preserved_timestamp" => {
                if seen_last {
                    return Err(p.err("last_preserved_timestamp given twice"));
                }
                seen_last = true;
                st.last_preserved_timestamp = p.double()?;
            }
            "all_model_checkpoint_paths" => {
                p.repeated(|p| {
                    let v = p.string()?;
                    st.all_model_checkpoint_paths.push(v);
                    Ok(())
                })?;
            }
            "all_model_checkpoint_timestamps" => {
                p.repeated(|p| {
                    let v = p.double()?;
                    st.all_model_checkpoint_timestamps.push(v);
                    Ok(())
                })?;
            }
            _ => p.skip_value(has_colon)?,
        }
        p.skip_space();
        let _ = p.eat(b',') || p.eat(b';');
    }
    Ok(st)
}

struct TextParser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl TextParser<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::StateSyntax {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'#' {
                while let Some(c) = self.bump() {
                    if c == b'\n' {
                        break;
                    }
                }
            } else if c.is_ascii_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn ident(&mut self) -> Result<String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || (c == b'.' && self.pos > start) {
                self.bump();
            } else {
                break;
            }
        }
        if start == self.pos {
            let found = self.peek().map_or("end of text".to_string(), |c| {
                format!("{:?}", char::from(c))
            });
            return Err(self.err(format!("expected a field name, found {found}")));
        }
        Ok(String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or_default()).into_owned())
    }

    /// A bare token: number, `inf`, identifier.
    fn token(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_') {
                self.bump();
            } else {
                break;
            }
        }
        String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or_default()).into_owned()
    }

    fn double(&mut self) -> Result<f64> {
        let tok = self.token();
        let lower = tok.to_ascii_lowercase();
        let (neg, body) = match lower.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, lower.as_str()),
        };
        let v = match body {
            "inf" | "infinity" | "inff" | "infinityf" => f64::INFINITY,
            "nan" | "nanf" => f64::NAN,
            _ => {
                let b = body.strip_suffix('f').unwrap_or(body);
                if b.is_empty() || !b.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                    return Err(self.err(format!("expected a number, found {tok:?}")));
                }
                b.parse::<f64>()
                    .map_err(|_| self.err(format!("expected a number, found {tok:?}")))?
            }
        };
        Ok(if neg { -v } else { v })
    }

    /// One or more adjacent quoted strings, concatenated, checked to be UTF-8.
    fn string(&mut self) -> Result<String> {
        let mut bytes = Vec::new();
        let mut any = false;
        loop {
            self.skip_space();
            let Some(q @ (b'"' | b'\'')) = self.peek() else {
                break;
            };
            any = true;
            self.bump();
            loop {
                let c = self.bump().ok_or_else(|| self.err("unterminated string"))?;
                match c {
                    _ if c == q => break,
                    b'\n' => return Err(self.err("newline inside a string")),
                    b'\\' => self.escape(&mut bytes)?,
                    _ => bytes.push(c),
                }
            }
        }
        if !any {
            return Err(self.err("expected a quoted string"));
        }
        String::from_utf8(bytes).map_err(|_| self.err("string is not valid UTF-8"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let c = self.bump().ok_or_else(|| self.err("unterminated escape"))?;
        let simple = match c {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'\\' | b'\'' | b'"' | b'?' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        match c {
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            self.bump();
                            v = v * 8 + u32::from(d - b'0');
                        }
                        _ => break,
                    }
                }
                let b = u8::try_from(v).map_err(|_| self.err("octal escape above \\377"))?;
                out.push(b);
            }
            b'x' | b'X' => {
                let v = self.hex_digits(2, 1)?;
                out.push(u8::try_from(v).map_err(|_| self.err("bad hex escape"))?);
            }
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                let v = self.hex_digits(n, n)?;
                let ch = char::from_u32(v).ok_or_else(|| self.err("bad unicode escape"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(self.err(format!("unknown escape \\{}", char::from(c)))),
        }
        Ok(())
    }

    fn hex_digits(&mut self, max: usize, min: usize) -> Result<u32> {
        let mut v: u32 = 0;
        let mut n = 0;
        while n < max {
            let Some(d) = self.peek().and_then(|c| char::from(c).to_digit(16)) else {
                break;
            };
            self.bump();
            v = v
                .checked_mul(16)
                .and_then(|v| v.checked_add(d))
                .ok_or_else(|| self.err("escape too large"))?;
            n += 1;
        }
        if n < min {
            return Err(self.err("escape needs hex digits"));
        }
        Ok(v)
    }

    /// A single value or a `[v, v, ...]` list.
    fn repeated(&mut self, mut one: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        if !self.eat(b'[') {
            return one(self);
        }
        self.skip_space();
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            one(self)?;
            self.skip_space();
            if self.eat(b']') {
                return Ok(());
            }
            if !self.eat(b',') {
                return Err(self.err("expected ',' or ']' in a list"));
            }
            self.skip_space();
        }
    }

    /// Skips the value of an unknown field: a scalar, a string, a list or a nested message.
    fn skip_value(&mut self, has_colon: bool) -> Result<()> {
        match self.peek() {
            Some(b'{' | b'<') => self.skip_message(),
            Some(b'"' | b'\'') => self.string().map(drop),
            Some(b'[') => self.repeated(|p| {
                p.skip_space();
                p.skip_value(true)
            }),
            _ if has_colon => {
                if self.token().is_empty() {
                    Err(self.err("expected a value"))
                } else {
                    Ok(())
                }
            }
            _ => Err(self.err("expected ':' after a field name")),
        }
    }

    fn skip_message(&mut self) -> Result<()> {
        let mut depth = 0usize;
        loop {
            self.skip_space();
            match self.peek() {
                None => return Err(self.err("unterminated message")),
                Some(b'{' | b'<') => {
                    self.bump();
                    depth += 1;
                }
                Some(b'}' | b'>') => {
                    self.bump();
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some(b'"' | b'\'') => {
                    self.string_bytes_skip()?;
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    fn string_bytes_skip(&mut self) -> Result<()> {
        let q = self.bump().unwrap_or(b'"');
        loop {
            match self.bump() {
                None => return Err(self.err("unterminated string")),
                Some(b'\\') => {
                    self.bump();
                }
                Some(c) if c == q => return Ok(()),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        let cases: &[(f64, &str)] = &[
            (1795299526.9227304, "1795299526.9227304"),
            (1795299525.883424, "1795299525.883424"),
            (123.0, "123.0"),
            (0.5, "0.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.234e100, "1.234e+100"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (v, want) in cases {
            assert_eq!(py_float_repr(*v), *want, "{v}");
        }
    }

    #[test]
    fn tf2_manager_state_round_trip() -> Result<()> {
        let text = "model_checkpoint_path: \"ckpt-2\"\n\
                    all_model_checkpoint_paths: \"ckpt-1\"\n\
                    all_model_checkpoint_paths: \"ckpt-2\"\n\
                    all_model_checkpoint_timestamps: 1795299526.9227304\n\
                    all_model_checkpoint_timestamps: 1795299526.9396002\n\
                    last_preserved_timestamp: 1795299525.883424\n";
        let st = parse_state(text)?;
        assert_eq!(st.model_checkpoint_path, "ckpt-2");
        assert_eq!(st.all_model_checkpoint_paths, ["ckpt-1", "ckpt-2"]);
        assert_eq!(
            st.all_model_checkpoint_timestamps,
            [1795299526.9227304, 1795299526.9396002]
        );
        assert_eq!(st.last_preserved_timestamp, 1795299525.883424);
        assert_eq!(format_state(&st), text);
        Ok(())
    }

    #[test]
    fn escapes_parse_and_format() -> Result<()> {
        // What TensorFlow 2.21's Python protobuf (7.36) prints for the same message.
        let st = CheckpointState {
            model_checkpoint_path: "/d/\u{e9}t\u{e9} \"q\" 'a'\\b\tc\nd\u{1}\u{7f}\u{4e2d}"
                .to_string(),
            last_preserved_timestamp: -0.0,
            ..Default::default()
        };
        let text = format_state(&st);
        assert_eq!(
            text,
            "model_checkpoint_path: \"/d/\u{e9}t\u{e9} \\\"q\\\" \\'a\\'\\\\b\\tc\\nd\\001\\177\u{4e2d}\"\n\
             last_preserved_timestamp: -0.0\n"
        );
        assert_eq!(parse_state(&text)?, st);
        // Octal escapes of UTF-8 bytes (older protobuf) parse to the same string.
        let old = parse_state("model_checkpoint_path: \"\\303\\251\"")?;
        assert_eq!(old.model_checkpoint_path, "\u{e9}");
        Ok(())
    }

    #[test]
    fn lenient_syntax() -> Result<()> {
        let text = "# comment\n all_model_checkpoint_paths: ['a', \"b\" \"c\"]\n\
                    model_checkpoint_path:'x\\x41\\101\\u00e9' ; future_field: 3\n\
                    future_msg { inner: \"}\" deeper { } }\n\
                    all_model_checkpoint_timestamps: [1, -inf, 2.5e3]";
        let st = parse_state(text)?;
        assert_eq!(st.model_checkpoint_path, "xAA\u{e9}");
        assert_eq!(st.all_model_checkpoint_paths, ["a", "bc"]);
        assert_eq!(
            st.all_model_checkpoint_timestamps,
            [1.0, f64::NEG_INFINITY, 2500.0]
        );
        Ok(())
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line) in [
            (
                "model_checkpoint_path: \"a\"\nmodel_checkpoint_path: \"b\"",
                2,
            ),
            ("model_checkpoint_path: \"abc", 1),
            ("\n\nall_model_checkpoint_timestamps: abc", 3),
            ("model_checkpoint_path: \"\\377\"", 1),
            ("model_checkpoint_path: \"\\q\"", 1),
            ("model_checkpoint_path: 5", 1),
            ("!!", 1),
            ("unknown", 1),
        ] {
            match parse_state(text) {
                Err(Error::StateSyntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
