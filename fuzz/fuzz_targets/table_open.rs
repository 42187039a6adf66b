//! Opens arbitrary bytes as a table and reads everything reachable: full
//! iteration, then `get` and `seek` on the keys found and on a few probes.
//! Any panic is a bug.
//!
//! Random bytes almost never carry valid block checksums, which would stop
//! the fuzzer at the trailer check. So each input is also tried with the
//! trailers of the index block and of every data block it names rewritten
//! to match, which lets mutations reach the block and entry decoders.
#![no_main]

use ckpt_table::{crc32c_masked, BlockHandle, Table, FOOTER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    exercise(data);
    let mut fixed = data.to_vec();
    if let Some(index) = footer_index_handle(&fixed) {
        fix_trailer(&mut fixed, index);
        let handles = Table::open(&fixed).map(|t| t.data_block_handles().to_vec());
        if let Ok(handles) = handles {
            for handle in handles {
                fix_trailer(&mut fixed, handle);
            }
        }
        exercise(&fixed);
    }
});

fn exercise(data: &[u8]) {
    let Ok(table) = Table::open(data) else {
        return;
    };
    let _ = format!("{table:?}");
    let mut keys = Vec::new();
    for entry in table.iter() {
        match entry {
            Ok((key, _)) => {
                if keys.len() < 64 {
                    keys.push(key);
                }
            }
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
    // Fused after the end or an error.
    let mut iter = table.iter();
    for _ in iter.by_ref() {}
    assert!(iter.next().is_none());

    let probes: [&[u8]; 5] = [b"", b"\x00", b"a", b"m", b"\xff\xff"];
    for probe in probes {
        let _ = table.get(probe);
        let _ = table.seek(probe).take(4).count();
    }
    // Hostile files can hold unsorted or duplicate keys, so lookups are
    // only checked for not panicking.
    for key in &keys {
        let _ = table.get(key);
        let _ = table.seek(key).take(2).count();
    }
}

fn footer_index_handle(data: &[u8]) -> Option<BlockHandle> {
    let footer = data.get(data.len().checked_sub(FOOTER_LEN)?..)?;
    let (_, used) = BlockHandle::decode(footer)?;
    let (index, _) = BlockHandle::decode(footer.get(used..)?)?;
    Some(index)
}

/// Rewrites the masked CRC of the block at `handle` to match its bytes.
fn fix_trailer(data: &mut [u8], handle: BlockHandle) {
    let Some(start) = usize::try_from(handle.offset).ok() else {
        return;
    };
    let Some(end) = usize::try_from(handle.size)
        .ok()
        .and_then(|s| start.checked_add(s))
    else {
        return;
    };
    let Some(covered) = end.checked_add(1).and_then(|e| data.get(start..e)) else {
        return;
    };
    let crc = crc32c_masked(covered).to_le_bytes();
    if let Some(slot) = end.checked_add(5).and_then(|e| data.get_mut(end + 1..e)) {
        slot.copy_from_slice(&crc);
    }
}
