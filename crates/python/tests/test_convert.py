"""The BERT-to-PyTorch conversion loop of the ecosystem (transformers'
`load_tf_weights_in_bert`), transcribed with `ckpt` in place of `tf.train`, gives the arrays
TensorFlow's readings give."""

import re

import numpy as np

import ckpt
from conftest import load_json

SKIP = ["adam_v", "adam_m", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "global_step"]


def convert(train, tf_path):
    """load_tf_weights_in_bert, with the torch module walk written as a name mapping:
    returns {pytorch_name: numpy array}. `train` stands for `tf.train`."""
    init_vars = train.list_variables(tf_path)
    names, arrays = [], []
    for name, shape in init_vars:
        array = train.load_variable(tf_path, name)
        assert list(np.shape(array)) == list(shape)
        names.append(name)
        arrays.append(array)
    state = {}
    for name, array in zip(names, arrays):
        name = name.split("/")
        # adam_v and adam_m are AdamWeightDecayOptimizer variables, not needed for a
        # pretrained model.
        if any(n in SKIP for n in name):
            continue
        out = []
        for m_name in name:
            if re.fullmatch(r"[A-Za-z]+_\d+", m_name):
                scope_names = re.split(r"_(\d+)", m_name)
            else:
                scope_names = [m_name]
            if scope_names[0] == "kernel" or scope_names[0] == "gamma":
                out.append("weight")
            elif scope_names[0] == "output_bias" or scope_names[0] == "beta":
                out.append("bias")
            elif scope_names[0] == "output_weights":
                out.append("weight")
            else:
                out.append(scope_names[0])
            if len(scope_names) >= 2:
                out.append(str(int(scope_names[1])))
        if m_name[-11:] == "_embeddings":
            out.append("weight")
        elif m_name == "kernel":
            array = np.transpose(array)
        state[".".join(out)] = np.ascontiguousarray(array)  # torch.from_numpy needs this
    return state


class Recorded:
    """`tf.train` answering from TensorFlow's recorded readings (expected.json)."""

    def __init__(self, rec, extra=None):
        self.values = {}
        for v in rec["variables"]:
            dt = np.dtype(v["dtype"])
            self.values[v["name"]] = np.frombuffer(bytes.fromhex(v["hex"]), dtype=dt).reshape(v["shape"])
        self.values.update(extra or {})

    def list_variables(self, path):
        return [(n, list(a.shape)) for n, a in sorted(self.values.items())]

    def load_variable(self, path, name):
        return self.values[name]


def test_bert_conversion_loop(fixtures, tmp_path):
    d = fixtures / "bert"
    rec = load_json(d / "expected.json")["checkpoints"][0]
    # Add what a pretraining checkpoint also holds (optimizer slots, the step), through
    # ckpt.save, so the loop's skipping is exercised too.
    reader = ckpt.load_checkpoint(d / "model.ckpt")
    extra = {"global_step": np.array(1000, dtype=np.int64)}
    for name in reader.get_variable_to_shape_map():
        extra[name + "/adam_m"] = np.zeros(reader.get_variable_to_shape_map()[name], np.float32)
        extra[name + "/adam_v"] = np.ones(reader.get_variable_to_shape_map()[name], np.float32)
    tensors = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    tensors.update(extra)
    prefix = tmp_path / "bert_model.ckpt"
    ckpt.save(prefix, tensors)
    assert len(ckpt.list_variables(prefix)) == 3 * len(rec["variables"]) + 1

    for path in (d / "model.ckpt", prefix):
        got = convert(ckpt, str(path))
        want = convert(Recorded(rec, extra), str(path))
        assert sorted(got) == sorted(want)
        assert len(got) == len(rec["variables"])
        for k in want:
            assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
            assert got[k].tobytes() == want[k].tobytes(), k
    assert got["bert.encoder.layer.0.attention.self.query.weight"].shape == (16, 16)
    assert got["bert.embeddings.word_embeddings.weight"].shape == (50, 16)
    assert got["bert.encoder.layer.1.intermediate.dense.weight"].shape == (32, 16)
