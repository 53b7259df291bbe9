"""``python -m course_lib``: the demo, generate, train, evaluate and bench commands, and their errors."""
import subprocess
import sys

import pytest

from course_lib import cli, pipeline

pytestmark = pytest.mark.skipif(not pipeline.DEFAULT_CHECKPOINT.exists(), reason="the bundled checkpoint is missing")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "course_lib", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_demo_writes_midi_wav_and_png(tmp_path):
    done = run("demo", "--out", str(tmp_path), "--threads", "1")
    assert done.returncode == 0, done.stderr
    for stem in ("bach_major", "bach_minor", "folk_major"):
        for ext in (".mid", ".wav", ".png"):
            path = tmp_path / f"{stem}_00{ext}"
            assert path.exists() and path.stat().st_size > 200, path
            assert str(path) in done.stdout


def test_generate_with_conditions(tmp_path, capsys):
    code = cli.main(["generate", "--out", str(tmp_path), "--n", "2", "--steps", "5", "--mode", "minor",
                     "--density", "0.3", "--quiet", "--threads", "1"])
    assert code == 0
    assert len(list(tmp_path.glob("sample_*.mid"))) == 2 and len(list(tmp_path.glob("*.png"))) == 2


def test_bad_checkpoint_is_an_error_message_not_a_traceback(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"nonsense")
    done = run("generate", "--checkpoint", str(broken), "--out", str(tmp_path))
    assert done.returncode == 2
    assert "damaged" in done.stderr and "Traceback" not in done.stderr


def test_bad_condition_is_explained(tmp_path, capsys):
    assert cli.main(["generate", "--style", "jazz", "--out", str(tmp_path), "--steps", "2"]) == 2
    assert "unknown style 'jazz'" in capsys.readouterr().err


def test_evaluate_prints_the_table_with_ceiling_and_floor(tmp_path, capsys):
    assert cli.main(["evaluate", "--n", "10", "--steps", "4", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for words in ("real test (ceiling)", "noise (floor)", "consonant sonorities", "mode accuracy", "quality bar"):
        assert words in out


def test_train_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    assert cli.main(["train", "--corpora", "bach", "--steps", "2", "--valid-every", "2", "--batch-size", "4",
                     "--out", str(out), "--quiet", "--threads", "1"]) == 0
    ckpt = pipeline.load(out)
    assert ckpt.meta["train"]["steps"] == 2 and ckpt.meta["card"]["history"]


def test_labels_from_words():
    labels = pipeline.make_labels(3, style="folk", mode=["major", None, "minor"], density=0.2)
    assert labels["style"].tolist() == [1, 1, 1] and labels["mode"].tolist() == [0, -1, 1]
    with pytest.raises(ValueError, match="outside 0..1"):
        pipeline.make_labels(1, density=3)
    with pytest.raises(ValueError, match="2 values for 3 samples"):
        pipeline.make_labels(3, mode=["major", "minor"])
