//! TensorFlow's SSTable format, the on-disk sorted key/value table that holds
//! a checkpoint's `.index` file: [`Table`] reads one from a byte slice (a
//! memory map or a `Vec`), [`TableBuilder`] writes one byte-identical to
//! TensorFlow's `TableBuilder`. The crate knows nothing of tensors; the layout
//! is specified in docs/format.md §2.
//!
//! ```
//! use ckpt_table::{Table, TableBuilder, TableOptions};
//!
//! let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
//! builder.add(b"bias", b"\x01\x02")?;
//! builder.add(b"kernel", b"\x03")?;
//! let bytes = builder.finish()?;
//!
//! let table = Table::open(&bytes)?;
//! assert_eq!(table.get(b"kernel")?.as_deref(), Some(&b"\x03"[..]));
//! assert_eq!(table.get(b"missing")?, None);
//! let keys = table.iter().map(|e| e.map(|(k, _)| k)).collect::<Result<Vec<_>, _>>()?;
//! assert_eq!(keys, [b"bias".to_vec(), b"kernel".to_vec()]);
//! # Ok::<(), ckpt_table::Error>(())
//! ```
//!
//! Every decode path returns `Result`: corrupt or hostile bytes give an
//! [`Error`] naming the block and offset, never a panic, and no untrusted
//! length sizes an allocation before it is checked against the input.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod block;
mod block_builder;
mod builder;
mod coding;
mod crc;
mod error;
mod handle;
mod reader;

pub use builder::{Compression, TableBuilder, TableOptions};
pub use crc::{crc32c_masked, mask_crc, unmask_crc};
pub use error::{BlockProblem, Error, HandleLocation};
pub use handle::{BlockHandle, FOOTER_LEN, TABLE_MAGIC};
pub use reader::{Entry, Table, TableIter};
