"""ckpt.save writes what ckpt (and TensorFlow: see fixtures/make_fixtures.py's check of the
dtypes fixture) reads back: every dtype, strings, scalars, empty and non-contiguous arrays."""

import ml_dtypes
import numpy as np

import ckpt


def test_round_trip_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "f16": rng.standard_normal((3, 4)).astype(np.float16),
        "bf16": rng.standard_normal(5).astype(ml_dtypes.bfloat16),
        "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "f64": rng.standard_normal(7),
        "i8": np.arange(-4, 4, dtype=np.int8),
        "i16": np.arange(6, dtype=np.int16),
        "i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "i64": np.array(-(2**62), dtype=np.int64),
        "u8": np.arange(250, 256, dtype=np.uint8),
        "u16": np.array([65535], np.uint16),
        "u32": np.array([2**32 - 1], np.uint32),
        "u64": np.array([2**64 - 1], np.uint64),
        "b": np.array([True, False, True]),
        "c64": np.array([1 + 2j, -3j], np.complex64),
        "c128": np.array([1 + 2j], np.complex128),
        "strided": np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2],
        "big_endian": np.arange(4, dtype=">i4"),
        "empty": np.zeros((0, 3), np.float32),
        "s_obj": np.array([[b"a", b""], [b"\x00\xff", "h\u00e9"]], dtype=object),
        "s_fixed": np.array([b"ab", b"c"]),
        "s_scalar": b"hello",
        "f8": np.array([1.5, -2], dtype=ml_dtypes.float8_e4m3fn),
    }
    prefix = ckpt.save(tmp_path / "model.ckpt", tensors)
    reader = ckpt.load_checkpoint(prefix)
    assert sorted(reader.get_variable_to_shape_map()) == sorted(tensors)
    for name, want in tensors.items():
        got = reader.get_tensor(name)
        if name.startswith("s_"):
            want = np.array(want, dtype=object)
            if want.shape == ():
                assert got == b"hello"
                continue
            want = np.vectorize(lambda s: s.encode() if isinstance(s, str) else s, otypes=[object])(want)
            assert got.dtype == object and got.shape == want.shape
            assert got.tolist() == want.tolist(), name
            continue
        want = np.asarray(want)
        got = np.asarray(got)
        assert got.shape == want.shape, name
        assert got.dtype == want.dtype.newbyteorder("=") or got.dtype == want.dtype, name
        assert np.array_equal(got.astype(want.dtype), want), name
    assert reader.verify()[0] == len(tensors)
