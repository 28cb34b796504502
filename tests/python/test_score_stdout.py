"""`lathe score ... --out -`: the CSV scores on stdout for a pipe, byte for byte what `--out f.csv`
writes, with the JSON summary moved to stderr; `--out -` refused (exit 2) with several inputs or
with `--format h5`; a reader that goes away ends lathe by SIGPIPE with nothing left in the working
folder; a schema mismatch is exit 1 with nothing on stdout."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

import h5py

from lathe_run import LATHE, attempt, binary_data_and_model, checked, read_bytes


class ScoreToStdoutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="lathe-score-stdout-class-")
        cls.data, cls.model = binary_data_and_model(cls.base, 3000, 6, 2)
        # Large enough (several MB of CSV) that lathe is still writing when a reader goes away.
        cls.big = os.path.join(cls.base, "big.h5")
        checked("synth", "--task", "binary", "--rows", 400000, "--features", 6, "--out", cls.big, "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-score-stdout-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def score(self, *args):
        return subprocess.run([LATHE, "score", self.model, *map(str, args), "--device", "cpu"], capture_output=True,
                              cwd=self.dir, timeout=300)

    def assert_folder_empty(self, proc):
        self.assertEqual(sorted(os.listdir(self.dir)), [], proc.stderr)

    def test_stdout_is_the_csv_file_byte_for_byte(self):
        for format_flags in ([], ["--format", "csv"]):
            with self.subTest(format_flags=format_flags):
                file_csv = os.path.join(self.base, "scores.csv")
                checked("score", self.model, self.data, "--out", file_csv, "--block-rows", 700, "--device", "cpu",
                        "--quiet")
                proc = self.score(self.data, "--out", "-", "--block-rows", 700, *format_flags)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertTrue(proc.stdout.startswith(b"probability,predicted_class\n"), proc.stdout[:80])
                self.assertEqual(proc.stdout.count(b"\n"), 3000 + 1)
                self.assertEqual(proc.stdout, read_bytes(file_csv))
                self.assert_folder_empty(proc)

    def test_summary_goes_to_stderr_and_stdout_holds_only_the_csv(self):
        proc = self.score(self.data, "--out", "-")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn(b"{", proc.stdout)
        summary = json.loads(proc.stderr.decode().strip().splitlines()[-1])
        self.assertEqual(summary["rows"], 3000)
        self.assertEqual(summary["format"], "csv")
        self.assertIn("rows/s", proc.stderr.decode())
        quiet = self.score(self.data, "--out", "-", "--quiet")
        self.assertEqual(quiet.returncode, 0, quiet.stderr)
        self.assertEqual(quiet.stdout, proc.stdout)
        self.assertEqual(json.loads(quiet.stderr.decode().strip())["rows"], 3000)
        self.assert_folder_empty(proc)

    def test_several_inputs_or_h5_to_stdout_are_usage_errors(self):
        for args in ([self.data, self.data, "--out", "-"], [self.data, self.big, "--out", "-", "--format", "csv"],
                     [self.data, "--out", "-", "--format", "h5"]):
            with self.subTest(args=args):
                proc = self.score(*args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(b"--out -", proc.stderr)
                self.assertEqual(proc.stdout, b"")
                self.assert_folder_empty(proc)

    def test_a_reader_that_goes_away_ends_lathe_by_sigpipe_leaving_nothing(self):
        args = [LATHE, "score", self.model, self.big, "--out", "-", "--block-rows", 4096, "--device", "cpu", "--quiet"]
        proc = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=self.dir)
        lines = [proc.stdout.readline() for _ in range(2)]
        proc.stdout.close()  # as `| head -2` does
        stderr = proc.stderr.read()
        proc.stderr.close()
        proc.wait(timeout=300)
        self.assertEqual(lines[0], b"probability,predicted_class\n")
        self.assertEqual(proc.returncode, -signal.SIGPIPE, stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), [])

    def test_a_missing_column_is_exit_1_with_nothing_on_stdout(self):
        partial = os.path.join(self.base, "partial.h5")
        with h5py.File(self.data) as src, h5py.File(partial, "w") as dst:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in src.attrs["lathe_columns"]]
            kept = names[1:]
            for name in kept:
                src.copy(src[name], dst, name)
            dst.attrs["lathe_columns"] = kept
        proc = self.score(partial, "--out", "-")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(proc.stdout, b"")
        self.assertIn(names[0].encode(), proc.stderr)
        self.assertIn(b"lathe: error:", proc.stderr)
        self.assert_folder_empty(proc)


if __name__ == "__main__":
    unittest.main()
