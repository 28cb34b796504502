"""A damaged model file (or checkpoint) written by this lathe: a byte changed anywhere gives a checksum
or format error naming the file, or (damage in bytes the model does not use) exactly the intact
model's results. Never a crash, never a hang, never different results.

Lathe used to write its strings as variable-length attributes, whose text HDF5 keeps in its global
heap ("GCOL") without a checksum; one changed byte there crashed or hung HDF5 itself while the
loader read the attributes. It also wrote the 1.8 file format, where each dataset's chunk is indexed
by a version 1 B-tree ("TREE") without a checksum: a changed byte there could make a dataset read
as zeros. Lathe now writes the 1.10 file format, fixed-length string attributes in the object
headers and text over 32 KiB as Fletcher32 datasets (io/model_file.h): all checksummed by HDF5.

LATHE_OLD, when set, is a lathe binary from before that change: the test then writes a model with it
and checks that this lathe still evaluates it identically and detects damage to its chunk index (its
global heap stays unprotected), and that the old lathe reads a model written now.

Every lathe process runs with a timeout; the sweeps run a few processes at a time."""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

from lathe_run import LATHE, binary_data_and_model, checked, read_bytes, write_bytes
from lathe_run import attempt as lathe  # never raises: damaged files must fail

LATHE_OLD = os.environ.get("LATHE_OLD")
TIMEOUT = 10  # seconds for one damaged-file run: an intact one takes a fraction of a second
WORKERS = 4
FLIP_MASKS = (0x5A, 0x01, 0x80, 0xFF, 0x10)
# The signatures of HDF5's metadata blocks: object headers and their continuations, fractal heaps
# (dense attribute and link storage), v2 B-trees, the global heap, v1 B-trees and the superblock.
SIGNATURES = (b"\x89HDF", b"OHDR", b"OCHK", b"FRHP", b"FHDB", b"FHIB", b"BTHD", b"BTIN", b"BTLF", b"GCOL", b"TREE")
TEXT_ATTRIBUTES = ("task", "model_kind", "loss", "label", "huber_delta", "target_mean", "target_std",
                   "target_transform", "preparation", "input_schema", "metrics", "options", "history")


def sweep_offsets(data, stride_count=120):
    """Offsets to damage: a spread over the whole file, a few bytes into every metadata block (every
    byte of the first 256 after a global heap's signature), and each text attribute's name and text."""
    n = len(data)
    offsets = set(range(0, n, max(1, n // stride_count)))
    for signature in SIGNATURES:
        at = data.find(signature)
        while at >= 0:
            if signature == b"GCOL":
                offsets.update(range(at, min(n, at + 256)))
            else:
                offsets.update(o for o in (at, at + 4, at + 5, at + 7, at + 12, at + 24) if o < n)
            at = data.find(signature, at + 1)
    for name in TEXT_ATTRIBUTES:
        at = data.find(name.encode())
        if at >= 0:
            offsets.update(o for o in (at, at + len(name) + 24, at + len(name) + 40) if o < n)
    return sorted(offsets)


def outcome_of(proc, name, baseline):
    """'harmless' (exit 0, the intact results), 'detected' (exit 1, an error naming the file), or what
    went wrong."""
    if proc.returncode < 0 or proc.returncode in (134, 139):
        return f"crashed (exit {proc.returncode})"
    if proc.returncode == 0:
        return "harmless" if proc.stdout == baseline else "different results"
    if proc.returncode == 1 and "lathe: error:" in proc.stderr and name in proc.stderr:
        return "detected"
    return f"exit {proc.returncode} without an error naming {name}: {proc.stderr.strip()[-300:]}"


def sweep(pristine, offsets, work, run_one):
    """Flips one byte at each offset (masks in turn) in a copy of `pristine` and runs `run_one(folder,
    model path)` on it, a few at a time. Returns {outcome: [(offset, mask), ...]}."""
    def job(i, offset):
        mask = FLIP_MASKS[i % len(FLIP_MASKS)]
        folder = os.path.join(work, f"flip-{offset}")
        os.makedirs(folder)
        damaged = bytearray(pristine)
        damaged[offset] ^= mask
        path = os.path.join(folder, "model.h5")
        write_bytes(path, damaged)
        try:
            outcome = run_one(folder, path)
        except subprocess.TimeoutExpired:
            outcome = f"hung (no exit in {TIMEOUT} s)"
        shutil.rmtree(folder, ignore_errors=True)
        return outcome, offset, mask

    outcomes = {}
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for outcome, offset, mask in pool.map(lambda a: job(*a), enumerate(offsets)):
            outcomes.setdefault(outcome, []).append((offset, mask))
    return outcomes


def summary(outcomes):
    return ", ".join(f"{k}: {len(v)}" for k, v in sorted(outcomes.items()))


class DamageCase(unittest.TestCase):
    """A case with a scratch folder `work`, a data file `data` and an `evaluate` of a model on it."""

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    eval_timeout = TIMEOUT

    @classmethod
    def evaluate(cls, folder, model, binary=None, timeout=None):
        return lathe("eval", model, cls.data, "--json", "--device", "cpu", binary=binary, cwd=folder,
                     timeout=timeout or cls.eval_timeout)

    def assertOnlyHarmlessOrDetected(self, outcomes, what):
        total = sum(len(v) for v in outcomes.values())
        print(f"\n{what}: {total} byte flips: {summary(outcomes)}", file=sys.stderr)
        bad = {k: v for k, v in outcomes.items() if k not in ("harmless", "detected")}
        if bad:
            examples = "\n".join(f"  {k}: at " + ", ".join(f"{o} (^0x{m:02x})" for o, m in v[:8])
                                 for k, v in bad.items())
            self.fail(f"{what}: {total} byte flips: {summary(outcomes)}\n{examples}")
        self.assertIn("detected", outcomes, f"{what}: no flip was detected at all")


class ModelDamageTest(DamageCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lathe-model-damage-")
        cls.data, cls.model = binary_data_and_model(cls.work, rows=2000, features=5, epochs=2)
        cls.pristine = read_bytes(cls.model)
        cls.baseline = cls.evaluate(cls.work, cls.model).stdout

    def test_byte_flips_across_the_file(self):
        offsets = sweep_offsets(self.pristine)
        self.assertGreater(len(offsets), 100)
        outcomes = sweep(self.pristine, offsets, self.work,
                         lambda folder, path: outcome_of(self.evaluate(folder, path), "model.h5", self.baseline))
        self.assertOnlyHarmlessOrDetected(outcomes, f"lathe eval on {len(self.pristine)}-byte model")

    def test_no_global_heap_and_strings_are_fixed_length(self):
        # No variable-length string anywhere: nothing in the file is read from an unchecked heap.
        self.assertFalse(b"GCOL" in self.pristine, "the model file has a global heap")
        # The 1.10 file format: chunks indexed in the checksummed object header, no version 1 B-tree.
        self.assertFalse(b"TREE" in self.pristine, "the model file has a version 1 B-tree")
        with h5py.File(self.model, "r") as f:
            for obj in (f, f["profile"], f["predictions"]):
                for name in obj.attrs:
                    info = h5py.check_string_dtype(obj.attrs.get_id(name).dtype)
                    if info is not None:
                        self.assertIsNotNone(info.length, f"{obj.name} attribute '{name}' is variable-length")

    def test_h5py_and_h5dump_read_the_attributes(self):
        with h5py.File(self.model, "r") as f:
            text = {name: f.attrs[name].decode("utf-8") for name in TEXT_ATTRIBUTES}
            self.assertEqual(text["task"], "binary")
            self.assertEqual(text["model_kind"], "linear")
            self.assertEqual(text["loss"], "logistic")
            self.assertEqual(text["label"], "label")
            self.assertEqual([c.decode("utf-8") for c in f.attrs["classes"]], ["no", "yes"])
            self.assertEqual(json.loads(text["preparation"])["dense_names"], ["f0", "f1", "f2", "f3", "f4"])
            self.assertEqual(len(json.loads(text["history"])), 2)
            self.assertEqual(json.loads(text["target_std"]), 1.0)
            self.assertEqual(f["predictions"].attrs["source"].decode("utf-8"), "validation")
            columns = json.loads(f["profile"].attrs["columns"].decode("utf-8"))
            self.assertEqual([c["name"] for c in columns], ["f0", "f1", "f2", "f3", "f4", "label"])
            self.assertEqual(int(f.attrs["lathe_model_format_version"]), 3)  # no text datasets: format 3
        if shutil.which("h5dump") is None:
            self.skipTest("h5dump is not installed")
        out = subprocess.run(["h5dump", "-A", self.model], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn('ATTRIBUTE "task"', out.stdout)
        self.assertIn('"binary"', out.stdout)
        self.assertIn('ATTRIBUTE "preparation"', out.stdout)
        self.assertIn("dense_names", out.stdout)

    def test_a_model_written_before_the_change_still_loads(self):
        if not LATHE_OLD:
            self.skipTest("LATHE_OLD (a lathe from before fixed-length strings) is not set")
        old = os.path.join(self.work, "old.h5")
        checked("train", self.data, "--task", "binary", "--label", "label", "--out", old, "--epochs", "2",
                "--device", "cpu", "--quiet", binary=LATHE_OLD)
        self.assertIn(b"GCOL", read_bytes(old), "the old lathe wrote no variable-length strings")
        with h5py.File(old, "r") as f:
            self.assertIsNone(h5py.check_string_dtype(f.attrs.get_id("preparation").dtype).length)
        ours = self.evaluate(self.work, old, timeout=120)
        theirs = self.evaluate(self.work, old, binary=LATHE_OLD, timeout=120)
        self.assertEqual(ours.returncode, 0, ours.stderr)
        self.assertEqual(ours.stdout, theirs.stdout)
        # And the old lathe reads a model written now (format 3: no text datasets) as this one does.
        self.assertEqual(self.evaluate(self.work, self.model, binary=LATHE_OLD, timeout=120).stdout, self.baseline)
        # The old file's chunk index (version 1 B-trees): a changed chunk size, filter mask or chunk
        # position is an error, never a dataset read as zeros.
        pristine = read_bytes(old)
        trees = []
        at = pristine.find(b"TREE")
        while at >= 0:
            trees.append(at)
            at = pristine.find(b"TREE", at + 1)
        self.assertGreater(len(trees), 3)
        offsets = sorted(at + k for at in trees for k in (24, 28, 32, 40))
        outcomes = sweep(pristine, offsets, self.work,
                         lambda folder, path: outcome_of(self.evaluate(folder, path), "model.h5", ours.stdout))
        self.assertOnlyHarmlessOrDetected(outcomes, "lathe eval on an old model's chunk index")


class CheckpointDamageTest(DamageCase):
    """A checkpoint shares the model file's writer and adds the trainer state (a string) and the
    optimizer's state: `lathe train --resume` on a damaged one fails naming it or resumes exactly."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lathe-checkpoint-damage-")
        cls.data = os.path.join(cls.work, "d.h5")
        checked("synth", "--task", "binary", "--rows", "600", "--features", "3", "--out", cls.data, "--quiet")
        cls.checkpoint = os.path.join(cls.work, "model.h5")
        checked(*cls.train_args(cls.work, 2), "--checkpoint-every", "1", "--checkpoint", cls.checkpoint)
        cls.pristine = read_bytes(cls.checkpoint)
        cls.baseline = cls.resume(cls.work, cls.checkpoint, timeout=120)
        assert cls.baseline[0] == "ok", cls.baseline

    @classmethod
    def train_args(cls, folder, epochs):
        return ("train", cls.data, "--task", "binary", "--label", "label", "--out", os.path.join(folder, "out.h5"),
                "--epochs", str(epochs), "--device", "cpu", "--quiet")

    @classmethod
    def resume(cls, folder, checkpoint, timeout=TIMEOUT):
        """("ok", weights, bias) of the resumed run's model, or ("failed", the process)."""
        proc = lathe(*cls.train_args(folder, 3), "--resume", checkpoint, cwd=folder, timeout=timeout)
        if proc.returncode != 0:
            return "failed", proc
        with h5py.File(os.path.join(folder, "out.h5"), "r") as f:
            return "ok", f["weights"][()].tobytes(), f["bias"][()].tobytes()

    def run_one(self, folder, path):
        result = self.resume(folder, path)
        if result[0] == "ok":
            return "harmless" if result == self.baseline else "different results"
        return outcome_of(result[1], "model.h5", None)

    def test_byte_flips_across_the_checkpoint(self):
        offsets = sweep_offsets(self.pristine, stride_count=50)[::2]
        outcomes = sweep(self.pristine, offsets, self.work, self.run_one)
        self.assertOnlyHarmlessOrDetected(outcomes, f"lathe train --resume on {len(self.pristine)}-byte checkpoint")
        self.assertFalse(b"GCOL" in self.pristine, "the checkpoint has a global heap")


class LongTextTest(DamageCase):
    """Text over 32 KiB (here the input schema, preparation and profile of a categorical column with
    3000 long labels) is stored as Fletcher32 datasets: the file is format 4."""

    eval_timeout = 60

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lathe-model-long-text-")
        cls.data = os.path.join(cls.work, "d.h5")
        rng = np.random.default_rng(7)
        rows, labels = 4000, [f"a-rather-long-category-label-{i:05d}" for i in range(3000)]
        with h5py.File(cls.data, "w") as f:
            f.create_dataset("x", data=rng.normal(size=rows).astype(np.float32), chunks=True)
            city = f.create_dataset("city", data=(np.arange(rows) % len(labels)).astype(np.int32), chunks=True)
            city.attrs["categories"] = labels
            f.create_dataset("y", data=rng.normal(size=rows).astype(np.float32), chunks=True)
            f.attrs["lathe_columns"] = ["x", "city", "y"]
        cls.model = os.path.join(cls.work, "model.h5")
        checked("train", cls.data, "--task", "regression", "--label", "y", "--out", cls.model, "--epochs", "1",
                "--device", "cpu", "--quiet")
        cls.pristine = read_bytes(cls.model)
        cls.baseline = cls.evaluate(cls.work, cls.model).stdout

    def test_long_text_is_a_checksummed_dataset(self):
        self.assertFalse(b"GCOL" in self.pristine, "the model file has a global heap")
        with h5py.File(self.model, "r") as f:
            self.assertEqual(int(f.attrs["lathe_model_format_version"]), 4)
            self.assertNotIn("input_schema", f.attrs)
            self.assertTrue(f["input_schema"].fletcher32)
            schema = json.loads(f["input_schema"].asstr()[0])
            self.assertEqual(len(next(c for c in schema if c["name"] == "city")["categories"]), 3000)
            self.assertTrue(f["profile/columns"].fletcher32)
            self.assertEqual(f.attrs["task"].decode(), "regression")
        proc = self.evaluate(self.work, self.model)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        if LATHE_OLD:  # a lathe that knows only format 3 refuses, saying why
            proc = self.evaluate(self.work, self.model, binary=LATHE_OLD)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("upgrade lathe", proc.stderr)

    def test_byte_flips_in_the_text_datasets(self):
        with h5py.File(self.model, "r") as f:
            chunks = [f[name].id.get_chunk_info(0) for name in ("input_schema", "profile/columns")]
        offsets = sorted({c.byte_offset + c.size * k // 12 for c in chunks for k in range(12)} |
                         {c.byte_offset + c.size - 1 for c in chunks})
        outcomes = sweep(self.pristine, offsets, self.work,
                         lambda folder, path: outcome_of(self.evaluate(folder, path), "model.h5", self.baseline))
        self.assertOnlyHarmlessOrDetected(outcomes, "lathe eval on a model with text datasets")
        self.assertNotIn("harmless", outcomes, "a flip in a text dataset was not detected")


class CompressedTableDamageTest(DamageCase):
    """A table of 1 MiB or more (a categorical cross hashed into 2^18 buckets, mostly zeros) is stored
    shuffled and deflated under its Fletcher32 checksum: the file is small, reads back exactly, and a
    changed byte of the compressed chunk is detected."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lathe-model-compressed-")
        cls.data = os.path.join(cls.work, "d.h5")
        rng = np.random.default_rng(11)
        rows = 3000
        with h5py.File(cls.data, "w") as f:
            f.create_dataset("x", data=rng.normal(size=rows).astype(np.float32))
            for name in ("a", "b"):
                column = f.create_dataset(name, data=rng.integers(0, 40, rows).astype(np.int32))
                column.attrs["categories"] = [f"{name}{i}" for i in range(40)]
            f.create_dataset("y", data=(rng.random(rows) < 0.4).astype(np.float32))
            f.attrs["lathe_columns"] = ["x", "a", "b", "y"]
        cls.model = os.path.join(cls.work, "model.h5")
        checked("train", cls.data, "--task", "binary", "--label", "y", "--cross", "a*b", "--hash-buckets", "262144",
                "--out", cls.model, "--epochs", "1", "--device", "cpu", "--quiet")
        cls.pristine = read_bytes(cls.model)
        cls.baseline = cls.evaluate(cls.work, cls.model).stdout

    def test_the_table_is_compressed_and_checksummed(self):
        with h5py.File(self.model, "r") as f:
            weights = f["weights"]
            self.assertGreaterEqual(weights.size * 4, 1 << 20)
            self.assertEqual(weights.compression, "gzip")
            self.assertTrue(weights.shuffle and weights.fletcher32)
            self.assertGreater(np.count_nonzero(weights[()]), 100)  # the slots trained
            self.assertTrue(np.all(np.isfinite(weights[()])))
        self.assertLess(len(self.pristine), 300_000)  # the table alone is 1 MiB
        self.assertEqual(self.evaluate(self.work, self.model).returncode, 0)

    def test_byte_flips_in_the_compressed_table(self):
        with h5py.File(self.model, "r") as f:
            chunk = f["weights"].id.get_chunk_info(0)
        offsets = sorted({chunk.byte_offset + chunk.size * k // 24 for k in range(24)} |
                         {chunk.byte_offset + chunk.size - 1})
        outcomes = sweep(self.pristine, offsets, self.work,
                         lambda folder, path: outcome_of(self.evaluate(folder, path), "model.h5", self.baseline))
        self.assertOnlyHarmlessOrDetected(outcomes, "lathe eval on a model with a compressed table")
        self.assertNotIn("harmless", outcomes, "a flip in the compressed table was not detected")


class TrainedOnPreparedDamageTest(DamageCase):
    """A model trained on `lathe prepare` output stores the prepared file's name, fingerprint and
    preparation in its "trained_on_prepared" text: a changed byte there is detected like any other
    (the object header's checksum, the attribute digest, the fingerprint), and a long one is a
    checksummed dataset."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lathe-model-prepared-")
        raw = os.path.join(cls.work, "raw.h5")
        checked("synth", "--task", "binary", "--rows", "2000", "--features", "5", "--categorical", "2", "--out", raw,
                "--quiet")
        cls.data = os.path.join(cls.work, "p.h5")
        checked("prepare", raw, cls.data, "--label", "label", "--device", "cpu", "--quiet")
        cls.model = os.path.join(cls.work, "model.h5")
        checked("train", cls.data, "--task", "binary", "--label", "label", "--out", cls.model, "--epochs", "2",
                "--device", "cpu", "--quiet")
        cls.pristine = read_bytes(cls.model)
        cls.baseline = cls.evaluate(cls.work, cls.model).stdout

    def test_the_record_is_a_checksummed_text(self):
        with h5py.File(self.model, "r") as f, h5py.File(self.data, "r") as p:
            info = h5py.check_string_dtype(f.attrs.get_id("trained_on_prepared").dtype)
            self.assertIsNotNone(info.length, "trained_on_prepared is variable-length")
            record = json.loads(f.attrs["trained_on_prepared"].decode("utf-8"))
            self.assertEqual(record["source"], "p.h5")
            self.assertEqual(record["preparation"], p.attrs["lathe_preparation"])
            self.assertEqual(int(f.attrs["lathe_model_format_version"]), 3)
        self.assertFalse(b"GCOL" in self.pristine, "the model file has a global heap")

    def test_byte_flips_in_the_record(self):
        at = self.pristine.find(b'{"fingerprint":')
        self.assertGreater(at, 0)
        end = self.pristine.find(b"}", self.pristine.rfind(b'"source":'))
        offsets = sorted(set(range(at, end + 1, max(1, (end - at) // 60))) | {at + 17, at + 20, end - 3})
        outcomes = sweep(self.pristine, offsets, self.work,
                         lambda folder, path: outcome_of(self.evaluate(folder, path), "model.h5", self.baseline))
        self.assertOnlyHarmlessOrDetected(outcomes, "lathe eval on a model trained on prepared data")
        self.assertNotIn("harmless", outcomes, "a flip in the trained_on_prepared text was not detected")

    def test_a_long_record_is_a_dataset(self):
        rng = np.random.default_rng(3)
        rows, labels = 3000, [f"a-rather-long-category-label-{i:05d}" for i in range(2500)]
        raw = os.path.join(self.work, "long.h5")
        with h5py.File(raw, "w") as f:
            f.create_dataset("x", data=rng.normal(size=rows), chunks=True)
            city = f.create_dataset("city", data=(np.arange(rows) % len(labels)).astype(np.int32), chunks=True)
            city.attrs["categories"] = labels
            f.create_dataset("y", data=rng.normal(size=rows), chunks=True)
            f.attrs["lathe_columns"] = ["x", "city", "y"]
        prepared = os.path.join(self.work, "long_p.h5")
        checked("prepare", raw, prepared, "--label", "y", "--device", "cpu", "--quiet")
        model = os.path.join(self.work, "long_m.h5")
        checked("train", prepared, "--task", "regression", "--label", "y", "--out", model, "--epochs", "1",
                "--device", "cpu", "--quiet")
        with h5py.File(model, "r") as f:
            self.assertEqual(int(f.attrs["lathe_model_format_version"]), 4)
            self.assertNotIn("trained_on_prepared", f.attrs)
            self.assertTrue(f["trained_on_prepared"].fletcher32)
            self.assertEqual(json.loads(f["trained_on_prepared"].asstr()[0])["source"], "long_p.h5")
        again = os.path.join(self.work, "long_q.h5")
        checked("prepare", raw, again, "--from", model, "--device", "cpu", "--quiet")
        proc = lathe("eval", model, again, "--json", "--device", "cpu", timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = lathe("eval", model, raw, "--json", "--device", "cpu", timeout=120)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("is not prepared that way", proc.stderr)


if __name__ == "__main__":
    unittest.main()
