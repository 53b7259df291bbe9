"""Guided production tasks, measured on many windows (issue 6; lesson 6 shows the same on 8).

1. Seams of infills and continuations: melodic interval, leaps and onset change across the bar
   lines where given and generated music meet (``tasks.seam_statistics``), against the same bar
   lines of the real chorales, and against a naive splice (bars cut from independent samples).
2. Seams of transitions: a bridge from the last bar of a folk tune to the first bar of a chorale,
   against real bar lines of tunes and chorales, and against a hard cut from one to the other.
3. Rules: the share of notes in C major, of soprano notes in C4-C5, and the distance of the note
   density from a target, without and with rule guidance (``guidance.key_penalty``, ...).

    python benchmarks/guided_tasks.py             # n = 256 windows, DDIM-20, 1 thread (~3 min)
    python benchmarks/guided_tasks.py --quick     # n = 4, DDIM-2: only checks that it runs

Every figure is for the bundled checkpoint (``pipeline.load()``), seeds fixed.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from course_lib import data, guidance, metrics, music, pipeline, tasks

SEAMS = (16, 48)  # the bar lines (steps) where bars 1 | 2 and 3 | 4 of a 4-bar window meet
DENSITY_TARGET = 0.12  # calm: notes per 16th step per sounding voice (the data span ~0.17-0.47)
LOW_SOPRANO = {"soprano": (60, 72)}  # C4..C5, narrower than a soprano's usual range


def real_windows(corpus: str, n: int, spec: music.RollSpec) -> np.ndarray:
    """n test-split windows spread evenly over the split, (n, tracks, 2, pitches, 64)."""
    test = data.WindowDataset(data.load_corpus(corpus), "test", spec=spec)
    return np.stack([test.roll(i) for i in np.linspace(0, len(test) - 1, n).astype(int)])


def timed(label: str, make):
    start, cpu = time.perf_counter(), time.process_time()
    result = make()
    print(f"  {label}: {time.perf_counter() - start:.1f} s ({time.process_time() - cpu:.1f} s CPU)", flush=True)
    return result


def seams(ckpt, chorales, steps: int) -> dict:
    """Infill bars 2-3 and continue bars 1-2, each by replacement, resampling and guidance."""
    spec, enc, n = ckpt.spec, ckpt.encoding, len(chorales)
    common = dict(style="bach", steps=steps, seed=1)
    rows = {"real chorales, same bar lines": tasks.seam_statistics(chorales, spec, SEAMS)}
    for name, extra in {"infill: replacement": {},
                        "infill: replacement, resampled x3": dict(resample_steps=3),
                        "infill: replacement + reconstruction guidance": dict(reconstruction_scale=1.0)}.items():
        rolls = timed(name, lambda: enc.decode(tasks.sample(ckpt, n, known=enc.encode(chorales),
                                                            known_mask=1 - tasks.bar_mask(enc, 4, 2, 3),
                                                            **common, **extra)))
        rows[name] = tasks.seam_statistics(rolls, spec, SEAMS)
    free = pipeline.generate(ckpt, n, style="bach", steps=steps, seed=2)
    rows["free samples, same bar lines (the model's own)"] = tasks.seam_statistics(free, spec, SEAMS)
    spliced = chorales.copy()
    spliced[..., 16:48] = free[..., 16:48]
    rows["splice of independent samples (floor)"] = tasks.seam_statistics(spliced, spec, SEAMS)

    rows["real chorales, bar line 2 | 3"] = tasks.seam_statistics(chorales, spec, [32])
    continued = timed("continuation", lambda: enc.decode(tasks.sample(
        ckpt, n, known=enc.encode(chorales), known_mask=1 - tasks.bar_mask(enc, 4, 3, 4), **common)))
    rows["continuation of bars 1-2, at 2 | 3"] = tasks.seam_statistics(continued, spec, [32])
    return rows


def transitions(ckpt, chorales, tunes, steps: int) -> dict:
    """Bridges from each tune's last bar to a chorale's first bar (bars 2-3 generated)."""
    spec, enc, n = ckpt.spec, ckpt.encoding, len(chorales)
    given = np.zeros_like(chorales)
    given[..., :16], given[..., 48:] = tunes[..., 48:], chorales[..., :16]
    bridges = timed("transitions", lambda: enc.decode(tasks.sample(
        ckpt, n, known=enc.encode(given), known_mask=1 - tasks.bar_mask(enc, 4, 2, 3), style="bach", steps=steps,
        seed=4)))
    cut = np.concatenate([tunes[..., 48:], chorales[..., :16]], axis=-1)  # the tune's last bar, then the chorale
    return {"real tunes and chorales, bar lines 1 | 2 and 3 | 4": tasks.seam_statistics(
                np.concatenate([tunes, chorales]), spec, SEAMS),
            "bridges, at their two seams": tasks.seam_statistics(bridges, spec, SEAMS),
            "hard cut tune -> chorale (floor)": tasks.seam_statistics(cut, spec, [16])}


def rules(ckpt, n: int, steps: int) -> dict:
    """No rule, then each rule; every sample is measured by every rule's measure."""
    spec, enc = ckpt.spec, ckpt.encoding

    def measures(rolls):
        soprano = [music.roll_to_notes(roll[:1], music.MELODY)[:, 1] for roll in rolls]
        return {"in C major": float(np.nanmean(tasks.in_scale_share(rolls, spec))),
                "soprano in C4-C5": float(np.mean([np.mean((p >= 60) & (p <= 72)) for p in soprano if len(p)])),
                "density error": float(np.mean(np.abs(tasks.note_density(rolls, spec) - DENSITY_TARGET))),
                "consonance": float(np.nanmean(metrics.consonance(rolls, spec)))}

    cases = {"no rule": (None, 0.0),
             "key: C major, λ=1": (guidance.key_penalty(enc), 1.0),
             "range: soprano C4-C5, λ=3": (guidance.range_penalty(enc, LOW_SOPRANO), 3.0),
             f"density {DENSITY_TARGET}, λ=3": (guidance.density_penalty(enc, DENSITY_TARGET), 3.0)}
    rows = {}
    for name, (penalty, scale) in cases.items():
        rolls = timed(name, lambda: enc.decode(tasks.sample(ckpt, n, style="bach", steps=steps, seed=7, rule=penalty,
                                                            rule_scale=scale)))
        rows[name] = measures(rolls)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256, help="windows per row")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="n = 4, 2 steps: a smoke test")
    args = parser.parse_args(argv)
    n, steps = (4, 2) if args.quick else (args.n, args.steps)
    torch.set_num_threads(args.threads)
    ckpt = pipeline.load()
    spec = ckpt.spec
    chorales, tunes = real_windows("bach", n, spec), real_windows("folk", n, spec)
    print(f"bundled checkpoint, {n} test windows per row, DDIM-{steps}, torch threads {torch.get_num_threads()}")
    print("\n1. Seams where given and generated bars meet (interval, onset change: mean |.| per voice; "
          "leaps: share over a fifth)")
    table = seams(ckpt, chorales, steps)
    print(metrics.format_rows(table, "windows"))
    print("\n2. Transitions folk tune -> chorale")
    print(metrics.format_rows(transitions(ckpt, chorales, tunes, steps), "windows"))
    print(f"\n3. Rule guidance ({n} samples each, style bach, same seeds)")
    print(metrics.format_rows(rules(ckpt, n, steps), "samples"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
