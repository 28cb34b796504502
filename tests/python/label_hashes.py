"""The label hashes and cross buckets of kernels/prepare_formulas.h (mix64, label_hash, cross_bucket)
written again in Python, as an independent oracle for the tests that check which bucket a pair of
labels falls into (ONNX export, a report's cross names, a retraining's moved buckets)."""

M64 = (1 << 64) - 1
# The label hashes of the two slots without a label: a missing value and a label unseen in training.
MISSING_LABEL_HASH = 0x6D697373696E6721
UNKNOWN_LABEL_HASH = 0x756E6B6E6F776E21


def mix64(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return x


def label_hash(label):
    """FNV-1a over the label's UTF-8 bytes, then mix64."""
    h = 0xCBF29CE484222325
    for b in label.encode():
        h ^= b
        h = (h * 0x100000001B3) & M64
    return mix64(h)


def cross_bucket(ha, hb, buckets):
    return mix64(((ha * 0x9E3779B97F4A7C15) & M64) ^ hb) % buckets


def slot_hashes(labels):
    """A categorical column's slot hashes: its labels in slot order, then <missing> and <unknown>."""
    return [label_hash(label) for label in labels] + [MISSING_LABEL_HASH, UNKNOWN_LABEL_HASH]
