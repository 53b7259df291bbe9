"""Control against diversity: classifier-free and classifier guidance at several scales (issue 6;
lesson 5 runs the same measurement on 8 samples per request).

For each of the four requests (bach/folk x major/minor) ``--per-request`` samples are generated
at each scale, with the same seeds across scales:

- classifier-free guidance (Ho & Salimans 2022): the conditional model, guided ε = (1 + w) ε(x, c) - w ε(x, ∅);
- classifier guidance (Dhariwal & Nichol 2021): the model with every label null, steered by
  s ∇ log p(style | x_t) + s ∇ log p(mode | x_t) of the bundled *noisy* classifier.

The judges: the bundled *clean* classifier (style and mode accuracy against the request) and
music21's key analysis (mode). Diversity: the mean share of differing entries of the voice
encoding between two samples of the same request (for "no labels", samples that share a seed
group: they mix styles, hence the higher figure). Fidelity: the KL divergence of the pooled
pitch-class histogram from that of real test windows with the same mix of labels.

    python benchmarks/control.py                    # 64 samples per request = 256 per scale, DDIM-25
    python benchmarks/control.py --quick            # 2 per request, DDIM-2: only checks that it runs
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from course_lib import classifiers, data, metrics, pipeline
from course_lib.encoding import VoiceEncoding

REQUESTS = [(style, mode) for style in data.STYLES for mode in pipeline.MODES]
CFG_SCALES = (0.0, 1.0, 2.0, 4.0, 8.0)
CLASSIFIER_SCALES = (0.0, 1.0, 3.0, 10.0, 30.0)
FOLK_MINOR = REQUESTS.index(("folk", "minor"))  # the rare request, reported on its own


def real_windows(per_request: int, spec) -> tuple[np.ndarray, dict]:
    """``per_request`` test windows of each request's labels (fewer if the split has fewer)."""
    rng, rolls, wanted = np.random.default_rng(0), [], {"style": [], "mode": []}
    for style in data.STYLES:  # in REQUESTS' order: style, then mode
        test = data.WindowDataset(data.load_corpus(style), "test", VoiceEncoding(spec), spec=spec)
        modes = np.array([test[i][1]["mode"] for i in range(len(test))])
        for mode in pipeline.MODES:
            candidates = np.flatnonzero(modes == pipeline.MODES.index(mode))
            pick = rng.choice(candidates, min(per_request, len(candidates)), replace=False)
            rolls += [test.roll(int(i)) for i in pick]
            wanted["style"] += [data.STYLES.index(style)] * len(pick)
            wanted["mode"] += [pipeline.MODES.index(mode)] * len(pick)
    return np.stack(rolls), {k: np.array(v) for k, v in wanted.items()}


def diversity(x: torch.Tensor, groups: np.ndarray) -> float:
    """Mean share of differing entries between two encoded samples (N, C, L) of the same group."""
    shares = []
    for g in np.unique(groups):
        members = x[torch.as_tensor(groups == g)].flatten(1)  # (n, C * L)
        n = len(members)
        if n > 1:
            differ = (members[:, None] != members[None]).float().mean(-1)  # (n, n)
            shares.append(float(differ.sum() / (n * (n - 1))))
    return float(np.mean(shares)) if shares else math.nan


def report(rolls, wanted, groups, judge, spec, reference) -> dict:
    """Accuracy of the clean classifier and of music21's mode against the request; diversity; fidelity."""
    heard = classifiers.classify_rolls(judge.classifier, judge.encoding, rolls)
    return {"style": float(np.mean(heard["style"] == wanted["style"])),
            "mode": float(np.mean(heard["mode"] == wanted["mode"])),
            "mode (music21)": float(np.mean(metrics.modes_of_rolls(rolls, spec) == wanted["mode"])),
            "folk minor: mode": float(np.mean(heard["mode"][groups == FOLK_MINOR] == pipeline.MODES.index("minor"))),
            "diversity": diversity(judge.encoding.encode(rolls), groups),
            "pitch-class KL": metrics.kl_divergence(metrics.pitch_class_histogram(rolls, spec),
                                                    metrics.pitch_class_histogram(reference, spec))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-request", type=int, default=64, help="samples per (style, mode) request")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 per request, 2 steps: a smoke test")
    args = parser.parse_args(argv)
    per_request, steps = (2, 2) if args.quick else (args.per_request, args.steps)
    torch.set_num_threads(args.threads)
    ckpt, judge, guide = pipeline.load(), classifiers.load_bundled("clean"), classifiers.load_bundled("noisy")
    classifiers.check_schedule(guide, ckpt.schedule)
    spec = ckpt.spec
    styles = [s for s, _ in REQUESTS for _ in range(per_request)]
    modes = [m for _, m in REQUESTS for _ in range(per_request)]
    wanted = {"style": np.array([data.STYLES.index(s) for s in styles]),
              "mode": np.array([pipeline.MODES.index(m) for m in modes])}
    groups = np.repeat(np.arange(len(REQUESTS)), per_request)
    real, real_wanted = real_windows(per_request, spec)
    real_groups = real_wanted["style"] * len(pipeline.MODES) + real_wanted["mode"]  # index in REQUESTS
    n = len(styles)
    print(f"bundled checkpoint, {per_request} samples per request ({n} per scale), DDIM-{steps}, "
          f"torch threads {torch.get_num_threads()}; judges: the clean classifier and music21")

    rows = {"real test windows": report(real, real_wanted, real_groups, judge, spec, real)}
    timing = {}

    def run(name, **options):
        start = time.perf_counter()
        rolls = pipeline.generate(ckpt, n, steps=steps, seed=0, **options)
        timing[name] = time.perf_counter() - start
        rows[name] = report(rolls, wanted, groups, judge, spec, real)
        print(f"  {name}: {timing[name]:.1f} s", flush=True)

    run("no labels", style=None, mode=None)
    for w in CFG_SCALES:
        run(f"classifier-free, w={w:g}", style=styles, mode=modes, guidance_scale=w)
    for s in CLASSIFIER_SCALES[1:]:
        run(f"classifier, s={s:g} (no labels)", style=None, mode=None, gradient_fn=classifiers.steer(
            guide, s, style=torch.as_tensor(wanted["style"]), mode=torch.as_tensor(wanted["mode"])))
    print("\nShare of samples heard as asked (style, mode), diversity within a request, pitch-class KL to real")
    print(metrics.format_rows(rows, "samples"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
