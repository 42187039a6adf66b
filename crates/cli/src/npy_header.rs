//! The header of an `.npy` file, parsed as strictly as numpy parses it.
//!
//! numpy reads the header with Python's `ast.literal_eval` and then insists on a dict with
//! exactly the keys `descr` (a string), `fortran_order` (a bool) and `shape` (a tuple of
//! non-negative ints) (`numpy/lib/format.py`, `_read_array_header`). This parser accepts that
//! grammar (string literals in either quote, `True`/`False`, int tuples, whitespace and trailing
//! commas) and nothing else, so a header numpy refuses is refused here too. The test
//! `agrees_with_numpy_on_the_header_corpus` holds it to numpy's decisions on
//! `fixtures/npy_headers/corpus.json`.

/// What an npy header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// numpy's dtype descriptor (`<f4`, `|S5`, ...).
    pub descr: String,
    /// Whether the data is stored column-major.
    pub fortran_order: bool,
    /// The dimensions.
    pub shape: Vec<u64>,
}

/// A Python literal of the kinds an npy header holds.
#[derive(Debug, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    Int(i128),
    Tuple(Vec<Literal>),
    /// Any other literal: a list, a float, `None`, a nested dict. Parsed only to be refused.
    Other(&'static str),
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", char::from(c), self.pos))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or("unterminated string")?;
            self.pos += 1;
            match c {
                _ if c == quote => return Ok(out),
                b'\n' => return Err("newline inside a string".into()),
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
                    self.pos += 1;
                    out.push(match e {
                        b'\\' | b'\'' | b'"' => char::from(e),
                        b'n' => '\n',
                        b't' => '\t',
                        _ => return Err(format!("unsupported escape \\{}", char::from(e))),
                    });
                }
                _ => {
                    // Multi-byte UTF-8 (version 3 headers) is copied through whole.
                    let start = self.pos - 1;
                    let len = match c {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    let bytes = self.s.get(start..start + len).ok_or("truncated text")?;
                    out.push_str(std::str::from_utf8(bytes).map_err(|_| "header is not text")?);
                    self.pos = start + len;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        self.skip_ws();
        match self.peek().ok_or("unexpected end of header")? {
            b'\'' | b'"' => self.string().map(Literal::Str),
            b'(' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    items.push(self.literal()?);
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        // `(1)` is an int in parentheses, not a tuple.
                        if items.len() == 1 {
                            return Ok(items.pop().unwrap_or(Literal::Other("()")));
                        }
                        break;
                    }
                }
                Ok(Literal::Tuple(items))
            }
            b'[' => {
                self.pos += 1;
                loop {
                    if self.eat(b']') {
                        return Ok(Literal::Other("a list"));
                    }
                    self.literal()?;
                    if !self.eat(b',') {
                        self.expect(b']')?;
                        return Ok(Literal::Other("a list"));
                    }
                }
            }
            c if c == b'-' || c == b'+' || c.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_'))
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
                    .map_err(|_| "header is not text")?;
                // Python 2 wrote long ints with an `L`; numpy still reads them.
                let digits = text.strip_suffix('L').unwrap_or(text).replace('_', "");
                match digits.parse::<i128>() {
                    Ok(v) => Ok(Literal::Int(v)),
                    Err(_) if digits.parse::<f64>().is_ok() => Ok(Literal::Other("a float")),
                    Err(_) => Err(format!("bad number {text:?}")),
                }
            }
            c if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                match self.s.get(start..self.pos).unwrap_or_default() {
                    b"True" => Ok(Literal::Bool(true)),
                    b"False" => Ok(Literal::Bool(false)),
                    b"None" => Ok(Literal::Other("None")),
                    other => Err(format!(
                        "{:?} is not a literal",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
            b'{' => Err("nested dict".into()),
            c => Err(format!("unexpected {:?}", char::from(c))),
        }
    }
}

/// Parses the header text (after the magic, version and length).
///
/// Errors, as a reason: anything `ast.literal_eval` would refuse, a literal that is not a dict,
/// keys other than exactly `descr`, `fortran_order` and `shape`, or values of the wrong kind.
pub fn parse_header(text: &[u8]) -> Result<NpyHeader, String> {
    let mut p = Parser { s: text, pos: 0 };
    p.skip_ws();
    if p.peek() != Some(b'{') {
        return Err("the header is not a dictionary".into());
    }
    p.pos += 1;
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    let mut keys = Vec::new();
    loop {
        if p.eat(b'}') {
            break;
        }
        p.skip_ws();
        let key = match p.literal()? {
            Literal::Str(k) => k,
            other => return Err(format!("dictionary key {other:?} is not a string")),
        };
        p.expect(b':')?;
        let value = p.literal()?;
        match key.as_str() {
            "descr" => descr = Some(value),
            "fortran_order" => fortran_order = Some(value),
            "shape" => shape = Some(value),
            _ => {}
        }
        keys.push(key);
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    if p.pos != text.len() {
        return Err(format!(
            "unexpected text after the dictionary at byte {}",
            p.pos
        ));
    }
    keys.sort();
    keys.dedup();
    if keys != ["descr", "fortran_order", "shape"] {
        return Err(format!(
            "the header has keys {keys:?}, not exactly descr, fortran_order and shape"
        ));
    }
    let descr = match descr {
        Some(Literal::Str(d)) => d,
        Some(Literal::Other("a list")) => {
            return Err("structured dtypes (a list descr) are not supported".into())
        }
        other => return Err(format!("descr {other:?} is not a dtype string")),
    };
    let fortran_order = match fortran_order {
        Some(Literal::Bool(b)) => b,
        other => return Err(format!("fortran_order {other:?} is not True or False")),
    };
    let shape = match shape {
        Some(Literal::Tuple(dims)) => dims
            .into_iter()
            .map(|d| match d {
                Literal::Int(n) => u64::try_from(n)
                    .ok()
                    .filter(|&n| n <= i64::MAX as u64)
                    .ok_or_else(|| format!("dimension {n} is negative or too large")),
                other => Err(format!("dimension {other:?} is not an int")),
            })
            .collect::<Result<Vec<u64>, String>>()?,
        other => return Err(format!("shape {other:?} is not a tuple")),
    };
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_headers_parse() -> Result<(), String> {
        let h =
            parse_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }      \n")?;
        assert_eq!(
            h,
            NpyHeader {
                descr: "<f4".into(),
                fortran_order: false,
                shape: vec![2, 3]
            }
        );
        assert_eq!(
            parse_header(b"{\"shape\":(),\"descr\":\"|b1\",\"fortran_order\":True}")?.shape,
            Vec::<u64>::new()
        );
        assert_eq!(
            parse_header(b"{'descr': '<i8', 'fortran_order': False, 'shape': (3L, 4L), }")?.shape,
            [3, 4]
        );
        Ok(())
    }

    #[test]
    fn what_numpy_refuses_is_refused() {
        for (header, reason) in [
            ("{'descr': '<f4', 'fortran_order': False}", "not exactly"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                "not exactly",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}",
                "not a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1.0,)}",
                "not an int",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                "negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 1, 'shape': (1,)}",
                "not True or False",
            ),
            (
                "{'descr': 4, 'fortran_order': False, 'shape': (1,)}",
                "not a dtype string",
            ),
            ("['<f4']", "not a dictionary"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                "after the dictionary",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
                "expected",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': x}",
                "not a literal",
            ),
            (
                "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,)}",
                "structured",
            ),
        ] {
            let got = parse_header(header.as_bytes());
            assert!(
                got.as_ref().is_err_and(|e| e.contains(reason)),
                "{header}: {got:?}"
            );
        }
    }
}
