"""ckpt.Session(path).run(fetches, feed_dict) against TensorFlow's outputs recorded with the
MLP, CNN (LeNet) and BERT fixtures: float outputs within 1e-5 relative + 1e-6 absolute (the
tolerance of the Rust fixture tests), integer outputs exact."""

import numpy as np
import pytest

import ckpt
from conftest import load_json


def feeds_of(d, case):
    feed = {}
    for f in case["feeds"]:
        feed[f["name"]] = np.load(d / f["file"]) if "file" in f else f["value"]
    return feed


def check(got, want, name):
    assert got.shape == want.shape, name
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
    else:
        assert np.array_equal(got, want), name


@pytest.mark.parametrize("fixture", ["mlp", "lenet", "bert"])
def test_session_matches_tensorflow(fixtures, fixture):
    d = fixtures / fixture
    case = load_json(d / "case.json")
    with ckpt.Session(d / case["checkpoint"]) as sess:
        names = [f["name"] for f in case["fetches"]]
        outs = sess.run(names, feed_dict=feeds_of(d, case))
        assert isinstance(outs, list) and len(outs) == len(names)
        for f, got in zip(case["fetches"], outs):
            check(np.asarray(got), np.load(d / f["file"]), f["name"])


def test_fetch_structures_and_tensor_names(fixtures):
    d = fixtures / "mlp"
    case = load_json(d / "case.json")
    feed = {f["tensor"]: v for f, v in zip(case["feeds"], feeds_of(d, case).values())}
    sess = ckpt.Session(d)
    logits = np.load(d / "logits.npy")
    one = sess.run("logits:0", feed)
    check(one, logits, "logits")
    nested = sess.run({"a": "logits", "b": ("pred", ["probs"])}, feed)
    check(nested["a"], logits, "logits")
    check(nested["b"][0], np.load(d / "pred.npy"), "pred")
    check(nested["b"][1][0], np.load(d / "probs.npy"), "probs")


def test_bad_feeds_raise(fixtures):
    d = fixtures / "mlp"
    sess = ckpt.Session(d / "model.ckpt-150")
    x = np.load(d / "x.npy")
    with pytest.raises(ValueError):
        sess.run("logits", {"x": x[:, :100], "keep_prob": 1.0})  # wrong shape
    with pytest.raises(ValueError):
        sess.run("logits", {"x": x})  # keep_prob not fed
    with pytest.raises(ValueError):
        sess.run("no_such_node", {"x": x, "keep_prob": 1.0})
    with pytest.raises(TypeError):
        sess.run("logits", {"x": np.array([object()]), "keep_prob": 1.0})
    with pytest.raises(TypeError):
        sess.run(3, {"x": x})
