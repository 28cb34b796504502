"""Running the `lathe` command from the Python end-to-end tests (shared by every test_*.py here)."""
import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

LATHE = os.environ.get("LATHE", "lathe")
SHARED = os.environ.get("LATHE_SHARED_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))


def run(*args, check=True, timeout=900):
    """Runs `lathe ARGS`; with check, a non-zero exit fails the test with lathe's stderr."""
    proc = subprocess.run([LATHE, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"lathe {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def import_frame(df, folder, name, *flags):
    """Writes `df` as FOLDER/NAME.csv and imports it with `lathe import` (and `flags`) to
    FOLDER/NAME.h5, which it returns."""
    csv = os.path.join(folder, name + ".csv")
    df.to_csv(csv, index=False)
    out = os.path.join(folder, name + ".h5")
    run("import", csv, out, "--quiet", *flags)
    return out


class ImportedFramesCase(unittest.TestCase):
    """Tests over a training and a test table made once per class: `frames()` returns the two
    DataFrames, imported to cls.train and cls.test (HDF5) in a temporary folder, cls.dir."""
    prefix = "lathe-"

    @classmethod
    def frames(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix=cls.prefix)
        cls.train_df, cls.test_df = cls.frames()
        cls.train = import_frame(cls.train_df, cls.dir, "train")
        cls.test = import_frame(cls.test_df, cls.dir, "test")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)


def attempt(*args, cwd=None, timeout=120, binary=None):
    """Runs `lathe ARGS` (or another `binary`) and returns the CompletedProcess: never raises on a
    non-zero exit, for tests that expect one."""
    return subprocess.run([binary or LATHE, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def checked(*args, **kwargs):
    """attempt(), failing the test with lathe's stderr on a non-zero exit."""
    proc = attempt(*args, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(f"lathe {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def digest(path):
    """SHA-256 of a file's bytes, to show that a file was left exactly as it was."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def binary_data_and_model(folder, rows, features, epochs):
    """`lathe synth` a binary table of `rows` x `features` into FOLDER/d.h5 and train FOLDER/m.h5 on
    it (CPU, `epochs`); returns the two paths."""
    data = os.path.join(folder, "d.h5")
    model = os.path.join(folder, "m.h5")
    checked("synth", "--task", "binary", "--rows", rows, "--features", features, "--out", data, "--quiet")
    checked("train", data, "--task", "binary", "--label", "label", "--out", model, "--epochs", epochs,
            "--device", "cpu", "--quiet")
    return data, model
