"""The benchmark scripts in benchmarks/ run end to end (their --quick mode: tiny n, 2 DDIM steps) and
print every table they promise. Their figures are measured by running them in full, not here."""
import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, expected", [
    ("guided_tasks", ["1. Seams", "infill: replacement", "splice of independent samples", "2. Transitions",
                      "bridges, at their two seams", "3. Rule guidance", "key: C major"]),
    ("control", ["real test windows", "no labels", "classifier-free, w=8", "classifier, s=30 (no labels)",
                 "diversity"]),
    ("longform", ["form A A B A", "form A A' B A", "naive concatenation", "real chorales, first 16 bars",
                  "x real", "self-similarity picture", "speed: one 32-bar piece"]),
    ("soundtrack", ["real-time factor", "budget 10%", "state changes", "real chorales, every bar line",
                    "style as asked", "battle", "click -> first bar of the new state heard", "underruns 0"]),
    ("model_quality", ["real Bach test windows (ceiling", "decoded noise (floor)", "rule decoder (card)",
                       "without the melodic prior", "rates as multiples of real Bach's"]),
    ("tune_decoder", ["the 12 rows with the lowest two-sample test accuracy", "plain decoder: C2ST", "misses"]),
    ("lesson_threads", ["ms per step", "1 thread", "2 threads", "toy MLP training step", "one guided DDIM step"]),
    ("train_throughput", ["processes x threads", "steps/s", "samples/s", "1 x 1", "2 x 1", "parameters"]),
])
def test_quick_run_prints_every_table(name, expected, capsys):
    assert load(name).main(["--quick"]) == 0
    printed = capsys.readouterr().out
    missing = [text for text in expected if text not in printed]
    assert not missing, f"{name} printed no {missing}:\n{printed}"
