//! Parses arbitrary text as a `checkpoint` state file. Any panic is a bug; whatever
//! parses must format and parse back to the same message.
#![no_main]

use ckpt_bundle::state::{format_state, parse_state};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(st) = parse_state(text) {
        let again = parse_state(&format_state(&st)).expect("formatted state parses");
        // NaN timestamps never compare equal; compare their bits instead.
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(again.model_checkpoint_path, st.model_checkpoint_path);
        assert_eq!(
            again.all_model_checkpoint_paths,
            st.all_model_checkpoint_paths
        );
        assert_eq!(
            bits(&again.all_model_checkpoint_timestamps),
            bits(&st.all_model_checkpoint_timestamps)
        );
        assert_eq!(
            again.last_preserved_timestamp.to_bits(),
            st.last_preserved_timestamp.to_bits()
        );
    }
});
