"""Every tensor of every committed fixture, read through ckpt, equals TensorFlow's reading
recorded in the fixture's expected.json: the listing, each dtype, shape and byte."""

import numpy as np
import ml_dtypes
import pytest

import ckpt
from conftest import crc32c, expected_files, load_json

# TensorFlow's dtype name -> the numpy dtype tf.train.load_checkpoint(...).get_tensor returns.
NUMPY = {
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "float32": np.float32,
    "float64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
    "complex64": np.complex64,
    "complex128": np.complex128,
}


def checkpoints():
    out = []
    for file in expected_files():
        for rec in load_json(file).get("checkpoints", []):
            out.append(pytest.param(file.parent, rec, id=f"{file.parent.name}/{rec['prefix']}"))
    return out


def test_fixtures_are_there():
    # Guards the parametrized test below against silently collecting nothing.
    assert len(checkpoints()) >= 10


@pytest.mark.parametrize("directory,rec", checkpoints())
def test_every_tensor_matches_tensorflow(directory, rec):
    prefix = directory / rec["prefix"]
    reader = ckpt.load_checkpoint(prefix)
    assert reader.format == ("V1" if rec.get("format") == "v1" else "V2")
    want = {v["name"]: v for v in rec["variables"]}
    listing = ckpt.list_variables(str(prefix))
    assert [n for n, _ in listing] == sorted(want, key=lambda s: s.encode())
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    for name, shape in listing:
        v = want[name]
        assert shape == v["shape"] and shapes[name] == v["shape"], name
        assert dtypes[name].name == v["dtype"], name
        assert reader.has_tensor(name)
        got = reader.get_tensor(name)
        if v["dtype"] == "string":
            strings = [bytes.fromhex(s) for s in v["strings"]]
            if v["shape"] == []:
                assert isinstance(got, bytes) and got == strings[0], name
            else:
                assert got.dtype == object and list(got.shape) == v["shape"], name
                assert all(isinstance(x, bytes) for x in got.reshape(-1)), name
                assert got.reshape(-1).tolist() == strings, name
            continue
        dtype = np.dtype(NUMPY[v["dtype"]])
        if v["shape"] == []:
            # TensorFlow returns numpy scalars for scalars.
            assert isinstance(got, np.generic) and not isinstance(got, np.ndarray), name
        arr = np.asarray(got)
        assert arr.dtype == dtype and list(arr.shape) == v["shape"], name
        raw = arr.tobytes()
        if "nbytes" in v:
            assert len(raw) == v["nbytes"], name
            assert raw.startswith(bytes.fromhex(v["head_hex"])), name
            assert crc32c(raw) == v["crc32c"], name
        else:
            assert raw == bytes.fromhex(v["hex"]), name
        # The same through the module-level function, with TensorFlow's ":0" form.
        if "nbytes" not in v:
            again = np.asarray(ckpt.load_variable(prefix, name + ":0"))
            assert again.tobytes() == raw, name
    assert reader.verify()[0] == len(want)


def test_directory_and_file_forms(fixtures):
    d = fixtures / "mlp"
    want = ckpt.list_variables(d / "model.ckpt-150")
    for form in [d, d / "model.ckpt-150.index", d / "model.ckpt-150.meta",
                 d / "model.ckpt-150.data-00000-of-00001", str(d) + "/"]:
        assert ckpt.list_variables(form) == want, form
    assert ckpt.latest_checkpoint(d) == str(d / "model.ckpt-150")
    assert ckpt.latest_checkpoint(fixtures / "dtypes") is None


def test_dtype_map_compares_like_tf_dtypes(fixtures):
    dtypes = ckpt.load_checkpoint(fixtures / "dtypes" / "ckpt").get_variable_to_dtype_map()
    assert dtypes["float32"] == np.float32 and dtypes["float32"] == "float32"
    assert dtypes["bfloat16"].as_numpy_dtype is ml_dtypes.bfloat16
    assert dtypes["string/scalar"].as_numpy_dtype is object
    assert dtypes["int64"] != np.int32
