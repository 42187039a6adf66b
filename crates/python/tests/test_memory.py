"""Zero-copy views of the memory map, and arrays outliving their reader."""

import gc
import shutil

import numpy as np
import pytest

import ckpt


def _base_chain(arr):
    out = []
    while arr is not None:
        out.append(arr)
        arr = getattr(arr, "base", None)
    return out


def test_aligned_tensors_are_read_only_views(fixtures):
    reader = ckpt.load_checkpoint(fixtures / "mlp" / "model.ckpt-150")
    kernel = reader.get_tensor("fc1/weights")
    assert kernel.dtype == np.float32 and kernel.shape == (784, 256)
    assert not kernel.flags.writeable
    with pytest.raises(ValueError):
        kernel[0, 0] = 1.0
    # The array's base chain ends in the native reader that owns the mapping.
    assert type(_base_chain(kernel)[-1]).__name__ == "Reader"
    # Two reads view the same mapped bytes.
    again = reader.get_tensor("fc1/weights")
    assert np.shares_memory(kernel, again)


def test_copies_where_a_view_is_impossible(fixtures):
    # Strings are decoded; V1 values come from protobuf lists: both are owned and writeable.
    strings = ckpt.load_variable(fixtures / "dtypes" / "ckpt", "string/matrix")
    assert strings.dtype == object and strings.flags.writeable
    v1 = fixtures / "v1_dtypes" / "model.ckpt"
    reader = ckpt.load_checkpoint(v1)
    assert reader.format == "V1"
    name = next(n for n, s in ckpt.list_variables(v1) if s and reader.get_variable_to_dtype_map()[n] == "float32")
    value = np.asarray(reader.get_tensor(name))
    assert value.flags.writeable


def test_arrays_outlive_the_reader(tmp_path, fixtures):
    src = fixtures / "mlp"
    for f in src.iterdir():
        if f.name.startswith("model.ckpt-150"):
            shutil.copy(f, tmp_path / f.name)
    want = np.asarray(ckpt.load_variable(src / "model.ckpt-150", "fc1/weights")).copy()
    reader = ckpt.load_checkpoint(tmp_path / "model.ckpt-150")
    views = [reader.get_tensor("fc1/weights")[10:20], reader.get_tensor("fc1/biases")]
    del reader
    gc.collect()
    # The mapping stays alive through the arrays, even once the files are gone.
    for f in list(tmp_path.iterdir()):
        f.unlink()
    gc.collect()
    assert np.array_equal(views[0], want[10:20])
    assert views[1].shape == (256,) and np.isfinite(views[1]).all()
    total = float(views[0].sum())
    del views
    gc.collect()
    assert np.isfinite(total)


def test_verify_false_skips_checksums(tmp_path):
    prefix = tmp_path / "m"
    ckpt.save(prefix, {"w": np.arange(16, dtype=np.float32)})
    data = tmp_path / "m.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[8] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum mismatch"):
        ckpt.load_checkpoint(prefix).get_tensor("w")
    got = ckpt.load_checkpoint(prefix, verify=False).get_tensor("w")
    assert got[2] != 2.0 and got[3] == 3.0
