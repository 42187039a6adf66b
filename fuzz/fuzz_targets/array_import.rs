//! Arbitrary bytes as `.npy`, `.npz` and safetensors input to `ckpt import` and
//! `ckpt-run --feed` (see `common/arrays.rs`). Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/arrays.rs"]
mod arrays;

fuzz_target!(|data: &[u8]| arrays::run(data));
