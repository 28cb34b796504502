"""`lathe eval` streams its data block by block: its memory is the predictions, the labels and a
block or two of input rows, not the prepared table, so that it evaluates a file larger than memory
as `lathe train` (streamed) and `lathe score` do. Measured as the child's peak resident set
(os.wait4) and as a run under a data-segment limit (RLIMIT_DATA) well below the prepared table.

The sizes: 2,000,000 rows x 32 numeric features, a prepared table of 256 MB (32 float32 per row).
Holding it (the path before it streamed) `lathe eval` peaked at 335 MB resident and needed a data
limit between 300 and 350 MB; streamed it peaks at about 70 MB and runs under a 70 MB limit (not
under 50 MB), on 2 threads. The bounds here, half the prepared table resident (128 MB) and a data
limit of 60% of it (154 MB), are about twice what the streamed path needs, and half the other's."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from lathe_run import LATHE, checked

ROWS = 2_000_000
FEATURES = 32
PREPARED_BYTES = ROWS * FEATURES * 4

# Runs a command under a data limit (argv: limit in bytes, 0 for none; stdout file; stderr file;
# the command) and prints its exit code and peak resident set. It runs in an interpreter of its
# own: a child's ru_maxrss counts the memory of the process it was forked from until it execs, and
# the test's interpreter holds numpy, pandas and whatever the other test modules loaded.
RUNNER = r"""
import json, os, resource, subprocess, sys
limit, out, err, command = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
def set_limit():
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
with open(out, "w") as o, open(err, "w") as e:
    proc = subprocess.Popen(command, stdout=o, stderr=e, preexec_fn=set_limit)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({"code": proc.returncode, "peak": usage.ru_maxrss * 1024}))  # ru_maxrss: KiB on Linux
"""


class EvalMemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-eval-memory-")
        cls.data = os.path.join(cls.dir, "big.h5")
        cls.model = os.path.join(cls.dir, "m.h5")
        small = os.path.join(cls.dir, "small.h5")
        # The model is trained on a small table of the same columns: the test is about eval.
        checked("synth", "--task", "regression", "--rows", ROWS, "--features", FEATURES, "--out", cls.data,
                "--quiet", timeout=600)
        checked("synth", "--task", "regression", "--rows", 20000, "--features", FEATURES, "--out", small, "--quiet")
        checked("train", small, "--task", "regression", "--label", "target", "--epochs", 1, "--device", "cpu",
                "--out", cls.model, "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def evaluate(self, data_limit=0):
        """Runs `lathe eval --json` on the big table (2 threads, so that the threads' stacks, which
        count against a data limit, do not grow with the machine) under RLIMIT_DATA = data_limit
        bytes (0: none); returns (exit code, stdout, stderr, peak resident bytes of lathe)."""
        out, err = os.path.join(self.dir, "eval.out"), os.path.join(self.dir, "eval.err")
        env = dict(os.environ, OMP_NUM_THREADS="2")
        runner = subprocess.run([sys.executable, "-c", RUNNER, str(data_limit), out, err, LATHE, "eval", self.model,
                                 self.data, "--json", "--device", "cpu", "--quiet"],
                                capture_output=True, text=True, env=env, timeout=600, check=True)
        result = json.loads(runner.stdout)
        with open(out) as o, open(err) as e:
            return result["code"], o.read(), e.read(), result["peak"]

    def test_eval_holds_a_block_not_the_prepared_table(self):
        code, out, err, peak = self.evaluate()
        self.assertEqual(code, 0, err)
        metrics = json.loads(out)
        self.assertLess(peak, PREPARED_BYTES / 2,
                        f"lathe eval peaked at {peak / 1e6:.0f} MB resident; the prepared table is "
                        f"{PREPARED_BYTES / 1e6:.0f} MB")

        # Under a data-segment limit below the prepared table it gives the same metrics.
        limit = int(0.6 * PREPARED_BYTES)
        code, out, err, _ = self.evaluate(limit)
        self.assertEqual(code, 0, f"lathe eval failed under a data limit of {limit / 1e6:.0f} MB:\n{err}")
        limited = json.loads(out)
        for name in ("rmse", "mae", "r2"):
            self.assertEqual(limited[name], metrics[name], name)


if __name__ == "__main__":
    unittest.main()
