//! Arbitrary bytes as a graph whose nodes the executor plans (and runs, when nothing needs
//! feeding) under a 64 MiB memory budget (see `common/plan.rs`). Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/plan.rs"]
mod plan;

fuzz_target!(|data: &[u8]| plan::run(data));
