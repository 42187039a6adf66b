//! Reads fuzzer-made bundles: every tensor, the first half of each, then `verify`. Any panic
//! is a bug. The input layout and the body are in `harness/mod.rs`, shared with the test that
//! replays the committed seeds (`crates/bundle/tests/fuzz_seeds.rs`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::bundle_read(data);
});
