"""Long-form pieces (issue 17): do generated 16-32 bar pieces have their form, their key and their cadences?

For each form, three sets of pieces of the same length, measured with ``course_lib.metrics``:

- **generated**: ``longform.generate_piece`` (outpainting by overlapping windows, repeats, variations,
  cadence guidance at every phrase end);
- **naive concatenation**: ``longform.independent_windows``, 4-bar samples laid end to end;
- **real chorales**: the first bars of Bach chorales of the same mode and at least that length
  (music21's corpus via ``course_lib.data``, tonic C). They follow no planned form and their phrases do
  not end on our 4-bar grid: they are the yardstick for bar lines and key, not for form or cadences.

Columns: "same"/"different", the mean similarity of aligned bars of same-letter / different-letter
sections (``metrics.form_contrast``), "match" the share of pieces where same - different >=
``metrics.FORM_MARGIN``; "|step|" the mean |interval| (semitones) of every voice across every internal
bar line and "leaps" the share over a fifth (``metrics.barline_leaps``), "x real" their ratio to the
chorales' (goal <= 2); "key" the share of bars in the piece's key (``metrics.key_stability``); "cadence"
the share of phrase-final bars ending on the tonic chord (``metrics.phrase_cadences``), "other ends" the
same for the other bars. Then the time of one 32-bar piece on the torch threads given (goal <= 5 s on
one thread), and a picture of the bar-to-bar self-similarity (``viz.plot_self_similarity``) of the first
piece of each set.

    python benchmarks/longform.py                     # 16 pieces per set, 16 bars, DDIM-20, 1 thread
    python benchmarks/longform.py --bars 32 --n 8     # longer pieces (few real chorales are that long)
    python benchmarks/longform.py --checkpoint PATH   # another model: rerun to compare
    python benchmarks/longform.py --quick             # 2 pieces, DDIM-2: only checks that it runs
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from course_lib import data, longform, metrics, pipeline

FORMS = ("A A B A", "A A' B A")
SPEED_BARS, SPEED_FORM, SPEED_GOAL = 32, "A A' B A", 5.0


def real_chorales(n: int, bars: int, mode: str, spec) -> np.ndarray:
    """Up to n chorales in ``mode`` with at least ``bars`` bars, their first ``bars`` bars, (m, tracks, 2, P, S)."""
    corpus = data.load_corpus("bach")
    wanted = pipeline.MODES.index(mode)
    pieces = [i for i, p in enumerate(corpus.pieces) if p["bars"] >= bars and p["mode"] == wanted]
    chosen = [pieces[int(j)] for j in np.linspace(0, len(pieces) - 1, min(n, len(pieces))).round()] if pieces else []
    return np.stack([corpus.roll(i)[..., :bars * spec.steps_per_bar] for i in dict.fromkeys(chosen)])


def measures(rolls, form, spec, leaps_real=None) -> dict:
    """The row of one set of pieces planned as ``form``."""
    plan = longform.parse_form(form, rolls.shape[-1] // spec.steps_per_bar)
    contrast = metrics.form_contrast(rolls, form, spec)
    leaps = metrics.barline_leaps(rolls, spec)
    ends = metrics.ends_on_tonic(rolls, range(plan.bars), spec)  # (N, bars), key analysed per piece
    phrase = np.zeros(plan.bars, dtype=bool)
    phrase[plan.phrase_ends] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        row = {"pieces": len(rolls), "same": float(np.nanmean(contrast["same"])),
               "different": float(np.nanmean(contrast["different"])),
               "match": float(np.nanmean(metrics.form_match(rolls, form, spec))),
               "|step|": float(np.nanmean(leaps)), "leaps": float(np.nanmean(leaps[~np.isnan(leaps)] > 7)),
               "key": float(np.nanmean(metrics.key_stability(rolls, spec))),
               "cadence": float(np.nanmean(ends[:, phrase])), "other ends": float(np.nanmean(ends[:, ~phrase]))}
    if leaps_real is not None:
        row["x real"] = row["|step|"] / leaps_real
    return row


def time_piece(ckpt, steps: int, repeats: int = 3) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of ``repeats`` 32-bar pieces (CPU time is what one thread costs even
    when other processes share the cores)."""
    longform.generate_piece(ckpt, bars=8, form="A B", steps=2, seed=0)  # warm-up
    wall, cpu = [], []
    for r in range(repeats):
        start = time.process_time()
        wall.append(longform.generate_piece(ckpt, bars=SPEED_BARS, form=SPEED_FORM, steps=steps, seed=r).seconds)
        cpu.append(time.process_time() - start)
    return wall, cpu


def save_picture(path: Path, matrices: dict, form: str) -> Path:
    from matplotlib.figure import Figure

    from course_lib import viz

    fig = Figure(figsize=(5.2 * len(matrices), 4.8), layout="constrained")
    for ax, (title, matrix) in zip(fig.subplots(1, len(matrices)), matrices.items()):
        viz.plot_self_similarity(matrix, ax, form=form, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=16, help="pieces per set")
    parser.add_argument("--bars", type=int, default=16, choices=longform.PIECE_BARS, help="bars per piece")
    parser.add_argument("--steps", type=int, default=longform.DEFAULT_STEPS, help="DDIM steps per window")
    parser.add_argument("--mode", default="major", choices=pipeline.MODES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", default=None, help="checkpoint to measure (default: the bundled one)")
    parser.add_argument("--out", default=None,
                        help="folder for the picture (default out/bench/longform; --quick: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="2 pieces, 2 steps: a smoke test")
    args = parser.parse_args(argv)
    n, steps = (2, 2) if args.quick else (args.n, args.steps)
    torch.set_num_threads(args.threads)
    ckpt = pipeline.load(args.checkpoint)
    spec, bars = ckpt.spec, args.bars
    print(f"checkpoint {args.checkpoint or pipeline.DEFAULT_CHECKPOINT}, {bars} bars, {args.mode}, {n} pieces per "
          f"set, DDIM-{steps} per window, torch threads {torch.get_num_threads()}, form margin "
          f"{metrics.FORM_MARGIN}")
    chorales = real_chorales(n, bars, args.mode, spec)
    start = time.perf_counter()
    naive = longform.independent_windows(ckpt, n, bars=bars, mode=args.mode, steps=steps, seed=1000)
    print(f"naive concatenation: {time.perf_counter() - start:.1f} s")
    # The card's decoder reads the pieces back; while it is the plain one, the rule-aware Viterbi decoder
    # (decoding.decode_voice_leading) is shown beside it on the same samples.
    card_decoder = pipeline.sampling_defaults(ckpt)["decoder"]
    other_decoder = "voice_leading" if card_decoder == "plain" else None
    print(f"decoder: {card_decoder} (the checkpoint's card)"
          + (f"; rows marked '{other_decoder} decoder' read the same samples with it" if other_decoder else ""))
    naive_other = None if other_decoder is None else longform.independent_windows(
        ckpt, n, bars=bars, mode=args.mode, steps=steps, seed=1000, decoder=other_decoder)
    leaps_real = float(np.nanmean(metrics.barline_leaps(chorales, spec)))
    pictures = {}
    for form in FORMS:
        piece = longform.generate_piece(ckpt, n, bars=bars, form=form, mode=args.mode, steps=steps, seed=0)
        print(f"\nform {piece.form}: generated in {piece.seconds:.1f} s ({piece.seconds / n:.2f} s a piece)")
        rows = {"generated": measures(piece.rolls, form, spec, leaps_real),
                "naive concatenation": measures(naive, form, spec, leaps_real)}
        if other_decoder:
            other = np.asarray(pipeline.decode(ckpt, piece.x, decoder=other_decoder))
            rows[f"generated, {other_decoder} decoder"] = measures(other, form, spec, leaps_real)
            rows[f"naive, {other_decoder} decoder"] = measures(naive_other, form, spec, leaps_real)
        rows[f"real chorales, first {bars} bars"] = measures(chorales, form, spec, leaps_real)
        print(metrics.format_rows(rows, "set"))
        for name in [r for r in rows if r.startswith("generated")]:
            ratio = rows[name]["x real"]
            print(f"bar-line |step| of {name} pieces: {ratio:.2f}x real chorales, "
                  f"{'within' if ratio <= 2.0 else 'OVER'} the goal of 2x")
        pictures = pictures or {f"generated ({piece.form})": metrics.self_similarity(piece.rolls[0], spec),
                                "naive concatenation": metrics.self_similarity(naive[0], spec),
                                "real chorale": metrics.self_similarity(chorales[0], spec)}
    out = Path(args.out or (tempfile.mkdtemp(prefix="longform_") if args.quick else "out/bench/longform"))
    path = save_picture(out / f"self_similarity_{bars}_bars.png", pictures, FORMS[0])
    print(f"\nself-similarity picture (first piece of each set, form {FORMS[0]} marked): {path}")
    wall, cpu = time_piece(ckpt, steps, repeats=1 if args.quick else 3)
    print(f"\nspeed: one {SPEED_BARS}-bar piece ({SPEED_FORM}, DDIM-{steps} per window, {torch.get_num_threads()} "
          f"thread(s)): wall {', '.join(f'{s:.2f}' for s in wall)} s (median {np.median(wall):.2f} s), CPU "
          f"{', '.join(f'{s:.2f}' for s in cpu)} s (median {np.median(cpu):.2f} s): "
          f"{'within' if np.median(wall) <= SPEED_GOAL else 'OVER'} the goal of {SPEED_GOAL:g} s on one thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
