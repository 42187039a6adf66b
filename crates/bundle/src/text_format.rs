//! The protobuf text format of the `checkpoint` state file (`CheckpointState`,
//! docs/format.md §5.3): a lenient parser, and a formatter that writes what TensorFlow 2.21's
//! Python `text_format.MessageToString` writes, byte for byte.

use std::fmt::Write as _;

use ckpt_proto::CheckpointState;

use crate::error::{Error, Result};

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
