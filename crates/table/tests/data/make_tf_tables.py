"""Writes the TensorFlow bundles whose .index files tests/tensorflow_multiblock.rs
reproduces byte for byte (it checks the length, CRC32C and data block sizes
recorded from this script's output, so the large files need not be committed).

Run with TensorFlow installed (made with tensorflow-cpu 2.21.0):
    python make_tf_tables.py OUT_DIR
then print the numbers the test records:
    python make_tf_tables.py OUT_DIR --summary

Tensor i (in sorted name order) is the float32 vector [i], so every index value
is a BundleEntryProto the test can regenerate.
"""
import os
import sys


def names():
    return {
        # Several 256 KiB data blocks, with shortened separators between them.
        "many": [f"layer_{i:05d}/dense/kernel/Adam_{i % 3}".encode() for i in range(9000)],
        # A name of 600 KiB: TF flushes the block before it (entry >= 2 * block_size).
        "big": [b"a", b"b", b"m" + b"x" * (600 * 1024), b"n", b"o"]
        + [b"p%04d" % i + b"y" * 200 for i in range(2000)],
        # Binary names with 0x00, 0x7f and 0xff bytes; the last key is all 0xff,
        # which FindShortSuccessor leaves unchanged.
        "odd": [b"\xff" * 3 + b"\x00" * (i % 5) + b"%05d" % i + b"q" * 90 for i in range(3000)]
        + [b"\x7f" * 100 + b"%05d" % i for i in range(2000)]
        + [b"\xff" * 200],
    }


def write(out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    os.makedirs(out, exist_ok=True)
    for prefix, keys in names().items():
        keys = sorted(set(keys))
        tensors = [tf.constant([float(i)], dtype=tf.float32) for i in range(len(keys))]
        tf.raw_ops.SaveV2(
            prefix=os.path.join(out, prefix),
            tensor_names=keys,
            shape_and_slices=[""] * len(keys),
            tensors=tensors,
        )


def crc32c(data):
    crc = 0xFFFFFFFF
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def summary(out):
    for prefix in names():
        data = open(os.path.join(out, prefix + ".index"), "rb").read()
        print(f"{prefix}: len {len(data)}, crc32c 0x{crc32c(data):08x}")


if __name__ == "__main__":
    if "--summary" in sys.argv[2:]:
        summary(sys.argv[1])
    else:
        write(sys.argv[1])
