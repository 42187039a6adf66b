"""Bad input raises a Python exception with the ckpt command's message, never crashes."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ckpt


def test_missing_name_is_a_key_error_with_suggestions(fixtures):
    reader = ckpt.load_checkpoint(fixtures / "mlp" / "model.ckpt-150")
    with pytest.raises(ckpt.NotFoundError) as info:
        reader.get_tensor("fc1/weight")
    assert isinstance(info.value, KeyError)
    msg = str(info.value)
    assert msg.startswith('tensor "fc1/weight" not found in ')
    assert "fc1/weights" in msg and "did you mean" in msg
    assert info.value.name == "fc1/weight"
    assert "fc1/weights" in info.value.suggestions
    assert not reader.has_tensor("fc1/weight")
    with pytest.raises(KeyError):
        ckpt.load_variable(fixtures / "mlp", "nope")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        ckpt.load_checkpoint(tmp_path / "nothing")
    assert str(info.value).startswith(f"cannot open checkpoint {tmp_path / 'nothing'}: no checkpoint at")
    with pytest.raises(FileNotFoundError):
        ckpt.list_variables(tmp_path)
    assert ckpt.latest_checkpoint(tmp_path) is None


def test_remote_path():
    with pytest.raises(ValueError, match="remote paths are not supported"):
        ckpt.load_checkpoint("gs://bucket/model.ckpt")


def _copy(src_dir, stem, dst):
    for f in src_dir.iterdir():
        if f.name.startswith(stem):
            shutil.copy(f, dst / f.name)
    return dst / stem


def test_damaged_index(tmp_path, fixtures):
    prefix = _copy(fixtures / "mlp", "model.ckpt-150", tmp_path)
    index = tmp_path / "model.ckpt-150.index"
    raw = index.read_bytes()
    index.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cannot open checkpoint"):
        ckpt.load_checkpoint(prefix)
    index.write_bytes(b"\0" * len(raw))
    with pytest.raises(ValueError):
        ckpt.load_checkpoint(prefix)


def test_truncated_and_missing_data(tmp_path, fixtures):
    prefix = _copy(fixtures / "mlp", "model.ckpt-150", tmp_path)
    data = tmp_path / "model.ckpt-150.data-00000-of-00001"
    raw = data.read_bytes()
    data.write_bytes(raw[:1000])
    reader = ckpt.load_checkpoint(prefix)
    with pytest.raises(ValueError, match="lies outside the file"):
        for name, _ in ckpt.list_variables(prefix):
            reader.get_tensor(name)
    with pytest.raises(ValueError):
        reader.verify()
    data.unlink()
    reader = ckpt.load_checkpoint(prefix)  # the index alone still lists
    assert len(reader.get_variable_to_shape_map()) > 0
    with pytest.raises(FileNotFoundError, match="missing data file"):
        reader.get_tensor("fc1/weights")


def test_fuzzed_index_bytes_never_crash(tmp_path, fixtures):
    # Each damaged copy runs in a child interpreter: a crash would show as a signal exit.
    prefix = _copy(fixtures / "dtypes", "ckpt", tmp_path)
    index = tmp_path / "ckpt.index"
    raw = bytearray(index.read_bytes())
    script = (
        "import sys, ckpt\n"
        "try:\n"
        "    r = ckpt.load_checkpoint(sys.argv[1])\n"
        "    for n in r.get_variable_to_shape_map():\n"
        "        try: r.get_tensor(n)\n"
        "        except (KeyError, ValueError, OSError): pass\n"
        "except (KeyError, ValueError, OSError):\n"
        "    pass\n"
    )
    rng = np.random.default_rng(14)
    for trial in range(40):
        damaged = bytearray(raw)
        for pos in rng.integers(0, len(raw), size=3):
            damaged[pos] = int(rng.integers(0, 256))
        index.write_bytes(bytes(damaged))
        done = subprocess.run([sys.executable, "-c", script, str(prefix)], capture_output=True, text=True)
        assert done.returncode == 0, (trial, done.stderr)
        assert "panicked" not in done.stderr, (trial, done.stderr)


def test_save_refuses_what_tensorflow_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="no TensorFlow dtype"):
        ckpt.save(tmp_path / "a", {"t": np.array(["2020-01-01"], dtype="datetime64[D]")})
    with pytest.raises(TypeError, match="bytes or str"):
        ckpt.save(tmp_path / "b", {"s": np.array([b"x", 3], dtype=object)})
    with pytest.raises(TypeError):
        ckpt.save(tmp_path / "c", [("w", np.zeros(2))])
    with pytest.raises(TypeError):
        ckpt.save(tmp_path / "d", {1: np.zeros(2)})
    # Missing directories are created, as TensorFlow's BundleWriter does; a file in the way
    # is an OSError.
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError):
        ckpt.save(tmp_path / "file" / "x", {"w": np.zeros(2)})
    assert not any(p.name.startswith(("a.", "b.", "c.", "d.", "x.")) for p in tmp_path.iterdir())
