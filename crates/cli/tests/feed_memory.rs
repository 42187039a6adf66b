//! An `.npy` fed to `ckpt-run` is held once, as the decoded value: the file is mapped, the
//! npy view borrows the mapped bytes, and only the typed value is allocated. Measured with a
//! counting global allocator; it was three copies when the file was read into a vector,
//! copied out of the header and copied again into a tensor.

// The counting allocator below is the only unsafe code here.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use ckpt_cli::convert::npy_to_value;
use ckpt_cli::npy::{read_npy, write_npy, NpyArray};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests measure one process-wide peak, so they take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_fed_npy_is_held_once() -> Result<()> {
    let _turn = SERIAL.lock();
    const ELEMENTS: usize = 4 << 20; // 16 MiB of float32
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("x.npy");
    let data: Vec<u8> = (0..ELEMENTS)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    let array = NpyArray {
        descr: "<f4".into(),
        shape: vec![ELEMENTS as u64 / 4, 4],
        data: data.into(),
    };
    let mut file = std::fs::File::create(&path)?;
    write_npy(&mut file, &array)?;
    drop((file, array));

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mapped = ckpt_bundle::MappedFile::open(&path)?;
    let value = npy_to_value("x", &read_npy(&mapped, "x.npy")?)?;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(value.shape(), &[ELEMENTS / 4, 4]);
    let bytes = ELEMENTS * 4;
    assert!(
        peak < bytes + bytes / 8,
        "peak {peak} bytes for a {bytes}-byte array"
    );
    Ok(())
}

#[test]
fn an_npz_member_is_not_sized_by_its_declared_length() -> Result<()> {
    let _turn = SERIAL.lock();
    // Found by the `array_import` fuzz target: a 410-byte archive whose member declares
    // 4,278,190,220 bytes once had that much reserved before any byte was inflated.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds/array_import/npz_member_declares_4gb.bin");
    let data = std::fs::read(path)?;
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = ckpt_cli::npy::read_npz(std::io::Cursor::new(&data), "bomb.npz");
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert!(result.is_err());
    assert!(peak <= (64 << 20) + (1 << 20), "peak {peak} bytes");
    Ok(())
}
