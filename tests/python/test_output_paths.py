"""Outputs never destroy inputs or earlier outputs (`lathe train`, `score`, `export`, `report`,
`prepare`, `import`):

- an output that is the same file as an input (however spelled: ./x, an absolute path, a symlink,
  a hard link) is refused before anything is read or written, with exit 2 (a usage error: the
  command line names one file for two roles) and a message naming the option and both paths; the
  input's bytes are unchanged; so is an output that is another output (`lathe score`'s inputs of one
  name, whose outputs would share a name in the --out folder, too);
- `lathe train --metrics-log` and `--checkpoint` (its {epoch} paths and the default one derived from
  --out included) may not be an input or --out; the metrics log replaces an earlier one only when
  training succeeds;
- temporaries left by processes that no longer exist (a kill -9) are removed by the next write of
  the same final path; those of live processes, and names that only look alike, are not;
- option values are checked up front with the option named: --compression, --block-rows,
  --window-rows, --config given a folder, --out inside a path whose "folder" is a file.

Every subprocess runs with a timeout; the data is small (2000 rows) for a 2-core machine."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from lathe_run import LATHE, binary_data_and_model, checked, digest
from lathe_run import attempt as lathe  # never raises: these tests expect failures

TIMEOUT = 120  # seconds, for any one lathe process


def dead_pid():
    """The PID of a process that has ended (and been reaped), so kill(pid, 0) fails with ESRCH."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class OutputPathTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="lathe-outputs-class-")
        cls.data, cls.model = binary_data_and_model(cls.base, rows=2000, features=5, epochs=2)
        cls.csv = os.path.join(cls.base, "t.csv")
        with open(cls.csv, "w") as f:
            f.write("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(50)))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-outputs-")
        for name in ("d.h5", "m.h5", "t.csv"):
            shutil.copy(os.path.join(self.base, name), self.path(name))
        self.data, self.model, self.csv = self.path("d.h5"), self.path("m.h5"), self.path("t.csv")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def train_args(self, *flags, out="m2.h5"):
        return ["train", self.data, "--task", "binary", "--label", "label", "--out", self.path(out), "--epochs", 2,
                "--device", "cpu", "--quiet", *flags]

    def assertRefused(self, args, names, kept, cwd=None, code=1):
        """`lathe ARGS` exits `code` (1, or 2 for a usage error), its message holds every one of
        `names`, and every file in `kept` has the bytes it had before; no temporary file is left in
        the test folder."""
        before = {p: digest(p) for p in kept}
        files_before = set(os.listdir(self.dir))
        proc = lathe(*args, cwd=cwd)
        self.assertEqual(proc.returncode, code, f"{args}: {proc.stderr}")
        for name in names:
            self.assertIn(name, proc.stderr, args)
        for p, d in before.items():
            self.assertEqual(digest(p), d, f"{p} changed by {args}")
        self.assertEqual(set(os.listdir(self.dir)), files_before, f"files appeared or vanished: {args}")
        return proc

    # --- 1. the metrics log -------------------------------------------------------------------------

    def test_metrics_log_that_is_an_input_or_the_model_is_refused(self):
        config = self.path("c.toml")
        with open(config, "w") as f:
            f.write("epochs = 2\n")
        valid = self.path("v.h5")
        shutil.copy(self.data, valid)
        init = self.path("init.h5")
        shutil.copy(self.model, init)
        cases = [
            ([], self.data, "d.h5"),
            (["--valid", valid], valid, "v.h5"),
            (["--init-model", init], init, "init.h5"),
            (["--config", config], config, "c.toml"),
        ]
        for flags, target, name in cases:
            with self.subTest(name=name):
                proc = self.assertRefused(self.train_args(*flags, "--metrics-log", target), ["--metrics-log", name],
                                          [self.data, target], code=2)
                self.assertIn("elsewhere", proc.stderr)
        # The earlier model given as both --out and --metrics-log.
        self.assertRefused(self.train_args("--metrics-log", self.model, out="m.h5"), ["--metrics-log", "--out", "m.h5"],
                           [self.model, self.data], code=2)

    def test_metrics_log_spelled_differently_is_still_the_data(self):
        os.symlink(self.data, self.path("link.h5"))
        os.link(self.data, self.path("hard.h5"))
        for spelling in ["./d.h5", self.data, "link.h5", "hard.h5", os.path.join("..", os.path.basename(self.dir), "d.h5")]:
            with self.subTest(spelling=spelling):
                args = ["train", "d.h5", "--task", "binary", "--label", "label", "--out", "m2.h5", "--epochs", 2,
                        "--device", "cpu", "--quiet", "--metrics-log", spelling]
                self.assertRefused(args, ["--metrics-log", spelling], [self.data], cwd=self.dir, code=2)

    def test_failed_run_keeps_the_earlier_log_and_model(self):
        log = self.path("log.jsonl")
        with open(log, "w") as f:
            f.write('{"epoch": 1, "earlier": true}\n')
        # Fails after the start: a label that is not in the data. (A model given as the log is
        # refused before it: test_a_metrics_log_replaces_an_earlier_log_only.)
        for target in (log,):
            with self.subTest(target=os.path.basename(target)):
                before = digest(target)
                proc = lathe("train", self.data, "--task", "binary", "--label", "nosuch", "--out", self.path("m2.h5"),
                             "--device", "cpu", "--quiet", "--metrics-log", target)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn("nosuch", proc.stderr)
                self.assertEqual(digest(target), before)
                self.assertFalse(os.path.exists(self.path("m2.h5")))
                self.assertFalse([n for n in os.listdir(self.dir) if ".tmp-" in n])
        # A run that succeeds replaces the log, one line per epoch, and leaves no temporary.
        checked(*self.train_args("--metrics-log", log))
        with open(log) as f:
            self.assertEqual(len(f.read().splitlines()), 2)
        self.assertFalse([n for n in os.listdir(self.dir) if ".tmp-" in n])

    # --- 2. checkpoints -----------------------------------------------------------------------------

    def test_checkpoint_that_is_an_input_is_refused(self):
        self.assertRefused(self.train_args("--checkpoint-every", 1, "--checkpoint", self.data),
                           ["--checkpoint", "d.h5"], [self.data], code=2)
        self.assertRefused(self.train_args("--checkpoint-every", 1, "--checkpoint", self.model, out="m.h5"),
                           ["--checkpoint", "--out", "m.h5"], [self.data, self.model], code=2)
        # {epoch}: the checkpoint of epoch 2 would be the data file c2.h5.
        shutil.copy(self.data, self.path("c2.h5"))
        self.assertRefused(["train", self.path("c2.h5"), "--task", "binary", "--label", "label", "--out",
                            self.path("m2.h5"), "--epochs", 3, "--device", "cpu", "--quiet",
                            "--checkpoint-every", 1, "--checkpoint", self.path("c{epoch}.h5")],
                           ["--checkpoint", "c2.h5", "epoch 2"], [self.path("c2.h5")], code=2)
        # The default checkpoint path, --out with .checkpoint.h5, would be the data file.
        shutil.copy(self.data, self.path("x.checkpoint.h5"))
        self.assertRefused(["train", self.path("x.checkpoint.h5"), "--task", "binary", "--label", "label", "--out",
                            self.path("x.h5"), "--epochs", 2, "--device", "cpu", "--quiet", "--checkpoint-every", 1],
                           ["checkpoint", "x.checkpoint.h5"], [self.path("x.checkpoint.h5")], code=2)

    def test_checkpoint_may_continue_the_checkpoint_it_resumes(self):
        checkpoint = self.path("m2.checkpoint.h5")
        checked(*self.train_args("--checkpoint-every", 1))
        self.assertTrue(os.path.exists(checkpoint))
        checked("train", self.data, "--task", "binary", "--label", "label", "--out", self.path("m3.h5"),
                "--epochs", 3, "--device", "cpu", "--quiet", "--checkpoint-every", 1, "--checkpoint", checkpoint,
                "--resume", checkpoint)
        self.assertFalse([n for n in os.listdir(self.dir) if ".tmp-" in n])

    # --- 3. outputs equal to inputs ------------------------------------------------------------------

    def test_output_that_is_an_input_is_refused(self):
        report = self.path("r.html")
        cases = [
            (["score", self.model, self.data, "--out", self.model, "--quiet"], ["--out", "m.h5", "model file"]),
            (["score", self.model, self.data, "--out", self.data, "--quiet"], ["--out", "d.h5", "data file"]),
            (["export", self.model, "--onnx", self.model, "--quiet"], ["--onnx", "m.h5", "model file"]),
            (["report", self.model, "--out", self.model, "--quiet"], ["--out", "m.h5", "model file"]),
            (["report", self.model, "--eval", self.data, "--out", self.data, "--quiet"], ["--out", "d.h5", "--eval"]),
            (["report", self.model, "--drift", self.data, "--out", self.data, "--quiet"], ["--out", "d.h5", "--drift"]),
            (["prepare", self.data, self.data, "--label", "label", "--quiet"], ["output", "d.h5", "input file"]),
            (["import", self.csv, self.csv, "--quiet"], ["output", "t.csv", "CSV file"]),
        ]
        for args, names in cases:
            with self.subTest(command=" ".join(map(os.path.basename, args))):
                self.assertRefused(args, names, [self.model, self.data, self.csv], code=2)
        self.assertFalse(os.path.exists(report))

    def test_an_output_never_replaces_a_file_of_another_kind(self):
        # QA: `lathe import new.csv m.h5` replaced the model m.h5 with a table, exit 0; `lathe train
        # --out` onto a table of data replaced the data with a model. Refused (exit 1) before anything
        # is written, naming the file, what it is and the ways on; a file of the output's own kind is
        # still replaced (an earlier model by a model, a table by a table, scores by scores).
        other_model, table = self.path("old_model.h5"), self.path("other.h5")
        shutil.copy(self.model, other_model)
        shutil.copy(self.data, table)
        kept = [self.model, other_model, self.data, table, self.csv]
        ways = "another name, or remove "
        model_cases = [
            (["import", self.csv, self.model, "--quiet"], "the output " + self.model),
            (["prepare", self.data, self.model, "--label", "label", "--quiet"], "the output " + self.model),
            (["synth", "--task", "binary", "--rows", 100, "--features", 2, "--out", self.model, "--quiet"], "--out " + self.model),
            (["score", self.model, self.data, "--out", other_model, "--quiet"], "--out " + other_model),
            (["score", self.model, self.data, "--out", other_model, "--format", "csv", "--quiet"],
             "--out " + other_model),
        ]
        for args, named in model_cases:
            with self.subTest(command=args[0]):
                self.assertRefused(args, [named + " is a model file written by `lathe train`", ways], kept)
        # Scores, a report or an ONNX graph replace no table of data, and the last two no model.
        for args, named in [
            (["score", self.model, self.data, "--out", table, "--quiet"], "--out " + table),
            (["score", self.model, self.data, "--out", table, "--format", "csv", "--quiet"], "--out " + table),
            (["report", self.model, "--out", table], "--out " + table),
            (["export", self.model, "--onnx", table, "--quiet"], "--onnx " + table),
        ]:
            with self.subTest(command=args[0], replaces="table"):
                self.assertRefused(args, [named + " is a table of data", ways], kept)
        for args, named in [
            (["report", self.model, "--out", other_model], "--out " + other_model),
            (["export", self.model, "--onnx", other_model, "--quiet"], "--onnx " + other_model),
        ]:
            with self.subTest(command=args[0], replaces="model"):
                self.assertRefused(args, [named + " is a model file written by `lathe train`", ways], kept)
        self.assertRefused(["train", self.data, "--task", "binary", "--label", "label", "--out", table, "--epochs", 2,
                            "--device", "cpu", "--quiet"],
                           [f"--out {table} is a table of data, which the model would replace", "give --out " + ways +
                            table], kept)
        scores = self.path("s.h5")
        checked("score", self.model, self.data, "--out", scores, "--quiet")
        with self.subTest(train_out="scores"):
            self.assertRefused(self.train_args(out="s.h5"), ["--out " + scores + " holds the scores"], [scores])
        # Scores written as CSV are scores too (holds_scores reads their header).
        scores_csv = self.path("s.csv")
        checked("score", self.model, self.data, "--out", scores_csv, "--quiet")
        with self.subTest(train_out="scores as CSV"):
            self.assertRefused(self.train_args(out="s.csv"), ["--out " + scores_csv + " holds the scores"],
                               [scores_csv])
        checked("score", self.model, self.data, "--out", scores_csv, "--quiet")
        # Files of the output's own kind.
        checked("import", self.csv, table, "--quiet")
        checked("synth", "--task", "binary", "--rows", 100, "--features", 2, "--out", table, "--quiet")
        checked("prepare", self.data, table, "--label", "label", "--quiet")
        checked(*self.train_args(out="old_model.h5"))
        checked("score", self.model, self.data, "--out", scores, "--quiet")
        # An empty file holds nothing to lose (a name made by mktemp).
        open(self.path("empty.h5"), "w").close()
        checked(*self.train_args(out="empty.h5"))

    def test_an_output_replaces_no_file_of_a_kind_lathe_does_not_write(self):
        # QA: every command replaced a file of no kind Lathe writes: `lathe train --out data.csv`
        # put a model in place of the user's data, `lathe import a.csv b.csv` (prepare, synth) HDF5
        # in place of b.csv, `score --out notes.csv` scores in place of a CSV of data, `report --out`
        # and `export --onnx` any non-HDF5 file, and the checkpoints of --checkpoint-every any file
        # at all. Each is refused (exit 1) before anything is read, naming the file and what it is.
        notes, other_csv = self.path("notes.txt"), self.path("b.csv")
        with open(notes, "w") as f:
            f.write("notes to keep\n")
        shutil.copy(self.csv, other_csv)
        kept = [self.model, self.data, self.csv, notes, other_csv]
        not_hdf5 = "(it is not HDF5), which "
        cases = [
            (self.train_args(out="t.csv"), f"--out {self.csv} is not a model file " + not_hdf5 + "the model would",
             "give --out another name, or remove " + self.csv + " first"),
            (["import", self.csv, other_csv, "--quiet"],
             f"the output {other_csv} is not a table of data " + not_hdf5 + "the imported table", other_csv),
            (["prepare", self.data, notes, "--label", "label", "--quiet"],
             f"the output {notes} is not a table of data " + not_hdf5, "remove " + notes),
            (["synth", "--task", "binary", "--rows", 100, "--features", 2, "--out", notes, "--quiet"],
             f"--out {notes} is not a table of data " + not_hdf5, "give --out another name"),
            (["score", self.model, self.data, "--out", self.csv, "--quiet"],
             f"--out {self.csv} holds no scores of `lathe score` (its first line does not end in a prediction",
             "remove " + self.csv),
            (["score", self.model, self.data, "--out", notes, "--quiet"],
             f"--out {notes} holds no scores of `lathe score` " + not_hdf5 + "the scores would", "remove " + notes),
            (["report", self.model, "--out", notes], f"--out {notes} is not a report written by `lathe report`",
             "give --out another name"),
            (["export", self.model, "--onnx", other_csv, "--quiet"],
             f"--onnx {other_csv} is not an ONNX model (it does not read as an ONNX ModelProto)",
             "give --onnx another name, or remove " + other_csv),
            # --checkpoint, named or by default (--out with .checkpoint.h5), given a file of data.
            (self.train_args("--checkpoint-every", 1, "--checkpoint", self.csv),
             f"--checkpoint {self.csv} is not a model file " + not_hdf5 + "the checkpoints would",
             "write the checkpoints elsewhere with --checkpoint, or remove " + self.csv),
            (self.train_args("--checkpoint-every", 1, "--checkpoint", self.path("c{epoch}.txt")),
             f"--checkpoint (epoch 2) {self.path('c2.txt')} is not a model file", "remove " + self.path("c2.txt")),
        ]
        shutil.copy(notes, self.path("c2.txt"))
        kept.append(self.path("c2.txt"))
        for args, what, way in cases:
            with self.subTest(command=" ".join(map(os.path.basename, map(str, args[:3])))):
                self.assertRefused(args, [what, way, "it is left as it is"], kept)
        # The default checkpoint of --out m2.h5, m2.checkpoint.h5: a table of data, then a text file.
        checkpoint = self.path("m2.checkpoint.h5")
        for kind, source in [("is a table of data", self.data), ("is not a model file (it is not HDF5)", notes)]:
            shutil.copy(source, checkpoint)
            with self.subTest(default_checkpoint=kind):
                self.assertRefused(self.train_args("--checkpoint-every", 1),
                                   [f"the checkpoint (--out with .checkpoint.h5) {checkpoint} {kind}",
                                    "write the checkpoints elsewhere with --checkpoint, or remove " + checkpoint],
                                   [checkpoint, self.data])
            self.assertFalse(os.path.exists(self.path("m2.h5")))
        # An earlier checkpoint is replaced, as an earlier model is.
        os.remove(checkpoint)
        checked(*self.train_args("--checkpoint-every", 1))
        checked(*self.train_args("--checkpoint-every", 1))

    def test_scores_reports_and_graphs_replace_their_own_kind_only(self):
        # Scores replace scores in their own format only (HDF5 is never written over a CSV, nor CSV
        # over HDF5 scores); a report replaces a page `lathe report` wrote, with its mark or from
        # before it; an ONNX graph replaces an ONNX model; and none replaces another of these.
        scores_csv, scores_h5 = self.path("s.csv"), self.path("s.h5")
        checked("score", self.model, self.data, "--out", scores_csv, "--quiet")
        checked("score", self.model, self.data, "--out", scores_h5, "--quiet")
        report, graph = self.path("r.html"), self.path("g.onnx")
        checked("report", self.model, "--out", report)
        checked("export", self.model, "--onnx", graph, "--quiet")
        kept = [scores_csv, scores_h5, report, graph, self.model, self.data]
        for args, what in [
            (["score", self.model, self.data, "--out", scores_csv, "--format", "h5", "--quiet"],
             f"--out {scores_csv} holds the scores `lathe score` wrote as CSV, which the scores, written as HDF5, "
             "would replace"),
            (["score", self.model, self.data, "--out", scores_h5, "--format", "csv", "--quiet"],
             f"--out {scores_h5} holds the scores `lathe score` wrote as HDF5, which the scores, written as CSV, "
             "would replace"),
            (["import", self.csv, scores_csv, "--quiet"], f"the output {scores_csv} holds the scores `lathe score` "
             "wrote as CSV, which the imported table would replace"),
            (["report", self.model, "--out", graph], f"--out {graph} is an ONNX model, which the report would"),
            (["report", self.model, "--out", scores_csv], f"--out {scores_csv} holds the scores `lathe score` wrote"),
            (["export", self.model, "--onnx", report, "--quiet"],
             f"--onnx {report} is a report written by `lathe report`, which the ONNX graph would"),
            (["score", self.model, self.data, "--out", report, "--format", "csv", "--quiet"],
             f"--out {report} is a report written by `lathe report`"),
            (self.train_args(out="g.onnx"), f"--out {graph} is an ONNX model, which the model would"),
        ]:
            with self.subTest(command=" ".join(map(os.path.basename, map(str, args[:4])))):
                self.assertRefused(args, [what, "it is left as it is"], kept)
        # An HTML page of another writer is no report of Lathe's.
        page = self.path("page.html")
        with open(page, "w") as f:
            f.write('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Mine</title>\n'
                    "</head>\n<body>notes</body>\n</html>\n")
        self.assertRefused(["report", self.model, "--out", page],
                           [f"--out {page} is not a report written by `lathe report` (its head has no <meta "
                            'name="generator" content="lathe report">)'], [page])
        # Each is replaced by its own kind.
        checked("score", self.model, self.data, "--out", scores_csv, "--quiet")
        checked("score", self.model, self.data, "--out", scores_h5, "--quiet")
        checked("export", self.model, "--onnx", graph, "--quiet")
        with open(report) as f:
            html = f.read()
        self.assertIn('<meta name="generator" content="lathe report">', html.split("</head>")[0])
        # A report written before the mark (the same page without that line) is a report too.
        with open(report, "w") as f:
            f.write(html.replace('<meta name="generator" content="lathe report">\n', "", 1))
        checked("report", self.model, "--out", report)
        with open(report) as f:
            self.assertEqual(f.read(), html)

    def test_a_metrics_log_replaces_an_earlier_log_only(self):
        # `train --metrics-log data.csv` put the epochs' JSON lines in place of the user's data when
        # training succeeded: a log replaces an earlier log only (its first line an epoch's object).
        log = self.path("log.jsonl")
        checked(*self.train_args("--metrics-log", log, out="first.h5"))
        with open(log) as f:
            first = json.loads(f.readline())
        self.assertEqual(first["epoch"], 1)
        notes = self.path("notes.txt")
        with open(notes, "w") as f:
            f.write('{"note": "a JSON object, but no epoch"}\n')
        for target, what in [
            (self.csv, "is not a metrics log of `lathe train` (its first line is no JSON object with an \"epoch\")"),
            (notes, "is not a metrics log of `lathe train` (its first line is no JSON object with an \"epoch\")"),
            (self.model, "is a model file written by `lathe train`"),
        ]:
            with self.subTest(target=os.path.basename(target)):
                self.assertRefused(self.train_args("--metrics-log", target),
                                   [f"--metrics-log {target} {what}, which the metrics log would replace",
                                    "give --metrics-log another name, or remove " + target], [target])
                self.assertFalse(os.path.exists(self.path("m2.h5")))
        # Nor does a model replace a log.
        self.assertRefused(self.train_args(out="log.jsonl"),
                           [f"--out {log} is a metrics log written by `lathe train --metrics-log`"], [log])
        # An earlier log is replaced by the new run's.
        with open(log, "w") as f:
            f.write('{"epoch": 7, "earlier": true}\n')
        checked(*self.train_args("--metrics-log", log))
        with open(log) as f:
            self.assertEqual([json.loads(line)["epoch"] for line in f], [1, 2])

    def test_output_spelled_differently_is_still_the_input(self):
        os.symlink("m.h5", self.path("link.h5"))
        os.link(self.model, self.path("hard.h5"))
        for spelling in ["./m.h5", self.model, "link.h5", "hard.h5"]:
            with self.subTest(spelling=spelling):
                self.assertRefused(["score", "m.h5", "d.h5", "--out", spelling, "--quiet"], ["--out", spelling, "m.h5"],
                                   [self.model], cwd=self.dir, code=2)
                self.assertRefused(["export", "m.h5", "--onnx", spelling], ["--onnx", spelling], [self.model],
                                   cwd=self.dir, code=2)
                self.assertRefused(["prepare", "m.h5", spelling, "--quiet"], ["output", spelling], [self.model],
                                   cwd=self.dir, code=2)

    def test_score_output_collisions_are_usage_errors(self):
        # Both are the command line naming one file twice, found before anything is read: exit 2,
        # the same code whether the output is an input or two inputs' outputs share one name.
        os.mkdir(self.path("sub"))
        same_name = os.path.join(self.dir, "sub", "d.h5")
        shutil.copy(self.data, same_name)
        folder = self.path("scores")
        for args, names in [
            (["score", self.model, self.data, "--out", self.data, "--quiet"], ["--out", "d.h5", "data file"]),
            (["score", self.model, self.data, "--out", self.model, "--quiet"], ["--out", "m.h5", "model file"]),
            (["score", self.model, self.data, same_name, "--out", folder, "--quiet"],
             ["--out", "two inputs would both be written to", "d.h5"]),
        ]:
            with self.subTest(args=" ".join(map(os.path.basename, args))):
                self.assertRefused(args, names, [self.model, self.data, same_name], code=2)
                self.assertFalse(os.path.exists(folder))

    def test_output_in_a_folder_that_is_a_file_is_refused(self):
        inside = os.path.join(self.data, "out.h5")
        cases = [
            (["train", self.data, "--task", "binary", "--label", "label", "--out", inside, "--quiet"], "--out"),
            (["score", self.model, self.data, "--out", inside, "--quiet"], "--out"),
            (["export", self.model, "--onnx", inside], "--onnx"),
            (["report", self.model, "--out", inside, "--quiet"], "--out"),
            (["prepare", self.data, inside, "--quiet"], "output"),
            (["import", self.csv, inside, "--quiet"], "output"),
        ]
        for args, option in cases:
            with self.subTest(command=args[0]):
                proc = self.assertRefused(args, [option, "is a file, not a folder"], [self.data, self.model])
                self.assertIn(self.data, proc.stderr)

    def test_score_creates_its_output_folder_but_not_its_parents(self):
        second = self.path("e.h5")
        shutil.copy(self.data, second)
        # Several inputs: a missing --out folder is made, but only it; a typo in a parent is an error
        # naming the parent, and nothing is created (as for one input, whose folder must exist).
        for out, parent in [(self.path("a/b/c"), self.path("a/b")), (self.path("a/b/c/"), self.path("a/b")),
                            (self.path("typo/scores"), self.path("typo"))]:
            with self.subTest(out=out):
                self.assertRefused(["score", self.model, self.data, second, "--out", out, "--quiet"],
                                   ["--out " + out, f"the folder '{parent}' does not exist"], [self.data])
        self.assertRefused(["score", self.model, self.data, "--out", self.path("zz/x.csv"), "--quiet"],
                           ["--out", f"the folder '{self.path('zz')}' does not exist"], [self.data])
        self.assertRefused(["score", self.model, self.data, second, "--out", os.path.join(self.data, "scores"),
                            "--quiet"], ["--out", f"'{self.data}' is a file, not a folder"], [self.data])
        out = self.path("scores")
        checked("score", self.model, self.data, second, "--out", out, "--quiet", timeout=TIMEOUT)
        self.assertEqual(sorted(os.listdir(out)), ["d.h5", "e.h5"])
        # Relative to the working folder too (its parent is '.').
        checked("score", self.model, "d.h5", "e.h5", "--out", "rel", "--quiet", cwd=self.dir, timeout=TIMEOUT)
        self.assertEqual(sorted(os.listdir(self.path("rel"))), ["d.h5", "e.h5"])

    # --- 4. stale temporaries -----------------------------------------------------------------------

    def plant(self, *names):
        for name in names:
            with open(self.path(name), "wb") as f:
                f.write(b"partial")

    def test_stale_temporaries_of_dead_processes_are_removed(self):
        dead, alive = dead_pid(), os.getpid()
        stale = [f".k.csv.tmp-{dead}-0", f".m2.h5.tmp-{dead}-7",
                 # the doubled name checkpoints used to leave
                 f"..m2.checkpoint.h5.tmp-{dead}-42.tmp-{dead}-43", f".m2.checkpoint.h5.tmp-{dead}-3"]
        kept = [f".k.csv.tmp-{alive}-0", f".m2.h5.tmp-{alive}-1",
                f"..m2.checkpoint.h5.tmp-{dead}-42.tmp-{alive}-43",  # one of its processes runs
                # names that only look like temporaries of these outputs
                f".k.csv.tmp-{dead}-0x", f".k.csv.tmp-{dead}", f".kk.csv.tmp-{dead}-0", f"k.csv.tmp-{dead}-0",
                f".k.csv.tmp-{dead}-0.bak", f".k.csv.tmp-0-0", f".k.csv.tmp--1-0", f".d.h5.tmp-{dead}-0"]
        self.plant(*stale, *kept)
        checked("score", self.model, self.data, "--out", self.path("k.csv"), "--quiet")
        checked(*self.train_args("--checkpoint-every", 1))
        names = set(os.listdir(self.dir))
        for name in stale:
            self.assertNotIn(name, names)
        for name in kept:
            self.assertIn(name, names)
        self.assertTrue(os.path.exists(self.path("k.csv")))
        self.assertTrue(os.path.exists(self.path("m2.checkpoint.h5")))

    def test_checkpoint_goes_through_one_temporary_name(self):
        # Watch the folder while checkpoints are written every epoch: every temporary seen is one
        # stage deep (".NAME.tmp-PID-N"), never a temporary of a temporary.
        args = ["train", self.data, "--task", "binary", "--label", "label", "--out", self.path("m2.h5"),
                "--epochs", 60, "--patience", 0, "--checkpoint-every", 1, "--device", "cpu", "--quiet"]
        proc = subprocess.Popen([LATHE, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = set()
        limit = time.monotonic() + TIMEOUT
        try:
            while proc.poll() is None and time.monotonic() < limit:
                seen.update(n for n in os.listdir(self.dir) if ".tmp-" in n)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        self.assertFalse([n for n in seen if n.startswith("..")], sorted(seen))
        if not seen:
            self.skipTest("no temporary was seen while the checkpoints were written")

    # --- 5. option checks up front --------------------------------------------------------------------

    def test_prepare_compression_is_checked_before_reading(self):
        # Before the input is read: a missing input is not what the error is about.
        # A usage error: exit 2.
        proc = self.assertRefused(["prepare", self.path("absent.h5"), self.path("p.h5"), "--compression", 99],
                                  ["--compression", "99"], [], code=2)
        self.assertNotIn("absent.h5", proc.stderr)
        proc = self.assertRefused(["prepare", self.data, self.path("p.h5"), "--label", "label", "--compression", 99],
                                  ["--compression"], [self.data], code=2)
        self.assertNotIn("H5P", proc.stderr)

    def test_block_rows_must_be_positive_and_is_named(self):
        for args in (self.train_args("--block-rows", 0),
                     ["prepare", self.data, self.path("p.h5"), "--block-rows", 0, "--quiet"]):
            with self.subTest(command=args[0]):
                self.assertRefused(args, ["--block-rows"], [self.data], code=2)
        proc = lathe("score", self.model, self.data, "--out", self.path("k.csv"), "--block-rows", 0, "--quiet")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--block-rows", proc.stderr)
        self.assertFalse(os.path.exists(self.path("k.csv")))

    def test_window_rows_must_be_positive_when_given(self):
        for value in (0, -5):
            with self.subTest(value=value):
                self.assertRefused(self.train_args("--stream", "--window-rows", value), ["--window-rows"], [self.data],
                                   code=2)

    def test_config_that_is_a_folder_says_so(self):
        folder = self.path("conf")
        os.mkdir(folder)
        proc = self.assertRefused(self.train_args("--config", folder), ["--config", folder, "folder"], [self.data])
        self.assertNotIn("no such file", proc.stderr)



@unittest.skipUnless(os.geteuid() == 0, "needs root, to run lathe as another user who may not write the folder")
class UnwritableFolderTest(unittest.TestCase):
    """An output folder lathe may not write in is refused before anything is read, with the
    system's reason, by every writer alike (it used to surface as a failing HDF5 call)."""

    def test_every_writer_names_the_folder_and_the_reason(self):
        work = tempfile.mkdtemp(prefix="lathe-unwritable-")
        self.addCleanup(shutil.rmtree, work, True)
        os.chmod(work, 0o755)
        data, model = binary_data_and_model(work, rows=300, features=3, epochs=1)
        for path in (data, model):
            os.chmod(path, 0o644)
        locked = os.path.join(work, "locked")
        os.mkdir(locked, 0o755)  # root's: another user may read it but not write in it

        def as_nobody():
            os.setgid(65534)
            os.setuid(65534)

        commands = [
            ["score", model, data, "--out", os.path.join(locked, "s.csv"), "--format", "csv"],
            ["score", model, data, "--out", os.path.join(locked, "s.h5")],
            ["train", data, "--task", "binary", "--label", "label", "--out", os.path.join(locked, "m.h5")],
            ["export", model, "--onnx", os.path.join(locked, "m.onnx")],
            ["report", model, "--out", os.path.join(locked, "r.html")],
        ]
        for command in commands:
            with self.subTest(command=command[0], out=command[-1]):
                proc = subprocess.run([LATHE, *command], capture_output=True, text=True, timeout=TIMEOUT,
                                      preexec_fn=as_nobody, cwd=work)
                self.assertNotEqual(proc.returncode, 0, proc.stderr)
                self.assertIn(f"cannot write in the folder '{locked}': Permission denied", proc.stderr)
                self.assertNotIn(" at /", proc.stderr)  # no source location of an HDF5 call
        self.assertEqual(os.listdir(locked), [])

if __name__ == "__main__":
    unittest.main()
