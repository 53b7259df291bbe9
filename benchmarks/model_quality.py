"""Does the bundled model write like Bach? The voice-leading rates, the classifier two-sample test and
the first quality bar, for each means the model card's ablation table names (issue 14).

Every row is measured on the same samples where it can be: the rows of one model and one sampler
setting decode the very same model tensors x (``pipeline.sample``) with each decoder, so a decoder's
row differs from its neighbour's by the decoder alone; rows of another sampler setting or model use
the same seeds. Real Bach test windows are the reference; their own row (the ceiling) and the
two-sample test of real valid windows against them (the test's chance level, about 0.5) are printed
beside it, and decoded noise is the floor.

    python benchmarks/model_quality.py --new assets/checkpoints/soundtracks.pt --old /tmp/v1.pt
    python benchmarks/model_quality.py --old-from-git   # the previous model: the bundled file before its last commit
    python benchmarks/model_quality.py --quick      # 16 samples, DDIM-4: only checks that it runs
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import decoding, metrics, pipeline, realism

RATES = ("crossing", "spacing", "parallels", "leaps", "consonance_4")


ROOT = Path(__file__).resolve().parent.parent
BUNDLED = "assets/checkpoints/soundtracks.pt"


def previous_bundled_model() -> str:
    """The bundled checkpoint as it was before the commit that last changed it (from git history),
    written to a temporary file; its path."""
    def git(*args) -> bytes:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True)
        if done.returncode:
            raise SystemExit(f"--old-from-git needs the project's git history: git {' '.join(args)} failed: "
                             f"{done.stderr.decode().strip()}")
        return done.stdout
    last = git("log", "-1", "--format=%H", "--", BUNDLED).decode().strip()
    if not last:
        raise SystemExit(f"--old-from-git: {BUNDLED} has no history in this clone")
    blob = git("show", f"{last}^:{BUNDLED}")
    path = Path(tempfile.mkdtemp()) / "previous.pt"
    path.write_bytes(blob)
    print(f"previous model: {BUNDLED} before commit {last[:10]}")
    return str(path)


def row(rolls, reference, pieces, modes, spec, seed=0) -> dict:
    """The figures of one set of rolls against the real test windows: ``metrics.evaluate`` (its
    four-voice rates included) and the two-sample test."""
    quality = metrics.evaluate(rolls, spec, reference=reference, requested_modes=modes)
    keep = ("crossing", "spacing", "parallels", "leaps", "consonance_4", "monophony", "onsets_per_bar", "mode_accuracy")
    out = {k: quality[k] for k in keep if k in quality}
    out["c2st"] = realism.two_sample_test(rolls, reference, spec, groups=pieces, seed=seed).accuracy
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new", default=None, help="the model to measure (default: the bundled one)")
    parser.add_argument("--old", default=None, help="the previous model, measured the same way (optional)")
    parser.add_argument("--old-from-git", action="store_true",
                        help="the previous model: the bundled checkpoint before the commit that last changed it")
    parser.add_argument("--n", type=int, default=128, help="samples per row (default 128)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the card's)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free w (default: the card's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the table here")
    parser.add_argument("--quick", action="store_true", help="16 samples, DDIM-4")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.old_from_git:
        args.old = previous_bundled_model()
    n, steps = (16, 4) if args.quick else (args.n, args.steps)
    reference, pieces, test = realism.real_windows("bach", "test")
    valid, valid_pieces, _ = realism.real_windows("bach", "valid")
    new = pipeline.load(args.new)
    spec = new.spec
    modes = [i % 2 for i in range(n)]
    defaults = pipeline.sampling_defaults(new)
    steps = steps or defaults["steps"]
    w = defaults["guidance_scale"] if args.guidance is None else args.guidance
    card_rules = decoding.DecodingRules(**defaults.get("decoder_rules", {}))
    rows, seconds = {}, {}

    ceiling = row(reference, reference, pieces, [l["mode"] for l in test.labels], spec)
    ceiling["c2st"] = realism.two_sample_test(valid, reference, spec, groups=pieces, sample_groups=valid_pieces).accuracy
    rows["real Bach test windows (ceiling; C2ST: real valid vs test)"] = ceiling
    rows["decoded noise (floor)"] = row(pipeline.noise_rolls(new, n), reference, pieces, modes, spec)

    def draw(ckpt, **settings):
        start = time.perf_counter()
        x = torch.cat([pipeline.sample(ckpt, len(chunk), style="bach", mode=list(chunk), seed=k, **settings)
                       for k, chunk in enumerate(np.array_split(modes, max(1, n // 64)))])
        return x, (time.perf_counter() - start) / n

    if args.old:
        old = pipeline.load(args.old)
        x, s = draw(old, steps=steps, guidance_scale=w, voice_leading=0)
        rows[f"previous model, DDIM-{steps} w={w:g}, plain decoder"] = row(old.encoding.decode(x), reference, pieces, modes, spec)
        seconds[f"previous model, DDIM-{steps} w={w:g}, plain decoder"] = s
    settings = [(steps, w)] + ([] if args.quick else [(2 * steps, w), (steps, 0.0)])
    for k, (st, gw) in enumerate(settings):
        x, s = draw(new, steps=st, guidance_scale=gw, voice_leading=0)
        base = f"new model, DDIM-{st} w={gw:g}"
        decoders = {"plain decoder": None, "rule decoder (card)": card_rules}
        if k == 0:  # the decoder's ablations, on the same x
            decoders.update({
                "rule decoder without parallels": decoding.DecodingRules(**{**defaults.get("decoder_rules", {}), "parallels": 0}),
                "rule decoder without crossing/spacing": decoding.DecodingRules(**{**defaults.get("decoder_rules", {}),
                                                                                   "crossing": 0, "spacing": 0}),
                "rule decoder, rules only (1 class)": decoding.DecodingRules(**{**defaults.get("decoder_rules", {}), "classes": 1}),
                "rule decoder without the melodic prior and repeat cost": decoding.DecodingRules(
                    **{**defaults.get("decoder_rules", {}), "intervals": 0, "repeats": 0}),
                "melodic prior and repeat cost only (no voice-leading rules)": decoding.DecodingRules(
                    **{**defaults.get("decoder_rules", {}), "crossing": 0, "spacing": 0, "parallels": 0, "leaps": 0,
                       "dissonance": 0}),
            })
        for name, rules in decoders.items():
            start = time.perf_counter()
            rolls = new.encoding.decode(x) if rules is None else decoding.decode_voice_leading(new.encoding, x, rules)
            rows[f"{base}, {name}"] = row(rolls, reference, pieces, modes, spec)
            seconds[f"{base}, {name}"] = s + (time.perf_counter() - start) / n
        if k == 0 and not args.quick and defaults.get("voice_leading_weights"):
            xv, sv = draw(new, steps=st, guidance_scale=gw, voice_leading=1.0)
            rows[f"{base}, x̂0 rule correction 1.0, rule decoder (card)"] = row(
                decoding.decode_voice_leading(new.encoding, xv, card_rules), reference, pieces, modes, spec)
            seconds[f"{base}, x̂0 rule correction 1.0, rule decoder (card)"] = sv
    for name, s in seconds.items():
        rows[name]["s_per_sample"] = s
    print(f"{n} samples per row (style bach, half major, half minor), reference: {len(reference)} real test "
          f"windows of {len(set(pieces))} chorales; C2ST = 5-fold, grouped by piece, chance 0.5")
    print(metrics.format_rows(rows, "set"))
    real_rates = rows["real Bach test windows (ceiling; C2ST: real valid vs test)"]
    print("\nrates as multiples of real Bach's:")
    print(metrics.format_rows({name: {k: r[k] / real_rates[k] for k in RATES} for name, r in rows.items()}, "set"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
