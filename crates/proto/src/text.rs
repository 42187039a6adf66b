//! The protobuf text format (`graph.pbtxt`, `saved_model.pbtxt`, `.pbtxt` MetaGraphDefs), read
//! and written through `prost-reflect` over the same descriptors the Rust types are generated
//! from (`generated/descriptor.bin`, kept in step with `proto/` by `tests/generated.rs`).
//!
//! [`parse`] accepts what Python's `text_format` writes and the wider syntax other writers use
//! (docs/format.md §9): `name: { … }` and `name < … >`, `#` comments, `;` and `,` separators,
//! `[a, b]` lists, single quotes, concatenated literals, octal and `\x` escapes, enum values as
//! numbers. Errors carry the line and column.
//!
//! ```
//! use ckpt_proto::{text, GraphDef};
//!
//! let def: GraphDef = text::parse(
//!     r#"node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
//!        versions { producer: 21 }"#,
//! )?;
//! assert_eq!(def.node[0].name, "x");
//! assert_eq!(def.versions.map(|v| v.producer), Some(21));
//!
//! let err = text::parse::<GraphDef>("node {\n  nmae: \"x\"\n}").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "line 2, column 3: field 'nmae' not found for message 'tensorflow.NodeDef'"
//! );
//! # Ok::<(), ckpt_proto::Error>(())
//! ```

use std::sync::OnceLock;

use miette::Diagnostic;
use prost::{Message, Name};
use prost_reflect::text_format::FormatOptions;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use crate::Error;

/// How deeply messages may nest in a text [`parse`] accepts. Real graphs stay far below it
/// (a function's attr in a MetaGraphDef is about a dozen levels down); prost's binary decoder
/// stops at 100.
pub const MAX_DEPTH: usize = 64;

/// The encoded `FileDescriptorSet` of `proto/` (well-known types included).
static DESCRIPTOR_SET: &[u8] = include_bytes!("generated/descriptor.bin");

/// The descriptor pool, decoded once.
fn pool() -> Result<&'static DescriptorPool, Error> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTOR_SET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|reason| Error::Descriptors {
            reason: reason.clone(),
        })
}

/// The descriptor of message type `M`.
fn descriptor<M: Name>() -> Result<MessageDescriptor, Error> {
    let name = M::full_name();
    pool()?
        .get_message_by_name(&name)
        .ok_or(Error::UnknownType { name })
}

/// Parses `text` as a text-format `M`, such as a [`crate::GraphDef`] from a `graph.pbtxt`.
///
/// Errors give the line and column: syntax errors, fields `M` does not have, values of the
/// wrong type, a non-repeated field set twice, nesting beyond [`MAX_DEPTH`].
pub fn parse<M: Message + Name + Default>(text: &str) -> Result<M, Error> {
    check_depth(text)?;
    let desc = descriptor::<M>()?;
    let dynamic = DynamicMessage::parse_text_format(desc, text).map_err(|e| {
        let offset = e
            .labels()
            .and_then(|mut labels| labels.next())
            .map_or(text.len(), |label| label.offset());
        let (line, column) = line_column(text, offset);
        Error::Text {
            line,
            column,
            message: e.to_string(),
        }
    })?;
    dynamic
        .transcode_to::<M>()
        .map_err(|error| Error::Transcode {
            name: M::full_name(),
            error,
        })
}

/// Prints `message` in the text format, indented, as `prost-reflect` lays it out: repeated
/// fields as `[…]` lists, map entries in no fixed order. [`parse`] (and TensorFlow's parsers)
/// read it back as an equal message.
pub fn to_text<M: Message + Name>(message: &M) -> Result<String, Error> {
    let desc = descriptor::<M>()?;
    let dynamic =
        DynamicMessage::decode(desc, message.encode_to_vec().as_slice()).map_err(|error| {
            Error::Transcode {
                name: M::full_name(),
                error,
            }
        })?;
    let mut text = dynamic.to_text_format_with_options(&FormatOptions::new().pretty(true));
    if !text.is_empty() {
        text.push('\n');
    }
    Ok(text)
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Refuses text whose braces (`{`, `<`) nest deeper than [`MAX_DEPTH`], outside strings and
/// comments: the parser recurses once per level.
fn check_depth(text: &str) -> Result<(), Error> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'#' => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'"' | b'\'' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' => i += 1,
                        // A string cannot span lines; the parser reports the stray quote.
                        b'\n' => break,
                        c if c == b => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'{' | b'<' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let (line, column) = line_column(text, i);
                    return Err(Error::TooDeep {
                        line,
                        column,
                        limit: MAX_DEPTH,
                    });
                }
            }
            b'}' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\nçd\nef";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        // 'ç' is two bytes: 'd' is the second character of line 2.
        assert_eq!(line_column(text, 5), (2, 2));
        // An offset inside a character or past the end is clamped.
        assert_eq!(line_column(text, 4), (2, 1));
        assert_eq!(line_column(text, 100), (3, 3));
    }

    #[test]
    fn depth_ignores_strings_and_comments() {
        let deep = "a {".repeat(MAX_DEPTH);
        assert!(check_depth(&deep).is_ok());
        let strings = format!(
            "s: \"{}\" t: '{}' # {}\n",
            "{".repeat(100),
            "<".repeat(100),
            "{".repeat(100)
        );
        assert!(check_depth(&strings).is_ok());
        let escaped = format!("s: \"\\\"{}\"", "{".repeat(100));
        assert!(check_depth(&escaped).is_ok());
        let too_deep = format!("{deep}\n  x <");
        assert!(matches!(
            check_depth(&too_deep),
            Err(Error::TooDeep {
                line: 2,
                column: 5,
                limit: MAX_DEPTH
            })
        ));
    }
}
