"""Fault tests of the deployment commands (`lathe train`, `score`, `export`, `import`, and the
readers `eval` and `drift`):

- a truncated, empty or bit-flipped model file gives an error naming the file (exit 1), never a
  crash and never results from the damaged model;
- a process killed with SIGKILL while it trains (with and without checkpoints), scores, exports or
  imports leaves no partial file at its final path and every earlier file byte-identical;
- a full disk (a file size limit, RLIMIT_FSIZE with SIGXFSZ ignored, and as root a small tmpfs)
  gives exit 1 and leaves the earlier file intact and no temporary file behind;
- NaN in a column that had no missing values in training is imputed with the trained fill value
  and counted in `lathe score`'s JSON summary.

Every subprocess runs with a timeout; sizes are kept small enough for a 2-core machine."""
import glob
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import h5py
import numpy as np

from lathe_run import LATHE, read_bytes, write_bytes

TIMEOUT = 120  # seconds, for any one lathe process


def lathe(*args, cwd=None, fsize_limit=None, timeout=TIMEOUT):
    """Runs `lathe ARGS` and returns the CompletedProcess (never raises on a non-zero exit). With
    fsize_limit, the child runs under RLIMIT_FSIZE = fsize_limit bytes with SIGXFSZ ignored, so a
    write past the limit fails with EFBIG as a write to a full disk fails with ENOSPC."""
    preexec = None
    if fsize_limit is not None:
        def preexec():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))
    return subprocess.run([LATHE, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          preexec_fn=preexec)


def checked(*args, **kw):
    proc = lathe(*args, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"lathe {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def temporaries(final):
    """The temporary files of an output (io/temporary_file.h: "<dir>/.<name>.tmp-<pid>-<n>", and
    a temporary file's own temporary, "..<name>.tmp-<pid>-<n>.tmp-<pid>-<m>", as a checkpoint has)."""
    folder = os.path.dirname(final) or "."
    key = "." + os.path.basename(final) + ".tmp-"
    return [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(".") and key in n]


def digest(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else \
            hashlib.sha256(f.read()).hexdigest()


def cores(folder):
    return glob.glob(os.path.join(folder, "core*"))


_fixture = None


def fixture():
    """Shared inputs, made once per module run: a small binary table, a model trained on it (no
    missing values in training), and the reference outputs of every command on that model."""
    global _fixture
    if _fixture is not None:
        return _fixture
    d = tempfile.mkdtemp(prefix="lathe-faults-")
    fx = {"dir": d}
    fx["small"] = os.path.join(d, "small.h5")
    checked("synth", "--task", "binary", "--rows", 20000, "--features", 10, "--categorical", 1, "--seed", 1,
            "--out", fx["small"], "--quiet")
    fx["model"] = os.path.join(d, "model.h5")
    checked("train", fx["small"], "--label", "label", "--task", "binary", "--epochs", 3, "--device", "cpu",
            "--out", fx["model"], "--quiet")
    # A second, different model: the "earlier file" that a command must leave intact.
    fx["earlier_model"] = os.path.join(d, "earlier_model.h5")
    checked("train", fx["small"], "--label", "label", "--task", "binary", "--epochs", 1, "--seed", 9,
            "--device", "cpu", "--out", fx["earlier_model"], "--quiet")
    fx["csv"] = os.path.join(d, "small.csv")
    rng = np.random.default_rng(3)
    with open(fx["csv"], "w") as f:
        f.write("a,b,c,color,y\n")
        values = rng.normal(size=(20000, 3)).round(5)
        colors = np.array(["red", "green", "blue"])[rng.integers(0, 3, 20000)]
        for r in range(20000):
            f.write(f"{values[r, 0]},{values[r, 1]},{values[r, 2]},{colors[r]},{r % 2}\n")
    # Earlier files of the other kinds the commands write, each replaced by its own kind only: an
    # earlier model at score's or import's output would be refused before any write is tried.
    fx["earlier_scores_csv"] = os.path.join(d, "earlier_scores.csv")
    fx["earlier_scores_h5"] = os.path.join(d, "earlier_scores.h5")
    for scores in (fx["earlier_scores_csv"], fx["earlier_scores_h5"]):
        checked("score", fx["earlier_model"], fx["small"], "--out", scores, "--device", "cpu", "--quiet")
    fx["earlier_onnx"] = os.path.join(d, "earlier.onnx")
    checked("export", fx["earlier_model"], "--onnx", fx["earlier_onnx"], "--quiet")
    fx["earlier_table"] = os.path.join(d, "earlier_table.h5")
    checked("synth", "--task", "binary", "--rows", 200, "--features", 3, "--seed", 9, "--out", fx["earlier_table"],
            "--quiet")
    _fixture = fx
    return fx


def tearDownModule():
    if _fixture is not None:
        shutil.rmtree(_fixture["dir"], ignore_errors=True)


class Case(unittest.TestCase):
    def setUp(self):
        self.fx = fixture()
        self.dir = tempfile.mkdtemp(prefix="lathe-faults-case-")
        self.addCleanup(shutil.rmtree, self.dir, True)  # cleanups run last in, first out

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertNoCrash(self, proc, what):
        self.assertGreaterEqual(proc.returncode, 0, f"{what}: killed by signal {-proc.returncode}:\n{proc.stderr}")
        self.assertNotIn(proc.returncode, (134, 139), f"{what}: crashed ({proc.returncode}):\n{proc.stderr}")
        self.assertEqual(cores(self.dir), [], f"{what}: left a core file")

    def assertError(self, proc, what, names):
        """Exit 1 with one `lathe: error:` line naming `names` (a path)."""
        self.assertNoCrash(proc, what)
        self.assertEqual(proc.returncode, 1, f"{what}: expected exit 1, got {proc.returncode}:\n{proc.stderr}")
        self.assertIn("lathe: error:", proc.stderr, what)
        self.assertIn(os.path.basename(names), proc.stderr, f"{what}: the message does not name the file")

    def assertSameBytes(self, path, expected, msg="changed"):
        """The file at `path` holds exactly `expected` (compared without unittest's slow diff)."""
        self.assertTrue(os.path.exists(path), f"{path} is missing: {msg}")
        actual = read_bytes(path)
        if actual != expected:
            first = next((i for i, (a, b) in enumerate(zip(actual, expected)) if a != b), min(len(actual), len(expected)))
            self.fail(f"{path}: {msg} ({len(actual)} bytes, expected {len(expected)}; first difference at byte {first})")

    def earlier(self, name, source):
        """An earlier file at `name` (a copy of `source`); returns its path and bytes."""
        path = self.path(name)
        shutil.copyfile(source, path)
        return path, read_bytes(path)


# ------------------------------------------------------------------------------------------------
# Damaged model files


class DamagedModelTest(Case):
    """Every reader of a model file (eval, score, export, drift) on a damaged copy of it: an error
    naming the file, or (for damage in bytes the model does not use) exactly the results of the
    intact model. Never a crash, never results that differ from the intact model's."""

    @classmethod
    def setUpClass(cls):
        fx = fixture()
        cls.work = tempfile.mkdtemp(prefix="lathe-faults-damaged-")
        cls.victim = os.path.join(cls.work, "victim.h5")
        cls.pristine = read_bytes(fx["model"])
        write_bytes(cls.victim, cls.pristine)
        cls.baseline = {}
        for name, _ in cls.commands():
            outcome = cls.run_command(name)
            assert outcome[0] in (0, 3), (name, outcome)
            cls.baseline[name] = outcome
            # The commands are deterministic: the same model gives the same bytes.
            assert cls.run_command(name) == outcome, name

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def commands(cls):
        fx = fixture()
        out_csv = os.path.join(cls.work, "scored.csv")
        out_onnx = os.path.join(cls.work, "exported.onnx")
        return [
            ("eval", (["eval", cls.victim, fx["small"], "--json", "--device", "cpu"], None)),
            ("score", (["score", cls.victim, fx["small"], "--out", out_csv, "--device", "cpu", "--quiet"], out_csv)),
            ("export", (["export", cls.victim, "--onnx", out_onnx, "--quiet"], out_onnx)),
            ("drift", (["drift", cls.victim, fx["small"], "--json", "--device", "cpu"], None)),
        ]

    @classmethod
    def run_command(cls, name, proc_out=None):
        """(exit code, result bytes, stderr): the result is stdout, or the output file for score and
        export (removed first, so that a leftover never passes for a result)."""
        args, out = dict(cls.commands())[name]
        if out and os.path.exists(out):
            os.remove(out)
        proc = lathe(*args, cwd=cls.work, timeout=60)
        if proc_out is not None:
            proc_out.append(proc)
        if out:
            result = read_bytes(out) if os.path.exists(out) else None
        else:
            result = proc.stdout.encode()
        # A digest: unittest would diff two large results character by character.
        return proc.returncode, None if result is None else hashlib.sha256(result).hexdigest()

    def check(self, damaged, what, must_fail):
        """Writes `damaged` over the victim and runs every reader: an error naming the file (no
        output file), or, unless must_fail, exactly the intact model's results."""
        write_bytes(self.victim, damaged)
        for name, (args, out) in self.commands():
            with self.subTest(damage=what, command=name):
                procs = []
                code, result = self.run_command(name, procs)
                proc = procs[0]
                self.assertNoCrash(proc, f"{name} on {what}")
                self.assertEqual(cores(self.work), [], f"{name} on {what}: left a core file")
                if code in (0, 3):
                    self.assertFalse(must_fail, f"lathe {name} accepted a model with {what} (exit {code})")
                    self.assertEqual((code, result), self.baseline[name],
                                     f"lathe {name} gave results from a damaged model ({what}) that differ from "
                                     f"the intact model's")
                else:
                    self.assertEqual(code, 1, f"{name} on {what}: exit {code}:\n{proc.stderr}")
                    self.assertIn("lathe: error:", proc.stderr)
                    self.assertIn("victim.h5", proc.stderr, f"{name} on {what}: the message does not name the file")
                    if out:
                        self.assertFalse(os.path.exists(out), f"{name} on {what}: wrote {out}")
                        self.assertEqual(temporaries(out), [], f"{name} on {what}: left a temporary file")

    def flip(self, offset, bit):
        data = bytearray(self.pristine)
        data[offset] ^= 1 << bit
        return bytes(data)

    def chunk(self, dataset):
        """(file offset, size) of a dataset's one chunk (Fletcher32: the checksum is its last 4 bytes)."""
        with h5py.File(self.fx["model"], "r") as f:
            d = f[dataset]
            if d.chunks is None:
                return d.id.get_offset(), d.id.get_storage_size()
            info = d.id.get_chunk_info(0)
            self.assertTrue(d.fletcher32, dataset)
            return info.byte_offset, info.size

    def test_empty_file(self):
        self.check(b"", "an empty file", must_fail=True)

    def test_truncated(self):
        n = len(self.pristine)
        weights_at, weights_size = self.chunk("weights")
        for length in sorted({1, 8, 100, 512, 2048, weights_at + weights_size // 2, n // 4, n // 2, 3 * n // 4,
                              n - 4096, n - 1}):
            self.check(self.pristine[:length], f"the file truncated to {length} of {n} bytes", must_fail=True)

    def test_bit_flips_in_weights(self):
        at, size = self.chunk("weights")
        rng = random.Random(11)
        offsets = sorted({at, at + size // 2, at + size - 5, at + size - 1, *rng.sample(range(at, at + size), 3)})
        for offset in offsets:
            bit = rng.randrange(8)
            self.check(self.flip(offset, bit), f"bit {bit} of byte {offset} flipped (weights chunk at {at}, "
                       f"{size} bytes)", must_fail=True)

    def test_bit_flips_in_every_other_dataset(self):
        # bias, the profile and the prediction summary: all Fletcher32, all read by load_model.
        with h5py.File(self.fx["model"], "r") as f:
            names = []
            f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        rng = random.Random(12)
        self.assertIn("bias", names)
        for name in sorted(set(names) - {"weights"}):
            at, size = self.chunk(name)
            offset, bit = at + rng.randrange(size), rng.randrange(8)
            self.check(self.flip(offset, bit), f"bit {bit} of byte {offset} flipped (dataset '{name}')",
                       must_fail=True)

    def test_bit_flips_at_random_offsets(self):
        rng = random.Random(2024)
        n = len(self.pristine)
        for offset in sorted(rng.sample(range(n), 40)):
            bit = rng.randrange(8)
            self.check(self.flip(offset, bit), f"bit {bit} of byte {offset} of {n} flipped", must_fail=False)

    def test_bit_flips_in_string_attributes(self):
        # The preparation and the input schema are JSON text in variable-length string attributes
        # (HDF5's global heap, which has no checksum of its own). A flipped bit in a number there
        # changes every prediction, so it must be detected like a flip in the weights.
        with h5py.File(self.fx["model"], "r") as f:
            preparation = f.attrs["preparation"]
            preparation = preparation.decode() if isinstance(preparation, bytes) else preparation
        numeric = json.loads(preparation)["numeric"][1]
        rng = random.Random(13)
        for key in ["center", "inv_scale", "fill"]:
            text = f'"{key}":{json.dumps(numeric[key])}'
            self.assertIn(text.encode(), self.pristine, text)
            at = self.pristine.index(text.encode()) + len(key) + 3
            digits = [at + i for i, c in enumerate(text[len(key) + 3:]) if c.isdigit()]
            offset = rng.choice(digits[:4])  # one of the leading digits: bit 0 makes it another digit
            self.check(self.flip(offset, 0), f"bit 0 of byte {offset} flipped (a digit of '{key}' of column "
                       f"'{numeric['name']}' in the preparation attribute)", must_fail=False)


# ------------------------------------------------------------------------------------------------
# SIGKILL


class Killed(Case):
    def start(self, *args):
        err = open(self.path("stderr.txt"), "wb")
        try:
            return subprocess.Popen([LATHE, *map(str, args)], stdout=subprocess.DEVNULL, stderr=err, cwd=self.dir)
        finally:
            err.close()

    def kill_when(self, proc, ready, deadline_s, then_s=0.0):
        """Polls `ready()` until it holds (or the deadline passes), waits then_s more, then sends
        SIGKILL. Returns True when the process was killed (it had not exited by itself)."""
        limit = time.monotonic() + deadline_s
        while proc.poll() is None and time.monotonic() < limit and not ready():
            time.sleep(0.0005)
        if then_s:
            time.sleep(then_s)
        if proc.poll() is not None:
            return False
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.returncode != -signal.SIGKILL:  # it exited by itself just before the signal
            self.assertEqual(proc.returncode, 0, self.stderr())
            return False
        return True

    def assertIntactOrComplete(self, out, before, complete, what):
        """After a SIGKILL: the final path holds the earlier file unchanged, or (when the kill came
        after the rename) the complete new output; never anything else."""
        self.assertTrue(os.path.exists(out), f"{what}: {out} was removed")
        if read_bytes(out) != before:
            try:
                complete(out)
            except Exception as e:  # noqa: BLE001: any failure to read it is a partial file
                self.fail(f"{what}: {out} is neither the earlier file nor a complete output: {e}")

    def inputs(self):
        return [self.fx["model"], self.fx["small"], self.fx["csv"], self.fx["earlier_model"]]

    def setUp(self):
        super().setUp()
        self.input_digests = {p: digest(p) for p in self.inputs()}

    def tearDown(self):
        for path, expected in self.input_digests.items():
            self.assertEqual(digest(path), expected, f"the input {path} was changed")

    def stderr(self):
        with open(self.path("stderr.txt"), errors="replace") as f:
            return f.read()


class KillTrainTest(Killed):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lathe-faults-kill-train-")
        cls.data = os.path.join(cls.work, "mid.h5")
        checked("synth", "--task", "binary", "--rows", 300000, "--features", 10, "--categorical", 1, "--seed", 4,
                "--out", cls.data, "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def inputs(self):
        return super().inputs() + [self.data]

    def train(self, out, *flags):
        return self.start("train", self.data, "--label", "label", "--task", "binary", "--device", "cpu", "--quiet",
                          "--out", out, *flags)

    def assertCompleteModel(self, path, what):
        proc = lathe("eval", path, self.fx["small"], "--json", "--device", "cpu", timeout=60)
        self.assertEqual(proc.returncode, 0, f"{what}: {path} does not load:\n{proc.stderr}")

    def test_kill_mid_training_with_checkpoints(self):
        out, before = self.earlier("model.h5", self.fx["earlier_model"])
        checkpoint = self.path("model.checkpoint.h5")
        proc = self.train(out, "--epochs", 100000, "--patience", 0, "--checkpoint-every", 1)
        try:
            # Running, with at least one checkpoint in place; then killed while the next is written.
            limit = time.monotonic() + 90
            while proc.poll() is None and not os.path.exists(checkpoint) and time.monotonic() < limit:
                time.sleep(0.005)
            self.assertIsNone(proc.poll(), f"training ended early:\n{self.stderr()}")
            self.assertTrue(os.path.exists(checkpoint), "no checkpoint within 90 s")
            killed = self.kill_when(proc, lambda: bool(temporaries(checkpoint)), 20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertTrue(killed, f"training ended before it was killed:\n{self.stderr()}")
        self.assertSameBytes(out, before, "the earlier model at --out was changed")
        self.assertFalse([t for t in temporaries(out) if "checkpoint" not in t],
                         "a temporary model file exists although training never finished")
        # The checkpoint at its final path is a complete one (the last, or the one before it).
        self.assertCompleteModel(checkpoint, "checkpoint after SIGKILL")
        with h5py.File(checkpoint, "r") as f:
            self.assertIn("checkpoint", f.attrs)
            state = json.loads(f.attrs["checkpoint"])
            self.assertGreaterEqual(state["next_epoch"], 2)

    def test_kill_mid_training_without_checkpoints(self):
        out, before = self.earlier("model.h5", self.fx["earlier_model"])
        proc = self.train(out, "--epochs", 100000, "--patience", 0)
        try:
            killed = self.kill_when(proc, lambda: False, 2.5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertTrue(killed, f"training ended before it was killed:\n{self.stderr()}")
        self.assertSameBytes(out, before, "the earlier model at --out was changed")
        self.assertEqual(os.listdir(self.dir).count("model.checkpoint.h5"), 0)

    def test_kill_while_the_model_is_written(self):
        # Killed as soon as the model's temporary file appears: the write is under way.
        caught = 0
        for attempt in range(3):
            out, before = self.earlier("model.h5", self.fx["earlier_model"])
            proc = self.train(out, "--epochs", 2, "--patience", 0)
            try:
                killed = self.kill_when(proc, lambda: bool(temporaries(out)), 90)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if killed:
                caught += 1
                self.assertIntactOrComplete(out, before, lambda p: self.assertCompleteModel(p, "model"),
                                            "SIGKILL while the model was written")
            else:
                self.assertEqual(proc.returncode, 0, self.stderr())
                self.assertCompleteModel(out, "model written before the kill")
            for t in temporaries(out):
                os.remove(t)
        self.assertGreater(caught, 0, "never killed while the model was being written")


class KillScoreExportImportTest(Killed):
    @classmethod
    def setUpClass(cls):
        fx = fixture()
        cls.work = tempfile.mkdtemp(prefix="lathe-faults-kill-")
        cls.big = os.path.join(cls.work, "big.h5")
        checked("synth", "--task", "binary", "--rows", 1000000, "--features", 10, "--categorical", 1, "--seed", 3,
                "--out", cls.big, "--quiet")
        cls.big_csv = os.path.join(cls.work, "big.csv")
        rng = np.random.default_rng(5)
        rows = 400000
        values = rng.normal(size=(rows, 6)).round(5)
        colors = np.array(["red", "green", "blue", "cyan"])[rng.integers(0, 4, rows)]
        with open(cls.big_csv, "w") as f:
            f.write("a,b,c,d,e,g,color\n")
            lines = [",".join(map(str, v)) for v in values.tolist()]
            f.write("".join(f"{line},{color}\n" for line, color in zip(lines, colors)))
        # The earlier outputs and the complete outputs a run that is not killed writes.
        cls.earlier_csv = os.path.join(cls.work, "earlier.csv")
        checked("score", fx["earlier_model"], fx["small"], "--out", cls.earlier_csv, "--device", "cpu", "--quiet")
        cls.earlier_h5 = os.path.join(cls.work, "earlier_scores.h5")
        checked("score", fx["earlier_model"], fx["small"], "--out", cls.earlier_h5, "--device", "cpu", "--quiet")
        cls.earlier_onnx = os.path.join(cls.work, "earlier.onnx")
        checked("export", fx["earlier_model"], "--onnx", cls.earlier_onnx, "--quiet")
        cls.reference_onnx = os.path.join(cls.work, "reference.onnx")
        checked("export", fx["model"], "--onnx", cls.reference_onnx, "--quiet")
        cls.earlier_import = os.path.join(cls.work, "earlier_import.h5")
        checked("import", fx["csv"], cls.earlier_import, "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def inputs(self):
        return super().inputs() + [self.big, self.big_csv]

    def kill_trials(self, name, earlier, args_for, delays, complete, after_start=False):
        """Runs `lathe args_for(out)` once per delay, killed `delay` seconds after its temporary file
        appears (after_start: `delay` seconds after the start); the final path must then hold the
        earlier file unchanged. A run that finished before the kill must have written a complete
        file (checked by complete(out)). Returns the kills."""
        kills = 0
        for delay in delays:
            out, before = self.earlier(name, earlier)
            proc = self.start(*args_for(out))
            try:
                if after_start:
                    killed = self.kill_when(proc, lambda: False, delay)
                else:
                    killed = self.kill_when(proc, lambda: bool(temporaries(out)), 90, delay)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            with self.subTest(delay=delay, killed=killed):
                if killed:
                    kills += 1
                    moment = "after the start" if after_start else "into the write"
                    self.assertIntactOrComplete(out, before, complete, f"SIGKILL {delay} s {moment}")
                else:
                    self.assertEqual(proc.returncode, 0, self.stderr())
                    complete(out)
            for t in temporaries(out):
                os.remove(t)
        return kills

    def test_kill_while_scoring_csv(self):
        def complete(out):
            with open(out) as f:
                self.assertEqual(sum(1 for _ in f), 1000001)
        kills = self.kill_trials("scores.csv", self.earlier_csv,
                                 lambda out: ["score", self.fx["model"], self.big, "--out", out, "--device", "cpu",
                                              "--quiet"], [0.0, 0.05, 0.3], complete)
        self.assertGreater(kills, 0, "scoring always ended before the kill")

    def test_kill_while_scoring_h5(self):
        def complete(out):
            with h5py.File(out, "r") as f:
                self.assertEqual(len(f["probability"]), 1000000)
        kills = self.kill_trials("scores.h5", self.earlier_h5,
                                 lambda out: ["score", self.fx["model"], self.big, "--out", out, "--device", "cpu",
                                              "--quiet"], [0.0, 0.2], complete)
        self.assertGreater(kills, 0, "scoring always ended before the kill")

    def test_kill_while_exporting(self):
        reference = read_bytes(self.reference_onnx)

        def complete(out):
            self.assertSameBytes(out, reference, "a finished export differs from the reference")
        # Killed as soon as the temporary file appears, and (kill_when with a deadline only) at a
        # sweep of moments from the start.
        kills = self.kill_trials("model.onnx", self.earlier_onnx,
                                 lambda out: ["export", self.fx["model"], "--onnx", out, "--quiet"],
                                 [0.0, 0.0, 0.0], complete)
        kills += self.kill_trials("model.onnx", self.earlier_onnx,
                                  lambda out: ["export", self.fx["model"], "--onnx", out, "--quiet"],
                                  [0.0, 0.01, 0.02, 0.04, 0.06, 0.09, 0.13], complete, after_start=True)
        self.assertGreater(kills, 0, "exporting always ended before the kill")

    def test_kill_while_importing(self):
        def complete(out):
            with h5py.File(out, "r") as f:
                self.assertEqual(len(f["a"]), 400000)
        kills = self.kill_trials("imported.h5", self.earlier_import,
                                 lambda out: ["import", self.big_csv, out, "--quiet"], [0.0, 0.05, 0.15], complete)
        # Also killed during the first pass (before any temporary file exists).
        out, before = self.earlier("imported.h5", self.earlier_import)
        proc = self.start("import", self.big_csv, out, "--quiet")
        try:
            killed = self.kill_when(proc, lambda: False, 0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if killed:
            kills += 1
            self.assertIntactOrComplete(out, before, complete, "SIGKILL 0.1 s after the start")
        self.assertGreater(kills, 0, "importing always ended before the kill")


# ------------------------------------------------------------------------------------------------
# Disk full


class DiskFull(Case):
    """Each command writing an output that does not fit: exit 1 with an error naming the output,
    the earlier file at the final path byte-identical, no temporary file left behind."""

    def commands(self, folder):
        """(name, earlier file, args for an output path, the output's name): every writing command."""
        fx = self.fx
        return [
            ("train", fx["earlier_model"],
             lambda out: ["train", fx["small"], "--label", "label", "--task", "binary", "--epochs", 2, "--device",
                          "cpu", "--quiet", "--out", out], "model.h5"),
            ("train checkpoint", fx["earlier_model"],
             lambda out: ["train", fx["small"], "--label", "label", "--task", "binary", "--epochs", 2, "--device",
                          "cpu", "--quiet", "--checkpoint-every", 1, "--checkpoint", out,
                          "--out", os.path.join(folder, "unused-model.h5")], "model.checkpoint.h5"),
            ("score csv", fx["earlier_scores_csv"],
             lambda out: ["score", fx["model"], fx["small"], "--out", out, "--device", "cpu", "--quiet"],
             "scores.csv"),
            ("score h5", fx["earlier_scores_h5"],
             lambda out: ["score", fx["model"], fx["small"], "--out", out, "--device", "cpu", "--quiet"],
             "scores.h5"),
            ("export", fx["earlier_onnx"], lambda out: ["export", fx["model"], "--onnx", out, "--quiet"], "model.onnx"),
            ("import", fx["earlier_table"], lambda out: ["import", fx["csv"], out, "--quiet"], "imported.h5"),
        ]

    def output_size(self, args_for, name):
        """The size of the complete output (written without any limit)."""
        folder = tempfile.mkdtemp(dir=self.dir)
        out = os.path.join(folder, name)
        checked(*args_for(out))
        return os.path.getsize(out)

    def assertFailedCleanly(self, proc, what, out, before):
        self.assertError(proc, what, out)
        # The error is one line and names the output, never the temporary it was written under.
        errors = [line for line in proc.stderr.splitlines() if "error" in line]
        self.assertEqual(len(errors), 1, f"{what}: expected one error line:\n{proc.stderr}")
        self.assertIn(out, errors[0], f"{what}: the error does not name {out}")
        self.assertNotIn(".tmp-", proc.stderr, f"{what}: the error names the temporary file")
        # The write failed: the output was not refused up front as a file of another kind.
        self.assertNotIn("it is left as it is", proc.stderr, f"{what}: refused before any write")
        self.assertSameBytes(out, before, f"{what}: the earlier file at {out} was changed")
        self.assertEqual(temporaries(out), [], f"{what}: left a temporary file")


class FileSizeLimitTest(DiskFull):
    def test_file_size_limit(self):
        for what, earlier, args_for, name in self.commands(self.dir):
            with self.subTest(command=what):
                size = self.output_size(args_for, name)
                for limit in sorted({size // 2, min(4096, size - 1)}):
                    out, before = self.earlier(name, earlier)
                    proc = lathe(*args_for(out), cwd=self.dir, fsize_limit=limit)
                    self.assertFailedCleanly(proc, f"{what} with RLIMIT_FSIZE {limit} (output {size} bytes)", out,
                                             before)


class TmpfsFullTest(DiskFull):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        self.mount = self.path("tmpfs")
        os.mkdir(self.mount)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", self.mount], capture_output=True,
                              text=True, timeout=30)
        if proc.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {proc.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", self.mount], timeout=30, check=True)  # before the rmtree

    def free(self):
        s = os.statvfs(self.mount)
        return s.f_bavail * s.f_frsize

    def test_tmpfs_full(self):
        for what, earlier, args_for, name in self.commands(self.mount):
            with self.subTest(command=what):
                for path in os.listdir(self.mount):
                    os.remove(os.path.join(self.mount, path))
                size = self.output_size(args_for, name)
                out = os.path.join(self.mount, name)
                shutil.copyfile(earlier, out)
                before = read_bytes(out)
                # Fill the file system until less than half the output fits.
                filler = os.path.join(self.mount, "filler")
                keep = (size // 2) // 4096 * 4096
                with open(filler, "wb") as f:
                    f.write(b"\0" * max(self.free() - keep, 0))
                self.assertLess(self.free(), size, "the tmpfs still has room for the output")
                free = self.free()
                proc = lathe(*args_for(out), cwd=self.dir)
                self.assertFailedCleanly(proc, f"{what} on a full tmpfs (output {size} bytes, {free} free)", out,
                                         before)
                self.assertEqual(self.free(), free, f"{what}: the space of the failed write was not given back")
                for path in os.listdir(self.mount):
                    os.remove(os.path.join(self.mount, path))


    def test_a_wide_import_a_few_pages_short_fails_or_is_complete(self):
        # A short, wide table's import (20 rows x 2,000 columns) onto a tmpfs a few pages short of
        # its output. HDF5 writes a dataset's cached chunks when the dataset is closed, and drops a
        # chunk whose write failed from its cache; the writer closed its datasets unchecked, so
        # nothing wrote those chunks again. With --compression 0 every column went through that
        # cache, and an import 3 to 61 pages short exited 0 with 80 to 1,206 of its columns read
        # back as zeros: the metadata of 2,000 columns had been written before the disk filled, so
        # no later write failed. (With 600 columns the metadata was written last, failed too, and the
        # error was reported by luck.)
        rows, columns = 20, 2000
        values = np.random.default_rng(5).normal(size=(rows, columns)).round(3)
        csv = self.path("wide.csv")
        with open(csv, "w") as f:
            f.write(",".join(f"c{i}" for i in range(columns)) + "\n")
            f.writelines(",".join(map(str, row)) + "\n" for row in values.tolist())

        def args_for(compression):
            return lambda out: ["import", csv, out, "--quiet", "--compression", compression]
        sizes = {compression: self.output_size(args_for(compression), "wide.h5") for compression in ("0", "4")}
        # A tmpfs of its own: the output (5 MB before the fix) does not fit the class's 2 MB.
        mount = self.path("wide-tmpfs")
        os.mkdir(mount)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={max(sizes.values()) // 1024 + 1024}k", "tmpfs", mount],
                       capture_output=True, text=True, timeout=30, check=True)
        self.addCleanup(subprocess.run, ["umount", mount], timeout=30, check=True)

        def free():
            s = os.statvfs(mount)
            return s.f_bavail * s.f_frsize
        for compression, size in sizes.items():
            pages = (size + 4095) // 4096
            for short in (4, 16, 48):
                what = f"import --compression {compression} of {columns} columns, {short} pages short"
                with self.subTest(compression=compression, pages_short=short):
                    for path in os.listdir(mount):
                        os.remove(os.path.join(mount, path))
                    out = os.path.join(mount, "wide.h5")
                    shutil.copyfile(self.fx["earlier_table"], out)
                    before = read_bytes(out)
                    with open(os.path.join(mount, "filler"), "wb") as f:
                        f.write(b"\0" * max(free() - (pages - short) * 4096, 0))
                    proc = lathe(*args_for(compression)(out), cwd=self.dir)
                    if proc.returncode == 0:  # it fitted after all: then every value is there
                        with h5py.File(out, "r") as f:
                            differ = [i for i in range(columns) if not np.array_equal(f[f"c{i}"][:], values[:, i])]
                        if differ:
                            self.fail(f"{what}: exit 0, but {len(differ)} of {columns} columns differ from the CSV "
                                      f"(from column c{differ[0]}): a write the full disk refused went unreported")
                    else:
                        self.assertFailedCleanly(proc, what, out, before)

    def test_a_metrics_log_that_cannot_be_written_stops_before_the_model_is_saved(self):
        # The log, on the full tmpfs, failed only when it was closed: after the model had replaced
        # the earlier one, and without a reason.
        model = self.path("m.h5")
        shutil.copyfile(self.fx["earlier_model"], model)  # a model: --out replaces no other kind of file
        earlier = read_bytes(model)
        with open(os.path.join(self.mount, "filler"), "wb") as f:
            f.write(b"\0" * self.free())
        log = os.path.join(self.mount, "log.jsonl")
        proc = lathe("train", self.fx["small"], "--label", "label", "--task", "binary", "--out", model, "--epochs", "2",
                     "--metrics-log", log, "--device", "cpu", "--quiet", cwd=self.dir)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"--metrics-log: {log}: cannot write the log of epoch 1: No space left on device", proc.stderr)
        self.assertEqual(read_bytes(model), earlier)
        self.assertEqual(sorted(os.listdir(self.mount)), ["filler"])


# ------------------------------------------------------------------------------------------------
# NaN where training had none


class ImputeUnseenMissingTest(Case):
    def test_nan_in_column_without_missing_in_training(self):
        fx = self.fx
        with h5py.File(fx["model"], "r") as f:
            preparation = f.attrs["preparation"]
            preparation = json.loads(preparation.decode() if isinstance(preparation, bytes) else preparation)
        numeric = {c["name"]: c for c in preparation["numeric"]}
        self.assertFalse(numeric["f1"]["has_missing"])
        self.assertFalse(numeric["f4"]["has_missing"])
        nan_rows = {"f1": [0, 7, *range(100, 150), 19999], "f4": [3, 7, 5000]}
        with_nan, filled = self.path("with_nan.h5"), self.path("filled.h5")
        for path, value in [(with_nan, None), (filled, "fill")]:
            shutil.copyfile(fx["small"], path)
            with h5py.File(path, "r+") as f:
                for column, rows in nan_rows.items():
                    values = f[column][:]
                    values[rows] = np.nan if value is None else np.float32(numeric[column]["fill"])
                    f[column][:] = values
        summaries, scores = {}, {}
        for name, path in [("original", fx["small"]), ("nan", with_nan), ("filled", filled)]:
            out = self.path(name + ".csv")
            proc = checked("score", fx["model"], path, "--out", out, "--device", "cpu", "--quiet")
            summaries[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            with open(out) as f:
                scores[name] = f.read().splitlines()
        expected = {column: len(rows) for column, rows in nan_rows.items()}
        self.assertEqual(summaries["nan"]["imputed"], expected)
        self.assertEqual(summaries["nan"]["files"][0]["imputed"], expected)
        self.assertEqual(summaries["filled"]["imputed"], {})
        self.assertEqual(summaries["original"]["imputed"], {})
        notes = " ".join(summaries["nan"]["notes"])
        for column in nan_rows:
            self.assertRegex(notes, f"'{column}' had no missing values in training; {expected[column]} missing")
        # Imputed as trained: a NaN row scores exactly as the row holding the training fill value.
        differ = [r for r, (a, b) in enumerate(zip(scores["nan"], scores["filled"])) if a != b]
        self.assertEqual(differ[:5], [], "rows whose NaN scored differently from the training fill value")
        changed = {r for rows in nan_rows.values() for r in rows}
        for r, (a, b) in enumerate(zip(scores["original"][1:], scores["nan"][1:])):
            if r not in changed:
                self.assertEqual(a, b, f"row {r}")
        self.assertEqual(len(scores["nan"]), 20001)


if __name__ == "__main__":
    unittest.main()
