//! Strings and lookup tables: hash tables built when the graph is loaded (from their
//! initializers, an asset file or the checkpoint), lookups, hashing, joining, regex
//! replacement and splitting.

pub(crate) mod hash_bucket;
pub(crate) mod lookup_find;
pub(crate) mod lookup_size;
pub(crate) mod regex_replace;
pub(crate) mod string_join;
pub(crate) mod string_split;
pub(crate) mod table;
pub(crate) mod table_init;
