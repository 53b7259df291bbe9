"""``python -m course_lib COMMAND``: demo, prepare-data, train, generate, evaluate, bench.

Every command works offline on a CPU; ``python -m course_lib COMMAND --help`` lists its options.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _threads(n: int) -> None:
    torch.set_num_threads(max(1, n))


# ---------------------------------------------------------------------- commands

def cmd_prepare_data(args) -> None:
    from . import data
    for name in args.corpora:
        start = time.perf_counter()
        corpus = data.load_corpus(name, cache_dir=args.cache_dir, rebuild=not args.keep)
        how = "loaded from cache" if corpus.from_cache else "prepared"
        print(f"{how} in {time.perf_counter() - start:.1f} s -> {Path(args.cache_dir or data.CACHE_DIR) / name}.npz")
        print(corpus.report())


def _datasets(corpora: list[str], encoding, transpose: int):
    from . import data
    loaded = [data.load_corpus(name) for name in corpora]
    train = data.WindowDataset(loaded, "train", encoding, transpose_range=transpose)
    valid = data.WindowDataset(loaded, "valid", encoding)
    return loaded, train, valid


def cmd_train(args) -> None:
    from . import encoding as encodings, models, schedules, train as training
    _threads(args.threads)
    encoding = encodings.ENCODINGS[args.encoding]()
    loaded, train_set, valid_set = _datasets(args.corpora, encoding, args.transpose)
    kind = "unet1d" if args.encoding == "voice" else "unet2d"
    config = models.ModelConfig(kind=kind, in_channels=encoding.shape()[0], channels=args.channels,
                                prediction=args.prediction, n_styles=len(training_styles()),
                                use_mode=True, use_density=True, attention=None if args.attention is None
                                else bool(args.attention))
    training.seed_everything(args.seed)
    model = models.build_model(config)
    schedule = schedules.make_schedule(args.schedule, args.timesteps)
    train_config = training.TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                        seed=args.seed, threads=args.threads, valid_every=args.valid_every)
    params = sum(p.numel() for p in model.parameters())
    print(f"training {kind} ({params / 1e6:.2f}M parameters, {args.prediction}-prediction, {args.schedule} "
          f"schedule) on {len(train_set)} windows ({', '.join(args.corpora)}), {args.steps} steps")
    data_description = {"corpora": {c.name: {"pieces": len(c), "rejected": c.rejected} for c in loaded},
                        "train_windows": len(train_set), "valid_windows": len(valid_set),
                        "split": "by piece: crc32(piece id) % 10 == 0 test, 1 valid, else train",
                        "transpose_range": args.transpose}
    start = time.perf_counter()
    history = []

    def save(ema, path):
        card = {"command": "python -m course_lib " + " ".join(sys.argv[1:]),
                "train_seconds": round(time.perf_counter() - start, 1), "history": history,
                "machine": f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}"}
        return training.save_checkpoint(path, ema, schedule, encoding, train_config=train_config,
                                        data=data_description, card=card)

    def snapshot(row, ema):  # every validation: the latest weights, so a long run can be evaluated early
        history.append(row)
        if args.snapshots:
            save(ema, Path(args.out).with_name(f"{Path(args.out).stem}_step{row['step']}.pt"))

    result = training.train(model, schedule, train_set, valid_set, train_config, progress=not args.quiet,
                            on_validation=snapshot)
    path = save(result["ema"], args.out)
    print(f"trained in {(time.perf_counter() - start) / 60:.1f} min; saved {path} ({path.stat().st_size / 1e6:.1f} MB)")


def training_styles():
    from . import data
    return data.STYLES


def cmd_generate(args) -> None:
    from . import pipeline
    _threads(args.threads)
    ckpt = pipeline.load(args.checkpoint)
    start = time.perf_counter()
    rolls = pipeline.generate(ckpt, args.n, style=args.style, mode=args.mode, density=args.density,
                              sampler=args.sampler, steps=args.steps, guidance_scale=args.guidance,
                              seed=args.seed, progress=not args.quiet)
    seconds = time.perf_counter() - start
    paths = pipeline.write_outputs(rolls, args.out, ckpt.spec, stem=args.stem, tempo=args.tempo)
    print(f"generated {args.n} sample(s) in {seconds:.2f} s; wrote {len(paths)} files to {args.out}:")
    for p in paths:
        print(f"  {p}")


def cmd_demo(args) -> None:
    from . import pipeline
    _threads(args.threads)
    ckpt = pipeline.load(args.checkpoint)
    print(f"model: {args.checkpoint or pipeline.DEFAULT_CHECKPOINT}")
    requests = [("bach", "major"), ("bach", "minor"), ("folk", "major")]
    for i, (style, mode) in enumerate(requests):
        start = time.perf_counter()
        roll = pipeline.generate(ckpt, 1, style=style, mode=mode, seed=args.seed + i)
        seconds = time.perf_counter() - start
        paths = pipeline.write_outputs(roll, args.out, ckpt.spec, stem=f"{style}_{mode}",
                                       titles=[f"Generated: {style}, {mode} (seed {args.seed + i})"])
        print(f"{style:5s} {mode:5s}: {seconds:.2f} s to generate 4 bars ->")
        for p in paths:
            print(f"  {p}")


def cmd_evaluate(args) -> None:
    from . import data, metrics, pipeline
    _threads(args.threads)
    ckpts = {Path(p).stem: pipeline.load(p) for p in (args.checkpoint or [pipeline.DEFAULT_CHECKPOINT])}
    first = next(iter(ckpts.values()))
    test = data.WindowDataset(data.load_corpus(args.corpus), "test")
    reference = np.stack([test.roll(i) for i in range(len(test))])
    ref_modes = [l["mode"] for l in test.labels]
    columns = {}
    modes = [i % 2 for i in range(args.n)]  # half major, half minor
    for name, ckpt in ckpts.items():
        start = time.perf_counter()
        rolls = np.concatenate([pipeline.generate(ckpt, len(chunk), style=args.corpus, mode=list(chunk),
                                                  steps=args.steps, guidance_scale=args.guidance,
                                                  seed=args.seed + k)
                                for k, chunk in enumerate(np.array_split(modes, max(1, args.n // 64)))])
        print(f"{name}: {args.n} samples in {time.perf_counter() - start:.1f} s")
        columns[name] = metrics.evaluate(rolls, first.spec, reference=reference, requested_modes=modes)
    columns["real test (ceiling)"] = metrics.evaluate(reference, first.spec, reference=reference,
                                                      requested_modes=ref_modes)
    columns["noise (floor)"] = metrics.evaluate(pipeline.noise_rolls(first, args.n), first.spec,
                                                reference=reference, requested_modes=modes)
    print(metrics.format_table(columns))
    if args.json:
        Path(args.json).write_text(json.dumps(columns, indent=1))


def cmd_bench(args) -> None:
    from . import pipeline
    _threads(args.threads)
    ckpt = pipeline.load(args.checkpoint)
    music_seconds = pipeline.duration_seconds(ckpt.encoding.shape()[-1], ckpt.spec, args.tempo)
    print(f"checkpoint {args.checkpoint or pipeline.DEFAULT_CHECKPOINT}, torch threads {torch.get_num_threads()}, "
          f"4 bars = {music_seconds:.1f} s of music at {args.tempo:g} BPM")
    cases = [("DDIM-50", "ddim", 50, 1), ("DDIM-50", "ddim", 50, 64), ("DDPM-1000", "ddpm", 1000, 1)]
    if args.quick:
        cases = cases[:2]
    for name, sampler, steps, n in cases:
        pipeline.generate(ckpt, n, sampler="ddim", steps=2, seed=0)  # warm-up
        times = []
        for repeat in range(args.repeats if n == 1 else 1):
            start = time.perf_counter()
            pipeline.generate(ckpt, n, sampler=sampler, steps=steps, seed=repeat, guidance_scale=args.guidance)
            times.append(time.perf_counter() - start)
        best = min(times)
        print(f"{name:9s} batch {n:3d}: {best:6.2f} s  ({best / n:.3f} s a sample; real-time factor "
              f"{best / n / music_seconds:.3f} = generation time / playing time)")


# ---------------------------------------------------------------------- argument parsing

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
        return p

    p = add("demo", cmd_demo, "generate three 4-bar pieces (MIDI, WAV, PNG) from the bundled checkpoint")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--seed", type=int, default=0)

    p = add("prepare-data", cmd_prepare_data, "parse music21's corpus into the cached datasets")
    p.add_argument("corpora", nargs="*", default=["bach", "folk"], choices=["bach", "folk"])
    p.add_argument("--cache-dir", default=None, help="default: assets/data")
    p.add_argument("--keep", action="store_true", help="load an existing cache instead of rebuilding it")

    p = add("train", cmd_train, "train a denoiser and save a checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--corpora", nargs="+", default=["bach", "folk"])
    p.add_argument("--encoding", choices=["voice", "pianoroll"], default="voice")
    p.add_argument("--prediction", choices=["eps", "x0", "v"], default="v")
    p.add_argument("--schedule", choices=["linear", "cosine", "sigmoid"], default="cosine")
    p.add_argument("--timesteps", type=int, default=1000)
    p.add_argument("--channels", type=int, default=None, help="base width (default: the model kind's default)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--transpose", type=int, default=0, help="random transposition range (semitones)")
    p.add_argument("--valid-every", type=int, default=500)
    p.add_argument("--snapshots", action="store_true", help="also save OUT_stepN.pt at every validation")
    p.add_argument("--attention", type=int, choices=[0, 1], default=None, help="self-attention at the lowest level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")

    p = add("generate", cmd_generate, "generate samples to MIDI, WAV and PNG files")
    p.add_argument("--out", default="out/generate")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--style", default="bach")
    p.add_argument("--mode", choices=["major", "minor"], default=None)
    p.add_argument("--density", type=float, default=None)
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance scale w")
    p.add_argument("--tempo", type=float, default=90.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stem", default="sample")
    p.add_argument("--quiet", action="store_true")

    p = add("evaluate", cmd_evaluate, "metrics of samples vs the real test split (ceiling) and noise (floor)")
    p.add_argument("--checkpoint", nargs="*", default=None)
    p.add_argument("--corpus", default="bach", choices=["bach", "folk"])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the table as JSON")

    p = add("bench", cmd_bench, "sampling speed and real-time factor")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--tempo", type=float, default=90.0)
    p.add_argument("--guidance", type=float, default=0.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="skip DDPM-1000")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as err:  # our errors carry a sentence that says what to do
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
