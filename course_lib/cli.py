"""``python -m course_lib COMMAND``: demo, prepare-data, train, train-classifier, generate, evaluate, bench, soundtrack.

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

from . import inputs
from .inputs import fraction, float_in, int_in, nonneg_float, nonneg_int, plain_name, positive_int

GUIDANCE = float_in(0.0, 100.0)  # guidance scales: finite, >= 0 (NaN would silently give silence)
TEMPO = float_in(20.0, 400.0)  # music.MIN_TEMPO .. MAX_TEMPO
LEARNING_RATE = float_in(0.0, 1.0, low_inclusive=False)
CHECKPOINT_HELP = "denoiser checkpoint file (default: the bundled assets/checkpoints/soundtracks.pt)"
SEED_HELP = "random seed, a whole number >= 0 (default 0): the same seed gives the same music"
QUIET_HELP = "no progress bars"
C2ST_MIN_SAMPLES = 10  # realism.two_sample_test: 2 x its 5 folds
FORCE_HELP = "overwrite output files that exist already (default: refuse, so nothing is lost)"


def decoder_rules(text: str) -> dict:
    """argparse type: ``crossing=3,spacing=2`` -> {"crossing": 3.0, "spacing": 2.0}, checked against
    ``decoding.DecodingRules`` (its names, weights >= 0; classes and reach whole numbers)."""
    from dataclasses import fields

    from . import decoding
    known = {f.name: f.type for f in fields(decoding.DecodingRules)}
    rules = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in known or not value.strip():
            raise argparse.ArgumentTypeError(f"{item!r}: want NAME=WEIGHT with NAME one of {', '.join(known)}")
        try:
            rules[name] = int(value) if name in ("classes", "reach") else float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: {value.strip()!r} is not a number") from None
    try:
        decoding.DecodingRules(**rules)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if any(not np.isfinite(v) for v in rules.values()):
        raise argparse.ArgumentTypeError(f"{text!r}: the weights must be finite")
    return rules


def _threads(n: int) -> None:
    torch.set_num_threads(max(1, n))


# ---------------------------------------------------------------------- commands

def cmd_prepare_data(args) -> None:
    from . import data
    if args.midi_dir is not None or args.name is not None:
        return _prepare_midi(args)
    unknown = [name for name in args.corpora if name not in data.PREPARERS]
    if unknown:
        raise inputs.InputError(f"prepare-data {unknown[0]}: the bundled corpora are {', '.join(data.PREPARERS)}; "
                                "for your own MIDI files give --midi-dir DIR --name NAME")
    loaded = []
    for name in args.corpora or list(data.PREPARERS):
        start = time.perf_counter()
        corpus = data.load_corpus(name, cache_dir=args.cache_dir, rebuild=not args.keep)
        how = "loaded from cache" if corpus.from_cache else "prepared"
        print(f"{how} in {time.perf_counter() - start:.1f} s -> {Path(args.cache_dir or data.CACHE_DIR) / name}.npz")
        print(corpus.report())
        loaded.append(corpus)
    print(data.prepare_table(loaded))


def _prepare_midi(args) -> None:
    """prepare-data --midi-dir DIR --name NAME: the user's MIDI files as a corpus cached as NAME.npz."""
    from . import data
    if args.midi_dir is None or args.name is None:
        raise inputs.InputError("give both --midi-dir DIR (your MIDI files) and --name NAME (the corpus and style "
                                "name that train --corpora and generate --style will use)")
    if args.name in data.PREPARERS:
        raise inputs.InputError(f"--name {args.name} is a bundled corpus; give your own corpus another name")
    out = Path(args.cache_dir or data.CACHE_DIR) / f"{args.name}.npz"
    inputs.check_output_file(out, "the corpus cache", force=args.force)  # before reading a single file
    corpus = data.midi_corpus(args.midi_dir, args.name)
    print(data.prepare_table([corpus]))
    for file, reason in corpus.rejected_files:
        print(f"  skipped {file}: {reason}")
    if not len(corpus):
        raise inputs.InputError(f"none of the MIDI files under {args.midi_dir} fits the model's layout (reasons above: "
                                "it needs 4/4 pieces with 4 parts or 1 melody); nothing was written")
    with inputs.atomic_paths([out]) as (temp,):
        corpus.save(temp)
    print(f"prepared {args.name} in {corpus.prepare_seconds:.1f} s -> {out}; train on it with "
          f"python -m course_lib train --corpora {args.name} ..." + (f" --cache-dir {args.cache_dir}" if args.cache_dir else ""))


def _corpus(name: str, cache_dir=None):
    """A corpus by name from --cache-dir; a bundled one not cached there comes from assets/data."""
    from . import data
    if name in data.PREPARERS and cache_dir and not (Path(cache_dir) / f"{name}.npz").exists():
        cache_dir = None
    return data.load_corpus(name, cache_dir=cache_dir)


def _datasets(corpora: list[str], encoding, transpose: int, cache_dir=None, styles=None):
    from . import data
    loaded = [_corpus(name, cache_dir) for name in corpora]
    styles = styles or data.styles_of(loaded)
    train = data.WindowDataset(loaded, "train", encoding, transpose_range=transpose, styles=styles)
    valid = data.WindowDataset(loaded, "valid", encoding, styles=styles)
    return loaded, train, valid


def _resume_file(path) -> Path:
    """``--resume X.pt``: X.pt if it carries a training state, else the X.resume.pt written beside it."""
    path = Path(path)
    beside = path.with_name(f"{path.stem}.resume.pt")
    if path.exists() and not path.name.endswith(".resume.pt") and beside.exists():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(blob, dict) and "training" not in blob:
            return beside
    return path


def cmd_train(args) -> None:
    from . import data, devices, encoding as encodings, models, schedules, train as training
    _threads(args.threads)
    _check_checkpoint_out(args)
    if args.cache_dir is not None and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        raise inputs.InputError(f"--cache-dir {args.cache_dir} is a file, not a folder; give the folder of the corpus caches")
    if args.style_weights and not sum(args.style_weights) > 0:
        raise inputs.InputError(f"--style-weights {args.style_weights}: give at least one weight > 0")
    device = devices.start_processes(devices.pick_device(args.device))  # under torchrun: join the others
    devices.check_precision(args.precision, device)
    rank, world_size = devices.world()
    say = print if rank == 0 else (lambda *a, **k: None)  # only process 0 talks and writes
    resume = None
    if args.resume:  # the run's own settings, data, weights, optimizer and random states
        path = _resume_file(args.resume)
        resume, ckpt = training.load_training_state(path), training.load_checkpoint(path)
        encoding, schedule, config, styles = ckpt.encoding, ckpt.schedule, ckpt.model.config, ckpt.styles
        saved = ckpt.meta["train"]
        saved["style_weights"] = tuple(saved["style_weights"]) if saved.get("style_weights") else None
        train_config = training.TrainConfig(**{**saved, "steps": args.steps or saved["steps"], "threads": args.threads})
        corpora, transpose = list(ckpt.meta["data"]["corpora"]), ckpt.meta["data"]["transpose_range"]
        loaded, train_set, valid_set = _datasets(corpora, encoding, transpose, args.cache_dir, styles)
        say(f"resuming {path} at step {resume['step']} of {train_config.steps}")
    else:
        corpora, transpose = args.corpora, args.transpose
        encoding = encodings.ENCODINGS[args.encoding]()
        if args.encoding == "voice" and args.voice_ranges == "data":
            encoding = encodings.VoiceEncoding(encoding.spec, data.voice_ranges(
                [_corpus(c, args.cache_dir) for c in corpora]))
        loaded, train_set, valid_set = _datasets(corpora, encoding, transpose, args.cache_dir)
        styles = train_set.styles
        kind = "unet1d" if args.encoding == "voice" else "unet2d"
        config = models.ModelConfig(kind=kind, in_channels=encoding.shape()[0], channels=args.channels,
                                    prediction=args.prediction, n_styles=len(styles),
                                    use_mode=True, use_density=True, attention=None if args.attention is None
                                    else bool(args.attention))
        schedule = schedules.make_schedule(args.schedule, args.timesteps)
        train_config = training.TrainConfig(steps=args.steps or 6000, batch_size=args.batch_size, lr=args.lr,
                                            seed=args.seed, threads=args.threads, valid_every=args.valid_every,
                                            style_weights=tuple(args.style_weights) if args.style_weights else None)
    if not len(train_set):  # the split is by piece: a handful of pieces may all land in valid/test
        raise inputs.InputError(f"{', '.join(corpora)} give(s) no training windows: every piece fell in the "
                                "valid/test split (by a hash of its name); add pieces (about ten or more)")
    if not len(valid_set):
        say("no validation windows (every piece fell in the train or test split): training without validation")
    training.seed_everything(train_config.seed)
    model = models.build_model(config)
    params = sum(p.numel() for p in model.parameters())
    where = f"{device}" + (f" x {world_size} processes" if world_size > 1 else "")
    say(f"training {config.kind} ({params / 1e6:.2f}M parameters, {config.prediction}-prediction, {schedule.kind} "
        f"schedule) on {len(train_set)} windows ({', '.join(corpora)}; styles {', '.join(styles)}), "
        f"{train_config.steps} steps on {where}, {args.precision}")
    data_description = {"corpora": {c.name: {"pieces": len(c), "rejected": c.rejected} for c in loaded},
                        "train_windows": len(train_set), "valid_windows": len(valid_set),
                        "split": "by piece: crc32(piece id) % 10 == 0 test, 1 valid, else train",
                        "transpose_range": transpose}
    start, cpu_start = time.perf_counter(), time.process_time()
    history = list(resume["history"]) if resume else []
    machine = (f"{world_size} x " if world_size > 1 else "") + (
        f"{torch.get_num_threads()} CPU thread(s)" if device.type == "cpu" else
        torch.cuda.get_device_name(device) if device.type == "cuda" else str(device))

    def save(ema, path, state=None):
        card = {"command": "python -m course_lib " + " ".join(sys.argv[1:]),
                "train_seconds": round(time.perf_counter() - start, 1), "history": history,
                "cpu_seconds": round(time.process_time() - cpu_start, 1),
                "machine": f"{machine}, {args.precision}, torch {torch.__version__}"}
        return training.save_checkpoint(path, ema, schedule, encoding, train_config=train_config,
                                        data=data_description, card=card, styles=styles, training_state=state)

    resume_path = Path(args.out).with_name(f"{Path(args.out).stem}.resume.pt")

    latest = {}

    def snapshot(row, ema):  # every validation: the latest weights, so a long run can be evaluated early
        history.append(row)
        latest["ema"] = ema

    def keep_state(state):  # ... and everything needed to go on from here (train --resume)
        save(latest["ema"], resume_path, state)
        if args.snapshots:
            save(latest["ema"], Path(args.out).with_name(f"{Path(args.out).stem}_step{state['step']}.pt"), state)

    try:
        result = training.train(model, schedule, train_set, valid_set if len(valid_set) else None, train_config,
                                progress=not args.quiet,
                                on_validation=snapshot, on_state=keep_state, device=device,
                                precision=args.precision, resume=resume)
        if rank == 0:
            path = save(result["ema"], args.out)
            print(f"trained in {(time.perf_counter() - start) / 60:.1f} min; saved {path} "
                  f"({path.stat().st_size / 1e6:.1f} MB); to train on: --resume {resume_path}")
        if world_size > 1:
            say(f"{world_size} processes, largest weight difference from process 0: "
                f"{result['difference_between_processes']:.3g}")
    finally:
        devices.stop_processes()


def _check_checkpoint_out(args) -> None:
    """train / train-classifier --out: a new file in a writable folder, never a bundled asset by default;
    checked before minutes of work."""
    from . import ASSETS
    inputs.check_output_file(args.out, "--out", force=args.force, protected=[ASSETS])
    if not Path(args.out).name.endswith(".pt"):
        raise inputs.InputError(f"--out {args.out}: checkpoint files end in .pt")


def cmd_train_classifier(args) -> None:
    from . import classifiers, data, encoding as encodings, schedules
    _threads(args.threads)
    _check_checkpoint_out(args)
    inputs.check_new_files([Path(args.out).with_suffix(".md")], force=args.force)  # its model card
    encoding = encodings.VoiceEncoding()
    if args.voice_ranges == "data":
        encoding = encodings.VoiceEncoding(encoding.spec, data.voice_ranges([data.load_corpus(c) for c in args.corpora]))
    loaded, train_set, valid_set = _datasets(args.corpora, encoding, 0)
    test = classifiers._as_tensors(data.WindowDataset(loaded, "test", encoding))
    noisy = args.kind == "noisy"
    schedule = schedules.make_schedule(args.schedule, args.timesteps) if noisy else None
    config = classifiers.ClassifierConfig(in_channels=encoding.shape()[0], channels=args.channels, noisy=noisy)
    train_config = classifiers.ClassifierTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                                     seed=args.seed, threads=args.threads)
    torch.manual_seed(args.seed)
    classifier = classifiers.build_classifier(config)
    params = sum(p.numel() for p in classifier.parameters())
    out = Path(args.out)
    print(f"training the {args.kind} classifier ({params:,} parameters) on {len(train_set)} windows, {args.steps} steps")
    start, cpu_start = time.perf_counter(), time.process_time()
    history = classifiers.train_classifier(classifier, train_set, valid_set, train_config, schedule=schedule,
                                           progress=not args.quiet, device=args.device)
    classifier.cpu()
    command = (f"python -m course_lib train-classifier --kind {args.kind}" + (f" --out {args.out}" if args.out else "")
               + f" --voice-ranges {args.voice_ranges} --steps {args.steps} --batch-size {args.batch_size} --lr {args.lr:g} --channels {args.channels}"
               f" --corpora {' '.join(args.corpora)} --seed {args.seed} --threads {args.threads}"
               + (f" --schedule {args.schedule} --timesteps {args.timesteps}" if noisy else ""))
    card = {"kind": args.kind, "parameters": params, "steps": args.steps, "batch_size": args.batch_size,
            "train_seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(time.process_time() - cpu_start, 1),
            "machine": f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}",
            "command": command,
            "data": {"corpora": list(args.corpora), "train_windows": len(train_set),
                     "valid_windows": len(valid_set), "test_windows": len(test[0])},
            "history": history, "test_accuracy": classifiers.accuracy(classifier, *test, schedule=schedule)}
    if noisy:
        card["schedule"] = schedule.to_dict()
        card["test_accuracy_by_t"] = {str(t): classifiers.accuracy(classifier, *test, t=t, schedule=schedule)
                                      for t in (0, args.timesteps // 4, args.timesteps // 2, 3 * args.timesteps // 4,
                                                9 * args.timesteps // 10)}
    path = classifiers.save_classifier(out, classifier, encoding, schedule=schedule, card=card)
    path.with_suffix(".md").write_text(classifiers.model_card(card))
    print(classifiers.model_card(card))
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB) and its model card {path.with_suffix('.md')}")


def training_styles():
    from . import data
    return data.STYLES


def cmd_generate(args) -> None:
    from . import pipeline
    _threads(args.threads)
    inputs.check_output_dir(args.out, create=False)  # before the model loads and samples
    inputs.check_new_files(pipeline.output_paths(args.out, args.n, args.stem), force=args.force)
    long_form = args.form is not None or args.bars != 4  # issue 17: a whole piece with a form
    if long_form and (args.continue_from or args.infill or args.transition or args.style_transfer):
        raise inputs.InputError("--bars/--form write a whole piece from nothing; leave out --continue, --infill, "
                                "--transition and --style-transfer (or --bars/--form)")
    if long_form and args.sampler != "ddim":
        raise inputs.InputError("a long-form piece is sampled window by window with DDIM; leave out --sampler ddpm")
    ckpt = pipeline.load(args.checkpoint, device=args.device)
    defaults = pipeline.sampling_defaults(ckpt)  # issue 14: the default output is what the model card recommends
    if args.steps is None:
        from . import longform
        args.steps = longform.DEFAULT_STEPS if long_form else defaults["steps"]
    if args.guidance is None:
        args.guidance = defaults["guidance_scale"]
    start = time.perf_counter()
    titles = None
    if long_form:
        rolls, titles = _long_form_rolls(ckpt, args)
    elif args.continue_from or args.infill or args.transition or args.style_transfer:
        rolls, titles = _task_rolls(ckpt, args)
    else:
        rolls = pipeline.generate(ckpt, args.n, style=args.style, mode=args.mode, density=args.density,
                                  sampler=args.sampler, steps=args.steps, guidance_scale=args.guidance,
                                  seed=args.seed, progress=not args.quiet)
    seconds = time.perf_counter() - start
    paths = pipeline.write_outputs(rolls, args.out, ckpt.spec, stem=args.stem, tempo=args.tempo, titles=titles,
                                   overwrite=args.force)
    print(f"generated {args.n} sample(s) in {seconds:.2f} s; wrote {len(paths)} files to {args.out}:")
    for p in paths:
        print(f"  {p}")


def _long_form_rolls(ckpt, args) -> tuple[np.ndarray, list[str]]:
    """generate --bars N --form F: n pieces of N bars in form F (``longform.generate_piece``), with its plan."""
    from . import longform
    form = args.form if args.form is not None else longform.DEFAULT_FORM
    piece = longform.generate_piece(ckpt, args.n, bars=args.bars, form=form, style=args.style,
                                    mode=args.mode or "major", density=args.density, steps=args.steps,
                                    guidance_scale=args.guidance, seed=args.seed, progress=not args.quiet)
    print(piece.describe())
    return piece.rolls, [f"{piece.form} over {args.bars} bars (seed {args.seed}, piece {i})" for i in range(args.n)]


def _task_rolls(ckpt, args) -> tuple[np.ndarray, list[str]]:
    """generate --continue / --infill / --transition / --style-transfer: the rolls and their titles.

    The given music is moved to tonic C (the model saw only C), labelled with its own mode unless
    --mode says otherwise, and the results are moved back to the given key."""
    from . import tasks
    spec, n = ckpt.spec, args.n
    paths = args.transition or [args.continue_from or args.infill or args.style_transfer]
    min_bars = 2 if args.continue_from else 4 if args.infill else 1
    (roll, given_tracks), *more = [tasks.load_roll(path, spec, min_bars=min_bars) for path in paths]
    if args.sampler != "ddim":
        raise ValueError("the generation tasks sample with DDIM; leave out --sampler ddpm")
    roll_c, shift = tasks.to_tonic_c(roll, spec)
    options = dict(style=args.style, mode=args.mode or tasks.key_of(roll, spec)[1], density=args.density,
                   steps=args.steps, guidance_scale=args.guidance, seed=args.seed, progress=not args.quiet)
    name = Path(paths[0]).name
    if args.continue_from:
        rolls = tasks.continuation(ckpt, roll_c, n, given_bars=2, given_tracks=given_tracks, **options).rolls
        what = f"{name}: bars 1-2 given, 3-4 generated"
    elif args.infill:
        rolls = tasks.infill(ckpt, roll_c[..., :4 * spec.steps_per_bar], n, first_bar=2, last_bar=3,
                             given_tracks=given_tracks, **options).rolls
        what = f"{name}: bars 1 and 4 given, 2-3 generated"
    elif args.transition:
        (roll_b, tracks_b), = more
        roll_b = tasks.shift_roll(roll_b, shift, spec)  # both pieces move together: the bridge modulates
        given = sorted(set(given_tracks) & set(tracks_b))
        bridges = tasks.transition(ckpt, roll_c, roll_b, n, context_bars=1, given_tracks=given, **options).rolls
        rolls = np.stack([tasks.stitch(roll_c, bridge, roll_b, 1, spec) for bridge in bridges])
        what = f"{name}, a 2-bar bridge, then {Path(paths[1]).name}"
    else:
        rolls = tasks.style_transfer(ckpt, roll_c, n=n, strength=args.strength, by=args.by,
                                     classifier_scale=args.classifier_scale, **options).rolls
        what = f"{name} toward {args.style} by {args.by} (strength {args.strength:g})"
    rolls = np.stack([tasks.shift_roll(r, -shift, spec) for r in rolls])
    return rolls, [f"{what} (seed {args.seed}, sample {i})" for i in range(n)]


DEMO_REQUESTS = [("bach", "major"), ("bach", "minor"), ("folk", "major")]
DEMO_STEMS = [f"{style}_{mode}" for style, mode in DEMO_REQUESTS]


def cmd_demo(args) -> None:
    from . import pipeline
    _threads(args.threads)
    inputs.check_output_dir(args.out, create=False)
    inputs.check_new_files([p for stem in DEMO_STEMS for p in pipeline.output_paths(args.out, 1, stem)], force=args.force)
    ckpt = pipeline.load(args.checkpoint)
    print(f"model: {args.checkpoint or pipeline.DEFAULT_CHECKPOINT}")
    for i, (style, mode) in enumerate(DEMO_REQUESTS):
        start = time.perf_counter()
        roll = pipeline.generate(ckpt, 1, style=style, mode=mode, seed=args.seed + i, guidance_scale=args.guidance)
        seconds = time.perf_counter() - start
        paths = pipeline.write_outputs(roll, args.out, ckpt.spec, stem=f"{style}_{mode}", overwrite=args.force,
                                       titles=[f"Generated: {style}, {mode} (seed {args.seed + i})"])
        print(f"{style:5s} {mode:5s}: {seconds:.2f} s to generate 4 bars ->")
        for p in paths:
            print(f"  {p}")


def cmd_evaluate(args) -> None:
    from . import metrics, pipeline, realism
    _threads(args.threads)
    if args.json:  # checked before minutes of sampling; a JSON report may be replaced
        inputs.check_output_file(args.json, "--json", force=True)
    if args.card and not args.checkpoint:  # bundled assets are never a default output
        raise inputs.InputError("--card writes into the checkpoint it evaluates; name it with --checkpoint FILE "
                                "(the bundled model is not rewritten by default)")
    paths = args.checkpoint or [pipeline.DEFAULT_CHECKPOINT]
    ckpts = {Path(p).stem: pipeline.load(p, device=args.device) for p in paths}
    first = next(iter(ckpts.values()))
    reference, pieces, test = realism.real_windows(args.corpus, "test")
    ref_modes = [l["mode"] for l in test.labels]
    four_voices = first.spec.n_tracks == 4 and args.corpus == "bach"
    if four_voices and args.n < C2ST_MIN_SAMPLES:  # refused now, not after minutes of sampling
        raise inputs.InputError(f"--n {args.n}: the two-sample test of four-voice samples needs --n >= {C2ST_MIN_SAMPLES}")
    columns, settings, telltales = {}, {}, {}
    modes = [i % 2 for i in range(args.n)]  # half major, half minor
    for name, ckpt in ckpts.items():
        defaults = pipeline.sampling_defaults(ckpt)
        used = {"sampler": "ddim", "steps": args.steps or defaults["steps"],
                "guidance_scale": defaults["guidance_scale"] if args.guidance is None else args.guidance,
                "voice_leading": defaults["voice_leading"] if args.voice_leading is None else args.voice_leading,
                "voice_leading_weights": defaults.get("voice_leading_weights", {}),
                "decoder": defaults["decoder"] if args.decoder is None else args.decoder,
                "decoder_rules": defaults.get("decoder_rules", {}) if args.decoder_rules is None else args.decoder_rules}
        start = time.perf_counter()
        rolls = np.concatenate([pipeline.generate(ckpt, len(chunk), style=args.corpus, mode=list(chunk),
                                                  steps=used["steps"], guidance_scale=used["guidance_scale"],
                                                  voice_leading=used["voice_leading"], seed=args.seed + k,
                                                  decoder=used["decoder"], decoder_rules=used["decoder_rules"])
                                for k, chunk in enumerate(np.array_split(modes, max(1, args.n // 64)))])
        print(f"{name}: {args.n} samples in {time.perf_counter() - start:.1f} s "
              f"(DDIM-{used['steps']}, w = {used['guidance_scale']:g}, voice leading {used['voice_leading']:g}, "
              f"{used['decoder']} decoder" + (f" {used['decoder_rules']}" if used["decoder"] != "plain" else "") + ")")
        columns[name] = metrics.evaluate(rolls, first.spec, reference=reference, requested_modes=modes)
        settings[name] = used
        if four_voices:
            result = realism.two_sample_test(rolls, reference, groups=pieces, seed=args.seed)
            columns[name]["c2st"], telltales[name] = result.accuracy, result.telltales
    columns["real test (ceiling)"] = metrics.evaluate(reference, first.spec, reference=reference,
                                                      requested_modes=ref_modes)
    noise = pipeline.noise_rolls(first, args.n)
    columns["noise (floor)"] = metrics.evaluate(noise, first.spec, reference=reference, requested_modes=modes)
    if four_voices:  # the test's own floor: real windows of other pieces (valid split) against the test split
        valid, valid_pieces, _ = realism.real_windows(args.corpus, "valid")
        columns["real test (ceiling)"]["c2st"] = realism.two_sample_test(
            valid, reference, groups=pieces, sample_groups=valid_pieces, seed=args.seed).accuracy
        columns["noise (floor)"]["c2st"] = realism.two_sample_test(noise, reference, groups=pieces,
                                                                   seed=args.seed).accuracy
    stored = (first.meta.get("card") or {}).get("previous")
    if stored and not args.no_previous:
        columns[f"{stored['name']} (stored)"] = stored["evaluate"]
    print(metrics.format_table(columns))
    real = columns["real test (ceiling)"]
    bar = metrics.QUALITY_BAR_V2 if four_voices else metrics.QUALITY_BAR
    for name in ckpts:
        passed = metrics.compare_to_reference(columns[name], real, bar)
        print(f"{name}: quality bar " + ", ".join(f"{k} {'PASS' if ok else 'FAIL'}" for k, ok in passed.items()))
        if name in telltales:
            print(f"{name}: what gives the samples away (two-sample test weights, + = sample-like): "
                  + ", ".join(f"{feature} {weight:+.2f}" for feature, weight in telltales[name]))
    if args.json:
        with inputs.atomic_paths([args.json]) as (temp,):
            temp.write_text(json.dumps(columns, indent=1))
    if args.card:
        name = Path(paths[0]).stem
        others = {k: v for k, v in columns.items() if k in ckpts and k != name}
        _write_card(Path(paths[0]), columns, name, args, sampling=settings[name], bar=bar,
                    previous=next(iter(others.items()), None))


def _write_card(path: Path, columns: dict, name: str, args, *, sampling: dict, bar: dict, previous=None) -> None:
    """Store the evaluate table, the sampling settings it was measured with (they become the model's
    recommended ones: ``pipeline.sampling_defaults``) and, when given, the previous model's column
    (name, figures) in the checkpoint's card; write ``path.md``, its model card."""
    from . import metrics
    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(blob["meta"])
    if previous is not None:
        meta["card"]["previous"] = {"name": previous[0], "evaluate": previous[1]}
    table = {k: v for k, v in columns.items() if k == name or k.startswith(("real", "noise")) or k.endswith("(stored)")}
    if previous is not None:
        table[f"{previous[0]} (stored)"] = previous[1]
    passed = metrics.compare_to_reference(columns[name], columns["real test (ceiling)"], bar)
    meta["card"]["evaluate"] = table
    meta["card"]["evaluate_command"] = "python -m course_lib " + " ".join(sys.argv[1:])
    meta["card"]["quality_bar"] = passed
    meta["card"]["sampling"] = sampling
    blob["meta"] = json.dumps(meta)
    with inputs.atomic_paths([path]) as (temp,):  # a run killed while saving leaves the checkpoint intact
        torch.save(blob, temp)
    card, train_cfg, model_cfg = meta["card"], meta.get("train") or {}, meta["model"]
    history = card.get("history", [])
    lines = [f"# Model card: `{path.name}`", "",
             f"- **Model:** {model_cfg['kind']}, base width {model_cfg['channels']}, widths x{model_cfg['channel_mults']}, "
             f"attention {model_cfg['attention']}, {model_cfg['prediction']}-prediction; labels: style "
             f"({model_cfg['n_styles']}), mode {model_cfg['use_mode']}, density {model_cfg['use_density']}.",
             f"- **Encoding:** {meta['encoding']['name']} (tracks {meta['encoding']['spec']['tracks']}, MIDI "
             f"{meta['encoding']['spec']['low']}..{meta['encoding']['spec']['high'] - 1}, 16th notes, 4 bars; height "
             f"channel spans per voice: {meta['encoding'].get('ranges', 'the whole range')}).",
             f"- **Recommended sampling** (what `generate`, `demo` and the lessons use by default): DDIM-"
             f"{sampling['steps']}, classifier-free guidance w = {sampling['guidance_scale']:g}, voice-leading "
             f"correction {sampling['voice_leading']:g} (weights {sampling.get('voice_leading_weights', {})}), "
             + (f"the rule-aware decoder (`course_lib.decoding`) with {sampling.get('decoder_rules', {})}."
                if sampling.get("decoder") == "voice_leading" else "the plain decoder."),
             f"- **Schedule:** {meta['schedule']}.",
             f"- **Data:** {json.dumps(meta['data'].get('corpora', {}))[:400]}; train windows "
             f"{meta['data'].get('train_windows')}, valid windows {meta['data'].get('valid_windows')}; "
             f"split {meta['data'].get('split')}.",
             f"- **Training:** `{card.get('command')}`: {train_cfg.get('steps')} steps, batch {train_cfg.get('batch_size')}, "
             f"AdamW lr {train_cfg.get('lr')}, EMA {train_cfg.get('ema_decay')}, label dropout "
             f"{train_cfg.get('label_dropout')} (all) + {train_cfg.get('label_dropout_each')} (each); "
             f"{card.get('train_seconds', 0) / 60:.1f} min wall time"
             + (f", {card['cpu_seconds'] / 60:.1f} CPU-minutes" if card.get("cpu_seconds") else "")
             + f" on {card.get('machine')}.",
             f"- **Loss:** " + ", ".join(f"step {h['step']}: valid {h.get('valid_loss', float('nan')):.3f}"
                                        for h in history[:: max(1, len(history) // 6)] + history[-1:]), "",
             f"## Evaluation (`{card['evaluate_command']}`)", "", "```", metrics.format_table(table), "```", "",
             "Quality bar: " + ", ".join(f"{k} {'pass' if ok else 'FAIL'}" for k, ok in passed.items()) + "."]
    notes = path.with_suffix(".notes.md")
    if notes.exists():  # hand-written measurements (speed, comparison) kept beside the generated card
        lines += ["", notes.read_text().strip()]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote the model card {path.with_suffix('.md')} and stored the table in {path}")


def cmd_bench(args) -> None:
    from . import pipeline
    _threads(args.threads)
    ckpt = pipeline.load(args.checkpoint, device=args.device)
    music_seconds = pipeline.duration_seconds(ckpt.encoding.shape()[-1], ckpt.spec, args.tempo)
    print(f"checkpoint {args.checkpoint or pipeline.DEFAULT_CHECKPOINT}, torch threads {torch.get_num_threads()}, "
          f"4 bars = {music_seconds:.1f} s of music at {args.tempo:g} BPM")
    defaults = pipeline.sampling_defaults(ckpt)
    default = (f"default (card: {defaults['sampler'].upper()}-{defaults['steps']}, w = {defaults['guidance_scale']:g}, "
               f"{defaults['decoder']} decoder" + (f", voice leading {defaults['voice_leading']:g}"
                                                   if defaults["voice_leading"] else "") + ")")
    plain = {"sampler": "ddim", "steps": 50, "guidance_scale": args.guidance, "voice_leading": 0.0, "decoder": "plain"}
    ddpm = {**plain, "sampler": "ddpm", "steps": 1000}
    cases = [(default, {}, 1), (default, {}, 64), (f"DDIM-50, w = {args.guidance:g}, plain decoder", plain, 1),
             (f"DDIM-50, w = {args.guidance:g}, plain decoder", plain, 64),
             (f"DDPM-1000, w = {args.guidance:g}, plain decoder", ddpm, 1)]
    if args.quick:
        cases = cases[:4]
    width = max(len(name) for name, _, _ in cases)
    for name, settings, n in cases:
        pipeline.generate(ckpt, n, sampler="ddim", steps=2, seed=0)  # warm-up
        times = []
        for repeat in range(args.repeats if n == 1 else 1):
            start = time.perf_counter()
            pipeline.generate(ckpt, n, seed=repeat, **settings)  # what the card leaves out: its defaults
            times.append(time.perf_counter() - start)
        best = min(times)
        print(f"{name:{width}s} batch {n:3d}: {best:6.2f} s  ({best / n:.3f} s a sample; real-time factor "
              f"{best / n / music_seconds:.3f} = generation time / playing time)")


def cmd_soundtrack(args) -> None:
    from . import pipeline, soundtrack
    _threads(args.threads)
    states = soundtrack.DEFAULT_STATES
    inputs.check_output_dir(args.out, create=False)
    inputs.check_new_files(soundtrack.Soundtrack.output_paths(args.out, args.stem), force=args.force)
    if args.mapping:
        try:
            states = json.loads(inputs.check_regular_file(args.mapping, "--mapping JSON file").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{args.mapping} is not valid JSON ({err}); write {{state: {{'style': ..., "
                             "'mode': ..., 'density': ..., 'tempo': ...}}}") from None
    timeline = soundtrack.parse_timeline(args.states, soundtrack.check_states(states))  # before the model loads
    engine = soundtrack.SoundtrackEngine(pipeline.load(args.checkpoint), states, keep_bars=args.keep_bars,
                                         transition_bars=args.transition_bars, steps=args.steps,
                                         guidance_scale=args.guidance, seed=args.seed)
    engine.advance(timeline[0][0])  # warm-up (first call pays for lazy initialisation), not timed below
    track = engine.render(timeline, progress=not args.quiet)
    report = engine.latency()
    paths = track.write(args.out, stem=args.stem, overwrite=args.force)
    print(f"soundtrack: {track.bars} bars, {track.duration():.1f} s; DDIM-{args.steps}, keep {args.keep_bars} bar(s), "
          f"{args.transition_bars} transition bar(s), torch threads {torch.get_num_threads()}")
    print(report)
    print("\nconditions asked vs measured per state (data.window_labels on chunks of up to 4 bars):")
    print(soundtrack.format_rows(soundtrack.condition_report(track, states), "state"))
    print("\n|pitch jump| per voice at seams vs bar lines (semitones; large = over a fifth):")
    print(soundtrack.format_rows(soundtrack.seam_report(track, soundtrack.reference_rolls()), "where"))
    print(f"wrote {len(paths)} files:")
    for path in paths:
        print(f"  {path}")


# ---------------------------------------------------------------------- argument parsing

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="python -m course_lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrors)

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--threads", type=int_in(1, 256), default=2, help="torch CPU threads (default 2)")
        return p

    p = add("demo", cmd_demo, "generate three 4-bar pieces (MIDI, WAV, PNG) from the bundled checkpoint")
    p.add_argument("--out", default="out/demo", help="folder for the MIDI, WAV and PNG files (default out/demo)")
    p.add_argument("--guidance", type=GUIDANCE, default=None,
                   help="classifier-free guidance scale w (default: the checkpoint's recommended, 3 for the bundled model)")
    p.add_argument("--checkpoint", default=None, help=CHECKPOINT_HELP)
    p.add_argument("--seed", type=nonneg_int, default=0, help=SEED_HELP)
    p.add_argument("--force", action="store_true", help=FORCE_HELP)

    p = add("prepare-data", cmd_prepare_data, "parse music21's corpus, or a folder of your own MIDI files "
            "(--midi-dir DIR --name NAME), into the cached datasets")
    p.add_argument("corpora", nargs="*", default=[],  # (choices= would refuse the empty default)
                   help="bundled corpora to prepare: bach and/or folk (default: both)")
    p.add_argument("--midi-dir", default=None, metavar="DIR",
                   help="make a corpus of every .mid/.midi file under DIR (subfolders too): 4/4 pieces with 4 parts "
                        "or 1 melody are kept and moved to C; every other file is named with its reason and skipped")
    p.add_argument("--name", type=plain_name, default=None,
                   help="with --midi-dir: the corpus's name, also its style label (train --corpora NAME, "
                        "generate --style NAME); not bach or folk")
    p.add_argument("--force", action="store_true", help="with --midi-dir: replace a cached corpus of that name")
    p.add_argument("--cache-dir", default=None, help="default: assets/data")
    p.add_argument("--keep", action="store_true", help="load an existing cache instead of rebuilding it")

    p = add("train", cmd_train, "train a denoiser and save a checkpoint (several processes: start it with "
            "torchrun --standalone --nproc_per_node=N -m course_lib train ...)")
    p.add_argument("--out", required=True, help="the checkpoint file to write (refused if it exists, unless --force)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--corpora", nargs="+", default=["bach", "folk"],
                   help="bach, folk and/or corpora of your own MIDI files (prepare-data --midi-dir DIR --name NAME)")
    p.add_argument("--cache-dir", default=None, help="where the corpora are cached (default: assets/data)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps, or auto (CUDA, then MPS, "
                   "then CPU); under torchrun each process takes GPU LOCAL_RANK")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="number precision of the forward pass: fp32 (default), or bf16/fp16 mixed precision "
                        "on CUDA (fp16 with loss scaling); refused on the CPU")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="go on with a stopped run from its OUT.resume.pt (written at every validation) or a "
                        "--snapshots file: its settings, data, weights, EMA, optimizer and random states; "
                        "--steps may extend it")
    p.add_argument("--encoding", choices=["voice", "pianoroll"], default="voice",
                   help="what the model sees: the compact per-voice encoding (default) or the piano roll")
    p.add_argument("--prediction", choices=["eps", "x0", "v"], default="v", help="what the network predicts (default v)")
    p.add_argument("--schedule", choices=["linear", "cosine", "sigmoid"], default="cosine",
                   help="noise schedule (default cosine)")
    p.add_argument("--timesteps", type=int_in(2, 100_000), default=1000, help="diffusion steps T, 2..100000 (default 1000)")
    p.add_argument("--channels", type=int_in(8, 1024), default=None, help="base width (default: the model kind's default)")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (default 6000; with --resume: the run's own)")
    p.add_argument("--batch-size", type=int_in(1, 4096), default=64,
                   help="windows per step, over all processes (a multiple of their number)")
    p.add_argument("--lr", type=LEARNING_RATE, default=1e-3, help="AdamW learning rate, 0 < lr <= 1 (default 1e-3)")
    p.add_argument("--transpose", type=int_in(0, 11), default=0, help="random transposition range (semitones)")
    p.add_argument("--voice-ranges", choices=["data", "whole"], default="data",
                   help="voice encoding: each voice's height channel spans that voice's range in the data "
                        "(default), or the whole pitch range for every voice (the first bundled model)")
    p.add_argument("--valid-every", type=positive_int, default=500, help="steps between validations and resume states (default 500)")
    p.add_argument("--style-weights", type=nonneg_float, nargs="+", default=None,
                   help="relative share of each style in a batch, in data.STYLES order (default: equal)")
    p.add_argument("--snapshots", action="store_true",
                   help="also save OUT_stepN.pt (resumable) at every validation")
    p.add_argument("--attention", type=int, choices=[0, 1], default=None, help="self-attention at the lowest level")
    p.add_argument("--seed", type=nonneg_int, default=0, help=SEED_HELP)
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)

    p = add("train-classifier", cmd_train_classifier,
            "train the style/mode classifier that measures control (clean) or guides sampling (noisy)")
    p.add_argument("--kind", choices=["clean", "noisy"], required=True,
                   help="clean (judges finished music) or noisy (sees x_t, for classifier guidance)")
    p.add_argument("--out", required=True, help="the classifier file to write (+ a model card .md beside it); "
                   "replacing a bundled one in assets/ needs --force")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--corpora", nargs="+", default=["bach", "folk"], help="corpora to train on (default bach folk)")
    p.add_argument("--schedule", choices=["linear", "cosine", "sigmoid"], default="cosine",
                   help="noisy: the diffusion model's schedule")
    p.add_argument("--timesteps", type=int_in(2, 100_000), default=1000, help="noisy: the diffusion model's T (default 1000)")
    p.add_argument("--channels", type=int_in(8, 1024), default=32, help="base width, a multiple of 8 (default 32)")
    p.add_argument("--voice-ranges", choices=["data", "whole"], default="data",
                   help="the voice encoding's height span; must match the denoiser it guides (see train)")
    p.add_argument("--device", default="cpu", help="where to run: cpu (default), cuda, cuda:N, mps or auto "
                   "(CUDA, then MPS, then CPU)")
    p.add_argument("--steps", type=positive_int, default=1500, help="training steps (default 1500)")
    p.add_argument("--batch-size", type=int_in(1, 4096), default=64, help="windows per step (default 64)")
    p.add_argument("--lr", type=LEARNING_RATE, default=1e-3, help="AdamW learning rate, 0 < lr <= 1 (default 1e-3)")
    p.add_argument("--seed", type=nonneg_int, default=0, help=SEED_HELP)
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)

    p = add("generate", cmd_generate, "generate samples to MIDI, WAV and PNG files")
    p.add_argument("--out", default="out/generate", help="folder for the MIDI, WAV and PNG files (default out/generate)")
    p.add_argument("--checkpoint", default=None, help=CHECKPOINT_HELP)
    p.add_argument("--n", type=int_in(1, 1024), default=4, help="how many samples, 1..1024 (default 4)")
    p.add_argument("--style", default="bach", help="style label, one the checkpoint knows: bach or folk for the "
                   "bundled model, or a corpus of your own it was trained on (default bach)")
    p.add_argument("--mode", choices=["major", "minor"], default=None, help="mode label (default: the model chooses)")
    p.add_argument("--density", type=fraction, default=None,
                   help="onsets per 16th step per voice, 0..1 (~0.15 calm .. ~0.45 busy; default: the model chooses)")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim", help="ddim (--steps steps) or ddpm (all T steps)")
    p.add_argument("--steps", type=int_in(1, 100_000), default=None,
                   help="DDIM steps, 1..T (default: the checkpoint's recommended, 25 for the bundled model; 20 per "
                        "window for a long-form piece, --bars/--form)")
    p.add_argument("--guidance", type=GUIDANCE, default=None,
                   help="classifier-free guidance scale w (default: the checkpoint's recommended, 3 for the bundled model)")
    p.add_argument("--tempo", type=TEMPO, default=90.0, help="tempo of the files, 20..400 BPM (default 90)")
    p.add_argument("--seed", type=nonneg_int, default=0, help=SEED_HELP)
    p.add_argument("--stem", type=plain_name, default="sample", help="file names STEM_00.mid, ... (a plain name)")
    p.add_argument("--bars", type=int, choices=(4, 8, 16, 24, 32), default=4,
                   help="length: 4 (one window, default) or a long-form piece of 8, 16, 24 or 32 bars "
                        "(outpainting window by window, a cadence at every phrase end)")
    p.add_argument("--form", default=None,
                   help="the piece's form, equal sections named by letters: a repeated letter repeats its "
                        "section, a primed one (A') varies it, e.g. AABA or \"A A' B A\" (default: A A' B A)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--device", default="cpu", help="where to run: cpu (default), cuda, cuda:N, mps or auto "
                   "(CUDA, then MPS, then CPU)")
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    task = p.add_mutually_exclusive_group()  # lesson 6: tasks on the user's own MIDI files (4/4)
    task.add_argument("--continue", dest="continue_from", metavar="FILE",
                      help="keep the first 2 bars of FILE (4 parts, or a melody) and generate bars 3-4")
    task.add_argument("--infill", metavar="FILE", help="regenerate bars 2-3 of a 4-bar FILE, bars 1 and 4 kept")
    task.add_argument("--transition", nargs=2, metavar=("A", "B"),
                      help="A, then a bridge from A's last bar to B's first bar, then B")
    task.add_argument("--style-transfer", metavar="FILE",
                      help="re-imagine FILE in --style (noise it part-way, denoise toward the style)")
    p.add_argument("--strength", type=fraction, default=0.6,
                   help="style transfer: how far FILE is noised, 0 (unchanged) .. 1 (from noise)")
    p.add_argument("--by", choices=("label", "classifier", "both"), default="label",
                   help="style transfer toward --style by the model's label, the noisy classifier's gradient "
                        "(classifier guidance, labels null) or both")
    p.add_argument("--classifier-scale", type=float_in(0.0, 1000.0), default=30.0,
                   help="style transfer --by classifier/both: the classifier guidance scale s")

    p = add("evaluate", cmd_evaluate, "metrics of samples vs the real test split (ceiling) and noise (floor)")
    p.add_argument("--checkpoint", nargs="*", default=None, help="checkpoint file(s) to compare (default: the bundled one)")
    p.add_argument("--corpus", default="bach", choices=["bach", "folk"], help="whose test split is the reference (default bach)")
    p.add_argument("--n", type=int_in(2, 10_000), default=256, help="samples per checkpoint, 2..10000 (default 256)")
    p.add_argument("--steps", type=int_in(1, 100_000), default=None, help="DDIM steps (default: the checkpoint's recommended)")
    p.add_argument("--guidance", type=GUIDANCE, default=None,
                   help="classifier-free guidance scale w (default: the checkpoint's recommended)")
    p.add_argument("--voice-leading", type=float_in(0.0, 1000.0), default=None,
                   help="scale of the x0 correction toward the voice-leading rules, 0 = off "
                        "(default: the checkpoint's recommended)")
    p.add_argument("--decoder", choices=["plain", "voice_leading"], default=None,
                   help="how model tensors become notes: plain, or voice_leading (same rhythm, pitches chosen under "
                        "the rules of four-part writing; default: the checkpoint's recommended)")
    p.add_argument("--decoder-rules", type=decoder_rules, default=None, metavar="NAME=WEIGHT,...",
                   help="the voice_leading decoder's weights, e.g. crossing=3,spacing=2,parallels=4,leaps=3 "
                        "(names: decoding.DecodingRules; default: the checkpoint's recommended)")
    p.add_argument("--seed", type=nonneg_int, default=0, help=SEED_HELP)
    p.add_argument("--json", default=None, help="also write the table as JSON")
    p.add_argument("--device", default="cpu", help="where to run: cpu (default), cuda, cuda:N, mps or auto "
                   "(CUDA, then MPS, then CPU)")
    p.add_argument("--no-previous", action="store_true", help="leave out the previous model's stored column")
    p.add_argument("--card", action="store_true",
                   help="store the table and the sampling settings in the FIRST checkpoint and write its model card "
                        "CHECKPOINT.md; a second checkpoint's column is stored as the previous model's")

    p = add("bench", cmd_bench, "sampling speed and real-time factor")
    p.add_argument("--checkpoint", default=None, help=CHECKPOINT_HELP)
    p.add_argument("--tempo", type=TEMPO, default=90.0, help="tempo for the real-time factor, 20..400 BPM (default 90)")
    p.add_argument("--guidance", type=GUIDANCE, default=0.0, help="classifier-free guidance scale w (default 0)")
    p.add_argument("--repeats", type=int_in(1, 100), default=3, help="timed repeats of the batch-1 cases, best kept (default 3)")
    p.add_argument("--quick", action="store_true", help="skip DDPM-1000")
    p.add_argument("--device", default="cpu", help="where to run: cpu (default), cuda, cuda:N, mps or auto "
                   "(CUDA, then MPS, then CPU)")
    p = add("soundtrack", cmd_soundtrack, "an adaptive soundtrack for a timeline of game states: MIDI, WAV, PNG "
            "timeline, real-time factor")
    p.add_argument("--states", default="exploration:8,battle:8,victory:4",
                   help="the timeline, STATE:BARS,... (default: exploration:8,battle:8,victory:4)")
    p.add_argument("--mapping", default=None, help="JSON file {state: {style, mode, density, tempo}} "
                   "(default: soundtrack.DEFAULT_STATES)")
    p.add_argument("--out", default="out/soundtrack", help="folder for the MIDI, WAV and PNG files (default out/soundtrack)")
    p.add_argument("--stem", type=plain_name, default="soundtrack", help="file names STEM.mid, ... (a plain name)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--checkpoint", default=None, help=CHECKPOINT_HELP)
    p.add_argument("--steps", type=int_in(1, 1000), default=20, help="DDIM steps per window")
    p.add_argument("--keep-bars", type=int_in(1, 3), default=2, help="bars of each window kept from the music before")
    p.add_argument("--transition-bars", type=int_in(0, 2), default=1, help="bars regenerated at a state change")
    p.add_argument("--guidance", type=GUIDANCE, default=1.0, help="classifier-free guidance scale w (default 1)")
    p.add_argument("--seed", type=nonneg_int, default=0, help=SEED_HELP)
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    return parser


class OneLineErrors(argparse.ArgumentParser):
    """argparse with its usage errors in one line (exit code 2), like the commands' own errors."""

    def error(self, message):
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _ours(err: BaseException) -> bool:
    """True for an error the project raised on purpose: one of its own classes, an OSError (a file
    or folder problem), or a ValueError raised inside course_lib. A ValueError from deep inside
    torch or numpy is a bug and keeps its traceback."""
    from . import diffusion, music, train
    if isinstance(err, (inputs.InputError, music.MidiError, train.CheckpointError, diffusion.SamplingError, OSError)):
        return True
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().parent == Path(__file__).resolve().parent


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, already printed in one line)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        args.func(args)
    except (ValueError, OSError) as err:  # our errors carry a sentence that says what to do
        if not _ours(err):
            raise
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    return 0
