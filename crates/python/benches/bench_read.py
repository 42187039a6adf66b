#!/usr/bin/env python3
"""Reading a large checkpoint with ckpt against TensorFlow, in one run: import time, then
load_checkpoint + get_tensor of every tensor (seconds, GB/s) and the peak RSS of each reader in
a child process of its own. Not run by tests.

Usage (from the repository root):

    PY=/path/to/venv-with-ckpt/bin/python
    $PY crates/python/benches/bench_read.py gen /tmp/ckpt-bench/big   # 64 float32 x 16 MiB = 1 GiB
    $PY crates/python/benches/bench_read.py read /tmp/ckpt-bench/big --tf /work/tfenv/bin/python

The checkpoint is the one the Rust benches and fixtures/tf_bench.py use: tensors t00..t63 of
4 Mi float32 each. Reads are timed hot: the data file is read once first to fill the page cache.
RSS is split at the end into anonymous memory (allocations) and file-backed pages (the
memory map, which the kernel can drop). Each reader also sums every value it got (so the bytes are really there, and a view that was
never touched cannot look free), timed separately.
"""

import os
import subprocess
import sys
import time

CHILD = r"""
import os, resource, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "tf":
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import tensorflow as tf
    load_checkpoint = tf.train.load_checkpoint
else:
    import ckpt
    load_checkpoint = ckpt.load_checkpoint
import numpy as np
t1 = time.perf_counter()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reader = load_checkpoint(sys.argv[2])
names = sorted(reader.get_variable_to_shape_map())
arrays = [reader.get_tensor(n) for n in names]
t2 = time.perf_counter()
# A second pass with a new reader, the first one's arrays dropped (allocator and page tables warm).
del arrays, reader
t4 = time.perf_counter()
reader = load_checkpoint(sys.argv[2])
arrays = [reader.get_tensor(n) for n in sorted(reader.get_variable_to_shape_map())]
t5 = time.perf_counter()
t5b = time.perf_counter()
total = sum(float(np.add.reduce(a, axis=None, dtype=np.float64)) for a in arrays)
t3 = time.perf_counter()
nbytes = sum(a.nbytes for a in arrays)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
status = dict(l.split(":", 1) for l in open("/proc/self/status") if l.startswith(("RssAnon", "RssFile")))
anon, file = (int(status[k].split()[0]) for k in ("RssAnon", "RssFile"))
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t5b:.3f} {nbytes} {rss0} {rss} {anon} {file} {t5 - t4:.3f} {total!r}")
"""


def gen(prefix):
    import numpy as np

    import ckpt

    rng = np.random.default_rng(0)
    tensors = {f"t{i:02d}": rng.standard_normal(4 << 20, dtype=np.float32) for i in range(64)}
    start = time.perf_counter()
    ckpt.save(prefix, tensors)
    secs = time.perf_counter() - start
    print(f"wrote {prefix}: 64 x 16 MiB float32 in {secs:.2f} s")


def read(prefix, tf_python):
    for f in os.listdir(os.path.dirname(prefix) or "."):
        path = os.path.join(os.path.dirname(prefix), f)
        if os.path.basename(prefix) in f:
            with open(path, "rb") as fh:
                while fh.read(1 << 24):
                    pass
    results = {}
    for label, python in (("ckpt", sys.executable), ("tensorflow", tf_python)):
        out = subprocess.run(
            [python, "-c", CHILD, "tf" if label == "tensorflow" else "ckpt", prefix],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        imp, load, touch, nbytes, rss0, rss, anon, file, load2 = (float(x) for x in out[:9])
        results[label] = (load, load2, out[9])
        print(
            f"{label:10s}: import {imp:.3f} s; load_checkpoint + get_tensor x64: {load:.3f} s "
            f"({int(nbytes) / load / 1e9:.2f} GB/s), second pass {load2:.3f} s "
            f"({int(nbytes) / load2 / 1e9:.2f} GB/s); summing the values: {touch:.3f} s; "
            f"peak RSS {rss / 1024:.0f} MiB ({rss0 / 1024:.0f} MiB after import; at the end "
            f"{anon / 1024:.0f} MiB anonymous + {file / 1024:.0f} MiB file-backed)"
        )
    (a, a2, sa), (b, b2, sb) = results["ckpt"], results["tensorflow"]
    print(f"ckpt / tensorflow throughput: first pass {b / a:.1f}x, second pass {b2 / a2:.1f}x; "
          f"sums equal: {sa == sb}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "read":
        tf_python = sys.argv[sys.argv.index("--tf") + 1] if "--tf" in sys.argv else "python3"
        read(sys.argv[2], tf_python)
    else:
        sys.exit(__doc__)
