"""Lathe in its operating environment (QA pass 8):

- every output path is checked before anything is read or trained: a folder lathe may not write
  in, and a file name that fits the system's limit while its temporary name (".NAME.tmp-PID-N")
  does not, are refused at once, for every command that writes;
- an empty output path (an unset shell variable) is a usage error before any work;
- a failed write to stdout (`> /dev/full`) is an error, exit 1, instead of a lost result;
- SIGPIPE (a reader of stderr that went away) removes the temporaries, as SIGTERM does;
- a closed stdin, stdout or stderr is opened on /dev/null, so progress never lands in an output;
- an input locked by an HDF5 writer, or one lathe may not read, is reported as such;
- replacing an output keeps that file's permission bits;
- `lathe train` draws a live bar on a terminal and prints plain epoch lines otherwise;
- a missing --resume or --init-model file names its option, a bad TMPDIR names TMPDIR, and an
  option given twice says so in plain words."""
import fcntl
import glob
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import h5py

from lathe_run import LATHE, checked, digest
from lathe_run import attempt as lathe  # never raises: these tests expect failures

TIMEOUT = 300  # seconds, for any one lathe process
TRAIN = ["--task", "binary", "--label", "label", "--device", "cpu"]


def as_nobody():
    """In the child before exec: run as the user nobody (the tests that use it run as root)."""
    os.setgid(65534)
    os.setuid(65534)


class OperationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-operations-")
        os.chmod(cls.dir, 0o755)  # another user may read the inputs (the permission tests)
        cls.data = os.path.join(cls.dir, "d.h5")
        cls.model = os.path.join(cls.dir, "m.h5")
        checked("synth", "--task", "binary", "--rows", 2000, "--features", 4, "--out", cls.data, "--quiet")
        checked("train", cls.data, *TRAIN, "--out", cls.model, "--epochs", 2, "--quiet")
        cls.ragged = os.path.join(cls.dir, "ragged.csv")
        with open(cls.ragged, "w") as f:
            f.write("a,b\n1,2\n3\n")
        for path in (cls.data, cls.model, cls.ragged):
            os.chmod(path, 0o644)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="out-", dir=self.dir)
        os.chmod(self.work, 0o755)
        self.addCleanup(shutil.rmtree, self.work, True)

    def path(self, name):
        return os.path.join(self.work, name)

    # --- finding 1: every output checked up front -------------------------------------------------

    def writers(self, out):
        """Each command that writes, with `out` as one of its outputs, and an input error it would
        meet first if the output were checked only when it is written."""
        ok = self.path("ok.h5")
        return {
            "train --out": ["train", self.data, *TRAIN[:2], "--label", "nope", "--device", "cpu", "--out", out],
            "train --metrics-log": ["train", self.data, "--task", "binary", "--label", "nope", "--device", "cpu",
                                    "--out", ok, "--metrics-log", out],
            "train --checkpoint": ["train", self.data, "--task", "binary", "--label", "nope", "--device", "cpu",
                                   "--out", ok, "--checkpoint-every", "1", "--checkpoint", out],
            "prepare": ["prepare", self.data, out, "--label", "nope", "--device", "cpu"],
            "report": ["report", self.model, "--eval", self.ragged, "--out", out, "--device", "cpu"],
            "import": ["import", self.ragged, out],
            "synth": ["synth", "--task", "binary", "--rows", "100", "--features", "2", "--out", out],
            "score": ["score", self.model, self.ragged, "--out", out],
            "export": ["export", self.model, "--onnx", out],
        }

    def test_name_too_long_for_the_temporary_is_refused_before_any_work(self):
        # 251 bytes: a valid name, but ".NAME.tmp-PID-N" is over the limit of 255.
        out = self.path("m" * 248 + ".h5")
        for what, command in self.writers(out).items():
            with self.subTest(what):
                proc = lathe(*command, timeout=TIMEOUT)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn("the file name is too long", proc.stderr)
                self.assertIn("give a name of at most", proc.stderr)
                self.assertNotIn("nope", proc.stderr)  # the label was not looked for
                self.assertNotIn("line", proc.stderr)  # the CSV was not read
                self.assertNotIn("epoch", proc.stderr)
                self.assertEqual(sorted(os.listdir(self.work)), [])

    @unittest.skipUnless(os.geteuid() == 0, "needs root, to run lathe as a user who may not write the folder")
    def test_unwritable_folder_is_refused_before_any_work(self):
        os.chmod(self.work, 0o777)  # the other outputs (train's --out beside a --metrics-log) may be written
        locked = self.path("locked")
        os.mkdir(locked, 0o755)  # root's: nobody may read it but not write in it
        for what, command in self.writers(os.path.join(locked, "out.h5")).items():
            with self.subTest(what):
                proc = subprocess.run([LATHE, *command], capture_output=True, text=True, timeout=TIMEOUT,
                                      preexec_fn=as_nobody, cwd=self.work)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn(f"cannot write in the folder '{locked}': Permission denied", proc.stderr)
                self.assertNotIn("nope", proc.stderr)
                self.assertNotIn("line", proc.stderr)
                self.assertEqual(os.listdir(locked), [])

    @unittest.skipUnless(os.geteuid() == 0, "needs root, to run lathe as a user who may not write the file")
    def test_a_file_its_user_may_not_write_is_not_replaced(self):
        # The rename that replaces an output needs only the folder's permission: a file its user
        # had write-protected (chmod a-w), or another user's, was replaced where the shell's `>`
        # fails. Refused before any work, the file as it was.
        os.chmod(self.work, 0o777)  # nobody may write in the folder, and so rename over any file
        out = self.path("protected.h5")
        for what, command in self.writers(out).items():
            for owner, mode in [(65534, 0o444), (0, 0o644)]:  # nobody's own, read-only; root's
                with self.subTest(what, owner=owner, mode=oct(mode)):
                    with open(out, "wb") as f:
                        f.write(b"kept")
                    os.chown(out, owner, owner)
                    os.chmod(out, mode)
                    proc = subprocess.run([LATHE, *command], capture_output=True, text=True, timeout=TIMEOUT,
                                          preexec_fn=as_nobody, cwd=self.work)
                    self.assertEqual(proc.returncode, 1, proc.stderr)
                    self.assertIn(f"{out}: the file exists and may not be written (Permission denied", proc.stderr)
                    self.assertIn("chmod u+w", proc.stderr)
                    self.assertNotIn("nope", proc.stderr)  # refused before the label was looked for
                    with open(out, "rb") as f:
                        self.assertEqual(f.read(), b"kept")
                    os.remove(out)
        # Its own writable file (an earlier table: synth replaces no other kind of file) is replaced
        # as before.
        checked("synth", "--task", "binary", "--rows", 50, "--features", 2, "--out", out, "--quiet")
        earlier = digest(out)
        os.chown(out, 65534, 65534)
        proc = subprocess.run([LATHE, "synth", "--task", "binary", "--rows", "100", "--features", "2", "--out", out,
                               "--quiet"], capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=as_nobody,
                              cwd=self.work)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotEqual(digest(out), earlier)

    # --- finding 5: empty output paths ------------------------------------------------------------

    def test_empty_output_path_is_a_usage_error(self):
        out = self.path("x.h5")
        commands = {
            "score": ["score", self.model, self.data, "--out", ""],
            "import": ["import", self.ragged, ""],
            "export": ["export", self.model, "--onnx", ""],
            "report": ["report", self.model, "--out", ""],
            "prepare": ["prepare", self.data, ""],
            "synth": ["synth", "--task", "binary", "--rows", "100", "--features", "2", "--out", ""],
            "train --metrics-log": ["train", self.data, *TRAIN, "--out", out, "--metrics-log", ""],
            "train --checkpoint": ["train", self.data, *TRAIN, "--out", out, "--checkpoint-every", "1",
                                   "--checkpoint", ""],
        }
        for what, command in commands.items():
            with self.subTest(what):
                proc = lathe(*command, timeout=TIMEOUT)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn("is empty", proc.stderr)
                self.assertNotIn("epoch", proc.stderr)
                self.assertEqual(os.listdir(self.work), [])

    def test_empty_input_path_is_a_usage_error(self):
        # An empty value read as the option left out: `--init-model "$PREV"` with PREV unset trained a
        # new model from scratch (no parent recorded), `prepare --from ""` fitted a preparation on the
        # new data, `report --eval ""` left the evaluation out; each exited 0.
        out = self.path("x.h5")
        commands = {
            "train --init-model": ["train", self.data, *TRAIN, "--out", out, "--init-model", ""],
            "train --resume": ["train", self.data, *TRAIN, "--out", out, "--resume", ""],
            "train --valid": ["train", self.data, *TRAIN, "--out", out, "--valid", ""],
            "train --config": ["train", self.data, *TRAIN, "--out", out, "--config", ""],
            "prepare --from": ["prepare", self.data, out, "--from", ""],
            "report --eval": ["report", self.model, "--out", self.path("r.html"), "--eval", ""],
            "report --drift": ["report", self.model, "--out", self.path("r.html"), "--drift", ""],
        }
        for what, command in commands.items():
            with self.subTest(what):
                proc = lathe(*command, timeout=TIMEOUT)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(what.split()[-1] + " is empty (an unset shell variable?)", proc.stderr)
                self.assertNotIn("epoch", proc.stderr)
                self.assertEqual(os.listdir(self.work), [])

    # --- finding 2: stdout that cannot be written -------------------------------------------------

    def test_failed_write_to_stdout_is_an_error(self):
        model = self.path("m.h5")
        commands = {
            "inspect": ["inspect", self.data, "--json"],
            "train": ["train", self.data, *TRAIN, "--out", model, "--epochs", "1", "--quiet"],
            # Longer than stdio's buffer: they fail in mid-write, and the reason is asked for again.
            "help": ["train", "--help"],
            "drift": ["drift", model, self.data, "--quiet"],
            # Its own error names stdout: one line, not a second one from the end of the run.
            "score to stdout": ["score", model, self.data, "--out", "-", "--quiet"],
        }
        for what, command in commands.items():
            with self.subTest(what):
                with open("/dev/full", "w") as full:
                    proc = subprocess.run([LATHE, *command], stdout=full, stderr=subprocess.PIPE, text=True,
                                          timeout=TIMEOUT)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                errors = [line for line in proc.stderr.splitlines() if line.startswith("lathe: error:")]
                self.assertEqual(len(errors), 1, proc.stderr)
                self.assertIn("stdout: ", errors[0])
                self.assertIn("No space left on device", errors[0])

    def test_an_interrupted_bench_removes_its_scratch_folder(self):
        # Its folder of synthetic files (tens of megabytes) went with neither SIGINT nor SIGTERM.
        scratch = self.path("scratch")
        os.mkdir(scratch)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signal=sig.name):
                proc = subprocess.Popen([LATHE, "bench", "--rows", "2000000"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": scratch})
                try:
                    # Once its files are being written: a folder holding something.
                    deadline = time.monotonic() + TIMEOUT
                    while time.monotonic() < deadline and proc.poll() is None:
                        if any(os.listdir(os.path.join(scratch, d)) for d in os.listdir(scratch)):
                            break
                        time.sleep(0.05)
                    self.assertIsNone(proc.poll(), "bench ended before its files were written")
                    proc.send_signal(sig)
                    self.assertEqual(proc.wait(timeout=TIMEOUT), -sig)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                self.assertEqual(os.listdir(scratch), [])

    # --- finding 3: SIGPIPE -----------------------------------------------------------------------

    def test_sigpipe_on_stderr_removes_the_temporaries(self):
        big = self.path("big.h5")
        checked("synth", "--task", "binary", "--rows", 20000, "--features", 8, "--out", big, "--quiet")
        log, out = self.path("log.jsonl"), self.path("pm.h5")
        proc = subprocess.Popen([LATHE, "train", big, *TRAIN, "--out", out, "--metrics-log", log, "--epochs", "200",
                                 "--patience", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            first = proc.stderr.readline()
            self.assertTrue(first, "train printed nothing")
            proc.stderr.close()  # the reader goes away: the next progress line raises SIGPIPE
            proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGPIPE)
        self.assertEqual(glob.glob(self.path(".*.tmp-*")), [])
        self.assertFalse(os.path.exists(log))
        self.assertFalse(os.path.exists(out))

    # --- finding 6: closed standard streams -------------------------------------------------------

    def test_closed_stderr_keeps_progress_out_of_the_outputs(self):
        log, out = self.path("cl.jsonl"), self.path("cl.h5")

        def close_stderr():
            os.close(2)

        proc = subprocess.run([LATHE, "train", self.data, *TRAIN, "--out", out, "--metrics-log", log,
                               "--epochs", "3"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              preexec_fn=close_stderr, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 3, lines)
        for line in lines:
            json.loads(line)  # every line is a JSON record, no progress text between them

    def test_closed_stdout_and_stdin_are_no_error(self):
        def close_stdin_and_stdout():
            os.close(0)
            os.close(1)

        proc = subprocess.run([LATHE, "inspect", self.data, "--json"], stderr=subprocess.PIPE, text=True,
                              preexec_fn=close_stdin_and_stdout, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("error", proc.stderr)
        # Scores meant for stdout alone would vanish: refused.
        proc = subprocess.run([LATHE, "score", self.model, self.data, "--out", "-"], stderr=subprocess.PIPE, text=True,
                              preexec_fn=close_stdin_and_stdout, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--out -: stdout is closed", proc.stderr)

    # --- finding 4: locked and unreadable inputs --------------------------------------------------

    def test_input_locked_by_a_writer_is_named_as_locked(self):
        locked_data, locked_model = self.path("ld.h5"), self.path("lm.h5")
        shutil.copy(self.data, locked_data)
        shutil.copy(self.model, locked_model)
        held = []
        for path in (locked_data, locked_model):
            fd = os.open(path, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)  # as HDF5 (h5py in 'a' or 'r+' mode) locks a file it writes
            held.append(fd)
        try:
            commands = {
                "inspect": (["inspect", locked_data], locked_data),
                "train": (["train", locked_data, *TRAIN, "--out", self.path("m.h5")], locked_data),
                "score": (["score", locked_model, self.data, "--out", self.path("s.csv")], locked_model),
            }
            for what, (command, path) in commands.items():
                with self.subTest(what):
                    proc = lathe(*command, timeout=TIMEOUT)
                    self.assertEqual(proc.returncode, 1, proc.stderr)
                    self.assertIn(f"{path} is locked by another process", proc.stderr)
                    self.assertIn("HDF5_USE_FILE_LOCKING=FALSE", proc.stderr)
                    self.assertNotIn("damaged", proc.stderr)
            proc = subprocess.run([LATHE, "inspect", locked_data], capture_output=True, text=True, timeout=TIMEOUT,
                                  env=dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE"))
            self.assertEqual(proc.returncode, 0, proc.stderr)
        finally:
            for fd in held:
                os.close(fd)

    @unittest.skipUnless(os.geteuid() == 0, "needs root, to run lathe as a user who may not read the file")
    def test_unreadable_input_says_permission_denied(self):
        secret = self.path("secret.h5")
        shutil.copy(self.data, secret)
        os.chmod(secret, 0o600)
        hidden = self.path("hidden")
        os.mkdir(hidden, 0o700)
        behind = os.path.join(hidden, "d.h5")
        shutil.copy(self.data, behind)
        secret_model = self.path("secret_model.h5")
        shutil.copy(self.model, secret_model)
        os.chmod(secret_model, 0o600)
        commands = {
            "inspect unreadable": ["inspect", secret],
            "inspect in an unreadable folder": ["inspect", behind],
            "train unreadable": ["train", secret, *TRAIN, "--out", os.path.join(self.work, "m.h5")],
            "train in an unreadable folder": ["train", behind, *TRAIN, "--out", os.path.join(self.work, "m.h5")],
            "score an unreadable model": ["score", secret_model, self.data, "--out", os.path.join(self.work, "s.csv")],
        }
        for what, command in commands.items():
            with self.subTest(what):
                proc = subprocess.run([LATHE, *command], capture_output=True, text=True, timeout=TIMEOUT,
                                      preexec_fn=as_nobody, cwd=self.work)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn("Permission denied", proc.stderr)
                self.assertNotIn("not an HDF5 file", proc.stderr)
                self.assertNotIn("no such file", proc.stderr)

    # --- finding 8: permissions of a replaced output ----------------------------------------------

    def test_replacing_an_output_keeps_its_permissions(self):
        scores, synthetic = self.path("priv.csv"), self.path("priv.h5")
        # Earlier files of the outputs' own kinds: scores, a table.
        checked("score", self.model, self.data, "--out", scores, "--quiet")
        checked("synth", "--task", "binary", "--rows", 50, "--features", 2, "--out", synthetic, "--quiet")
        os.chmod(scores, 0o600)
        os.chmod(synthetic, 0o640)
        checked("score", self.model, self.data, "--out", scores, "--quiet")
        checked("synth", "--task", "binary", "--rows", 100, "--features", 2, "--out", synthetic, "--quiet")
        self.assertEqual(stat.S_IMODE(os.stat(scores).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(synthetic).st_mode), 0o640)
        # A new file keeps the umask's mode.
        fresh = self.path("fresh.csv")
        old_umask = os.umask(0o022)
        try:
            checked("score", self.model, self.data, "--out", fresh, "--quiet")
        finally:
            os.umask(old_umask)
        self.assertEqual(stat.S_IMODE(os.stat(fresh).st_mode), 0o644)

    # --- finding 9: the live bar of lathe train ---------------------------------------------------

    def train_for_progress(self):
        # 1600 training rows at --batch 8: 200 steps an epoch, so the bar has something to show.
        return [LATHE, "train", self.data, *TRAIN, "--out", self.path("bar.h5"), "--epochs", "3", "--batch", "8",
                "--patience", "0"]

    def test_train_draws_a_live_bar_on_a_terminal(self):
        master, slave = os.openpty()
        try:
            proc = subprocess.Popen(self.train_for_progress(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=slave)
        finally:
            os.close(slave)
        chunks = []
        try:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(master)
            proc.wait(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0)
        text = b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal's own line ends
        self.assertRegex(text, r"\repoch 1/3 \[[#.]{20}\] +\d+%", "no live bar redrawn with \\r")
        # What stays on the screen: each line as its last \r left it.
        shown = [line.split("\r")[-1].rstrip() for line in text.split("\n") if line.split("\r")[-1].strip()]
        shown = [line for line in shown if not line.startswith("train: note:")]  # the float32 note on f2
        # The three epochs, then the refit's (on by default for a small table), each line as it ended.
        self.assertEqual(len(shown), 7, shown)
        for epoch, line in enumerate(shown[:3], start=1):
            self.assertRegex(line, rf"^epoch {epoch}/3  loss [0-9.]+  valid logloss [0-9.]+  \d+ rows/s  eta ")
        self.assertRegex(shown[3], r"^refit: training again on all \d+ rows .* for the 3 epochs the validation rows chose$")
        for epoch, line in enumerate(shown[4:], start=1):
            self.assertRegex(line, rf"^refit epoch {epoch}/3  loss [0-9.]+  \d+ rows/s  eta ")
        # The bar hands each epoch's steps to the model in groups: the same weights, bit for bit.
        terminal_model = self.path("bar_terminal.h5")
        os.replace(self.path("bar.h5"), terminal_model)
        checked(*self.train_for_progress()[1:], "--quiet")
        with h5py.File(terminal_model, "r") as a, h5py.File(self.path("bar.h5"), "r") as b:
            self.assertEqual(a["weights"][()].tobytes(), b["weights"][()].tobytes())
            self.assertEqual(a["bias"][()].tobytes(), b["bias"][()].tobytes())

    def test_train_prints_plain_lines_on_a_pipe(self):
        proc = subprocess.run(self.train_for_progress(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("\r", proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if not line.startswith("train: note:")]
        self.assertEqual(len(lines), 7, lines)
        for epoch, line in enumerate(lines[:3], start=1):
            self.assertRegex(line, rf"^epoch {epoch}/3  loss ")
        self.assertRegex(lines[3], r"^refit: training again on all ")
        for epoch, line in enumerate(lines[4:], start=1):
            self.assertRegex(line, rf"^refit epoch {epoch}/3  loss ")

    # --- finding 10: messages ---------------------------------------------------------------------

    def test_missing_resume_and_init_model_name_their_option(self):
        missing = self.path("nonexist.h5")
        for option in ("--resume", "--init-model"):
            with self.subTest(option):
                proc = lathe("train", self.data, *TRAIN, "--out", self.path("m.h5"), option, missing)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn(f"{option} {missing}: no such file", proc.stderr)

    def test_bad_tmpdir_is_named(self):
        proc = subprocess.run([LATHE, "bench", "train", "--rows", "1000", "--device", "cpu"], capture_output=True,
                              text=True, timeout=TIMEOUT, env=dict(os.environ, TMPDIR="/nonexistent"))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("TMPDIR=/nonexistent", proc.stderr)
        self.assertNotIn("temp_directory_path", proc.stderr)

    def test_option_given_twice_says_so(self):
        proc = lathe("train", self.data, *TRAIN, "--out", self.path("m.h5"), "--epochs", "3", "--epochs", "4")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--epochs is given 2 times; give it once", proc.stderr)
        self.assertNotIn("At Most", proc.stderr)


if __name__ == "__main__":
    unittest.main()
