//! Arbitrary bytes as a SavedModel (binary, and text when UTF-8): each meta graph imported by
//! its tag set and every signature resolved (see `common/saved_model.rs`). Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/saved_model.rs"]
mod saved_model;

fuzz_target!(|data: &[u8]| {
    saved_model::run(data);
});
