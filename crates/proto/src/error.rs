//! The crate's one error type.

/// What can go wrong when reading or writing the protobuf text format ([`crate::text`]).
///
/// Positions are 1-based; a column counts characters, not bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a text-format message of the type asked for: a syntax error, a field the
    /// message does not have, a value of the wrong type, a field set twice, an unknown enum
    /// name. Errors without a position of their own (an unexpected end) point at the end of
    /// the text.
    #[error("line {line}, column {column}: {message}")]
    Text {
        /// The line of the offending token.
        line: usize,
        /// Its column.
        column: usize,
        /// What is wrong, as the parser words it.
        message: String,
    },

    /// Messages nest deeper than [`crate::text::MAX_DEPTH`]; the text is refused before it is
    /// parsed, so that hostile input cannot exhaust the stack.
    #[error("line {line}, column {column}: messages nest deeper than {limit} levels")]
    TooDeep {
        /// The line of the first brace past the limit.
        line: usize,
        /// Its column.
        column: usize,
        /// The limit.
        limit: usize,
    },

    /// The message type is not in the descriptor set this crate embeds.
    #[error("message type {name:?} is not in the embedded descriptor set")]
    UnknownType {
        /// The protobuf full name asked for.
        name: String,
    },

    /// The embedded descriptor set does not decode (a broken build of this crate).
    #[error("the embedded descriptor set does not decode: {reason}")]
    Descriptors {
        /// What is wrong.
        reason: String,
    },

    /// A message parsed from text or given to be printed did not convert between its Rust type
    /// and the descriptor's (a Rust type out of step with the descriptors).
    #[error("{name} does not convert between its Rust type and its descriptor: {error}")]
    Transcode {
        /// The protobuf full name.
        name: String,
        /// The underlying error.
        error: prost::DecodeError,
    },
}
