"""ckpt.load_saved_model(dir).signatures[key](**inputs) against what TensorFlow's
tf.saved_model.load(...).signatures[key](...) (TF2) or Session.run (TF1) gave, recorded in the
SavedModel fixtures: floats within 1e-5 relative + 1e-6 absolute, integers exact."""

import numpy as np
import pytest

import ckpt
from conftest import load_json


def cases(fixtures_dir):
    out = []
    for name in ("saved_model_tf1", "saved_model_tf2", "saved_model_keras"):
        case = load_json(fixtures_dir / name / "case.json")
        for sig in case["signatures"]:
            out.append((name, case["dir"], sig))
    return out


def test_signatures_match_tensorflow(fixtures):
    found = cases(fixtures)
    assert len(found) >= 5
    for name, model_dir, sig in found:
        d = fixtures / name
        loaded = ckpt.load_saved_model(d / model_dir, tags=sig["tags"])
        fn = loaded.signatures[sig["key"]]
        inputs = {f["key"]: np.load(d / f["file"]) if "file" in f else f["value"] for f in sig["feeds"]}
        got = fn(**inputs)
        assert sorted(got) == sorted(f["key"] for f in sig["fetches"]), (name, sig["key"])
        for f in sig["fetches"]:
            want = np.load(d / f["file"])
            out = np.asarray(got[f["key"]])
            assert out.shape == want.shape, (name, f["key"])
            if np.issubdtype(want.dtype, np.floating):
                np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {f['key']}")
            else:
                assert out.dtype == want.dtype and np.array_equal(out, want), (name, f["key"])


def test_saved_model_errors(fixtures, tmp_path):
    with pytest.raises(FileNotFoundError):
        ckpt.load_saved_model(tmp_path)
    with pytest.raises(ValueError, match="serve"):
        ckpt.load_saved_model(fixtures / "saved_model_tf2" / "model", tags=["gpu"])
    fn = ckpt.load_saved_model(fixtures / "saved_model_tf2" / "model").signatures["serving_default"]
    with pytest.raises(ValueError):
        fn(x=np.zeros((2, 4), np.float32))  # `a` missing
    with pytest.raises(ValueError):
        fn(x=np.zeros((2, 5), np.float32), a=np.zeros((2, 3), np.float32))  # wrong shape
    # The variables of a SavedModel read like any checkpoint.
    assert ckpt.list_variables(fixtures / "saved_model_tf2" / "model")
