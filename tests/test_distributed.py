"""Two processes that train as one: torchrun + gloo on the CPU (DistributedDataParallel).

One run of ``torchrun --standalone --nproc_per_node=2 -m course_lib train`` for a few steps: both
processes end with identical weights, process 0 alone writes the checkpoint, ``generate`` loads
it, and its weights are those of one process training on the whole batch (up to the order of float
additions in the averaged gradient)."""
import dataclasses
import os
import re
import subprocess
import sys

import pytest
import torch

from course_lib import cli, data, pipeline

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch build has no gloo backend")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """40 chorales as a corpus of their own, so the test spends its time on training, not on data."""
    bach = data.load_corpus("bach")
    few = dataclasses.replace(bach, name="few", style="few", pieces=bach.pieces[:40], notes=bach.notes[:40],
                              rejected={}, rejected_files=[])
    folder = tmp_path_factory.mktemp("cache")
    few.save(folder / "few.npz")
    return folder


SETTINGS = ["--corpora", "few", "--steps", "4", "--valid-every", "2", "--batch-size", "8", "--channels", "64",
            "--quiet", "--threads", "1"]


def test_two_gloo_processes_train_as_one_and_write_a_checkpoint_generate_loads(cache, tmp_path, capsys):
    two, one = tmp_path / "two.pt", tmp_path / "one.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "course_lib", "train", "--out", str(two), "--cache-dir", str(cache), *SETTINGS],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on cpu x 2 processes" in done.stdout
    difference = re.search(r"largest weight difference from process 0: (\S+)", done.stdout)
    assert difference and float(difference.group(1)) == 0.0, done.stdout  # model and EMA, all-reduced (max)
    assert done.stdout.count("saved ") == 1, "only process 0 writes the checkpoint and talks"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.pt", "two.resume.pt"]

    assert cli.main(["train", "--out", str(one), "--cache-dir", str(cache), *SETTINGS]) == 0
    a, b = pipeline.load(two), pipeline.load(one)
    assert [row["step"] for row in a.meta["card"]["history"]] == [2, 4]
    for (key, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=f"{key}: 2 processes differ from 1")
    for row_a, row_b in zip(a.meta["card"]["history"], b.meta["card"]["history"]):
        assert row_a["train_loss"] == pytest.approx(row_b["train_loss"], rel=1e-5)
        assert row_a["valid_loss"] == pytest.approx(row_b["valid_loss"], rel=1e-5)

    capsys.readouterr()
    assert cli.main(["generate", "--checkpoint", str(two), "--style", "few", "--n", "1", "--steps", "2",
                     "--out", str(tmp_path / "samples"), "--quiet", "--threads", "1"]) == 0
    assert len(list((tmp_path / "samples").glob("sample_*.mid"))) == 1
