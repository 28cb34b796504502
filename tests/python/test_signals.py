"""Interrupted and odd outputs (`lathe synth`, `lathe score`):

- SIGTERM, SIGINT and SIGHUP during a write remove the output's temporary file and still end lathe
  by that signal; the final path is left as it was (absent, or an earlier file byte for byte);
- an output path that is a FIFO or a character device is refused with exit 1 and a message naming
  it, and stays what it was (a rename would have replaced it with a regular file);
- an output path that is a symbolic link is written through: the link stays, its target holds the
  new content; a dangling link is refused.

The interrupted write is a 3,000,000-row synth (many seconds on a 2-core machine); it is signalled
as soon as its temporary file appears."""
import glob
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import h5py

from lathe_run import LATHE, binary_data_and_model, checked, digest
from lathe_run import attempt as lathe  # never raises: these tests expect failures

TIMEOUT = 120  # seconds, for any one lathe process
SIGNALLED_ROWS = 3000000  # enough rows that the write is still going on well after the temporary appears
TERMINATION_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def default_termination_signals():
    """In the child before exec: a test runner started in the background or under nohup may ignore
    these signals, and lathe (rightly) keeps a signal ignored that was ignored when it started."""
    for sig in TERMINATION_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


class SignalTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-signals-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def temporaries(self, name):
        return glob.glob(os.path.join(self.dir, f".{name}.tmp-*"))

    def interrupt_synth(self, sig):
        """Starts a long synth into s.h5, sends `sig` once its temporary exists, and waits for it."""
        proc = subprocess.Popen([LATHE, "synth", "--task", "binary", "--rows", str(SIGNALLED_ROWS), "--features", "40",
                                 "--out", self.path("s.h5"), "--quiet"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=default_termination_signals)
        try:
            deadline = time.monotonic() + TIMEOUT
            while not self.temporaries("s.h5"):
                if proc.poll() is not None:
                    self.fail(f"synth ended ({proc.returncode}) before its temporary file was seen")
                if time.monotonic() > deadline:
                    self.fail("no temporary file appeared")
                time.sleep(0.01)
            proc.send_signal(sig)
            proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        return proc

    def check_signal_removes_temporary(self, sig):
        proc = self.interrupt_synth(sig)
        self.assertEqual(proc.returncode, -sig, f"lathe should end by {sig.name}")
        self.assertEqual(self.temporaries("s.h5"), [])
        self.assertFalse(os.path.exists(self.path("s.h5")))

    def test_sigterm_removes_temporary(self):
        self.check_signal_removes_temporary(signal.SIGTERM)

    def test_sigint_removes_temporary(self):
        self.check_signal_removes_temporary(signal.SIGINT)

    def test_sighup_removes_temporary(self):
        self.check_signal_removes_temporary(signal.SIGHUP)

    def test_signal_leaves_earlier_output_unchanged(self):
        # An earlier table (a file synth may replace: it replaces no file of another kind).
        checked("synth", "--task", "binary", "--rows", 100, "--features", 2, "--out", self.path("s.h5"), "--quiet")
        earlier = digest(self.path("s.h5"))
        proc = self.interrupt_synth(signal.SIGTERM)
        self.assertEqual(proc.returncode, -signal.SIGTERM)
        self.assertEqual(self.temporaries("s.h5"), [])
        self.assertEqual(digest(self.path("s.h5")), earlier)


class SpecialOutputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="lathe-special-outputs-class-")
        cls.data, cls.model = binary_data_and_model(cls.base, rows=500, features=3, epochs=1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-special-outputs-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def check_refused(self, node, is_kind):
        """synth and score into `node` fail, naming it, and leave it the same kind of node."""
        runs = {
            "synth": ("synth", "--task", "binary", "--rows", 100, "--features", 3, "--out", node, "--quiet"),
            "score": ("score", self.model, self.data, "--out", node, "--format", "csv", "--quiet"),
        }
        for command, args in runs.items():
            with self.subTest(command=command):
                proc = lathe(*args)
                self.assertNotEqual(proc.returncode, 0, proc.stderr)
                self.assertIn(node, proc.stderr)
                self.assertIn("not a regular file", proc.stderr)
                self.assertTrue(is_kind(os.lstat(node).st_mode), f"{node} is no longer what it was")
                self.assertEqual(glob.glob(os.path.join(self.dir, ".*.tmp-*")), [])

    def test_fifo_refused(self):
        fifo = self.path("o")
        os.mkfifo(fifo)
        self.check_refused(fifo, stat.S_ISFIFO)

    def test_character_device_refused(self):
        if os.geteuid() != 0:
            self.skipTest("making a device node needs root")
        device = self.path("mynull")
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            self.skipTest("this container may not make device nodes")
        self.check_refused(device, stat.S_ISCHR)

    def test_symlink_written_through(self):
        target = self.path("real.h5")
        shutil.copy(self.data, target)
        earlier = digest(target)
        link = self.path("link")
        os.symlink("real.h5", link)
        checked("synth", "--task", "binary", "--rows", 200, "--features", 4, "--out", link, "--quiet")
        self.assertTrue(os.path.islink(link), "the link was replaced")
        self.assertEqual(os.readlink(link), "real.h5")
        self.assertNotEqual(digest(target), earlier)
        with h5py.File(target, "r") as f:  # the new table: 200 rows and 4 features, not d.h5's 500 and 3
            self.assertEqual(len(f["label"]), 200)
            self.assertIn("f3", f)
        self.assertEqual(glob.glob(os.path.join(self.dir, ".*.tmp-*")), [])

    def test_dangling_symlink_refused(self):
        link = self.path("link")
        os.symlink("missing.h5", link)
        proc = lathe("synth", "--task", "binary", "--rows", 100, "--features", 3, "--out", link, "--quiet")
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(link, proc.stderr)
        self.assertIn("missing.h5", proc.stderr)
        self.assertTrue(os.path.islink(link))
        self.assertFalse(os.path.exists(self.path("missing.h5")))


if __name__ == "__main__":
    unittest.main()
