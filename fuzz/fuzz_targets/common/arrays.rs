//! What the `array_import` target does with one input, shared with the test that replays the
//! committed seeds (`crates/cli/tests/fuzz_seeds.rs`): read the bytes as an `.npy` file, as an
//! `.npz` archive and as a safetensors file, the way `ckpt import` and `ckpt-run --feed` do,
//! and convert every array to a checkpoint tensor and to a runtime value. Errors are fine; a
//! panic, an abort or an allocation the input's size does not justify is a bug.

use ckpt_cli::convert::{dtype_from_safetensors, npy_to_tensor, npy_to_value};
use ckpt_cli::npy::{read_npy, read_npz};

/// Runs one input through every array reader.
pub fn run(data: &[u8]) {
    if let Ok(array) = read_npy(data, "input.npy") {
        let _ = npy_to_tensor("x", &array);
        let _ = npy_to_value("x", &array);
    }
    if let Ok(entries) = read_npz(std::io::Cursor::new(data), "input.npz") {
        for (name, array) in &entries {
            let _ = npy_to_tensor(name, array);
            let _ = npy_to_value(name, array);
        }
    }
    if let Ok(file) = safetensors::SafeTensors::deserialize(data) {
        for name in file.names() {
            let Ok(view) = file.tensor(name) else {
                continue;
            };
            let Some(dtype) = dtype_from_safetensors(view.dtype()) else {
                continue;
            };
            let shape: Vec<u64> = view.shape().iter().map(|&d| d as u64).collect();
            let _ = ckpt_bundle::Tensor::from_bytes(dtype, shape, view.data());
        }
    }
}
