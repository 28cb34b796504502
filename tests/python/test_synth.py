"""`lathe synth`'s files as h5py sees them: chunk shapes and file sizes."""
import os
import shutil
import tempfile
import unittest

import h5py

from lathe_run import run

FEATURES = 10


class SynthChunksTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-synth-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def synth(self, rows, layout, compression, *extra):
        out = os.path.join(self.dir, f"{layout}-{rows}-{compression}.h5")
        run("synth", "--task", "binary", "--rows", rows, "--features", FEATURES, "--layout", layout,
            "--compression", compression, "--out", out, "--quiet", *extra)
        return out

    def datasets(self, path):
        found = []
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, item: found.append((name, item.shape, item.chunks))
                         if isinstance(item, h5py.Dataset) else None)
        return found

    def test_no_chunk_longer_than_a_small_table(self):
        # `--rows 100 --compression 0` wrote chunks of 65536 rows, stored whole: a file of 2.9 MB
        # for 4.4 KB of values. Every chunk is now at most the table's rows, compressed or not.
        for layout in ("columnar", "matrix"):
            for compression in (0, 1):
                for rows in (1, 100, 5000):
                    path = self.synth(rows, layout, compression)
                    datasets = self.datasets(path)
                    self.assertEqual(len(datasets), FEATURES + 1 if layout == "columnar" else 2)
                    for name, shape, chunks in datasets:
                        self.assertEqual(shape[0], rows, name)
                        self.assertIsNotNone(chunks, name)
                        self.assertEqual(chunks[0], rows, (layout, compression, rows, name))

    def test_an_uncompressed_file_is_about_its_values_bytes(self):
        rows = 5000
        values = rows * (FEATURES + 1) * 4  # float32 features, the label's int32 codes (matrix: float32)
        for layout in ("columnar", "matrix"):
            size = os.path.getsize(self.synth(rows, layout, 0))
            self.assertGreaterEqual(size, values, layout)
            # HDF5's headers and the ground truth's JSON attribute: tens of kilobytes.
            self.assertLess(size, values + (64 << 10), layout)

    def test_a_chunk_shorter_than_the_table_is_kept(self):
        path = self.synth(5000, "columnar", 0, "--chunk-rows", "1024")
        for name, _, chunks in self.datasets(path):
            self.assertEqual(chunks, (1024,), name)
        self.assertLess(os.path.getsize(path), 5120 * (FEATURES + 1) * 4 + (64 << 10))


if __name__ == "__main__":
    unittest.main()
