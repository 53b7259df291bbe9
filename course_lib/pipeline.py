"""From a checkpoint to music: conditions in words -> labels -> sampler -> decoded rolls -> files.

This is the glue the CLI, the widgets and the later lessons share:

    ckpt = pipeline.load()                                   # the bundled model
    rolls = pipeline.generate(ckpt, 4, style="bach", mode="minor", seed=0)   # (4, tracks, 2, P, S)
    pipeline.write_outputs(rolls, "out/", ckpt.spec)         # MIDI + WAV + PNG per sample
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from . import ASSETS, data, diffusion, inputs, music
from .train import Checkpoint, load_checkpoint

CHECKPOINT_DIR = ASSETS / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "soundtracks.pt"
MODES = ("major", "minor")
MAX_SAMPLES, MAX_BARS = 1024, 256  # per call: beyond them a CPU run would take hours (ask in chunks)
DEFAULT_TEMPO = 90.0


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> Checkpoint:
    return load_checkpoint(path)


def load(path=None) -> Checkpoint:
    """Load a checkpoint (default: the bundled one) once per process; later calls are free."""
    path = Path(path or DEFAULT_CHECKPOINT)
    if not path.exists():
        return load_checkpoint(path)  # raises the helpful CheckpointError
    return _load_cached(str(path.resolve()), path.stat().st_mtime)


def make_labels(n: int, *, style=None, mode=None, density=None) -> dict:
    """Label tensors (n,) from words: style "bach"/"folk" (or an index), mode "major"/"minor",
    density a float (onsets per 16th step per voice, ~0.15 calm .. ~0.45 busy). None = null
    (the model chooses). Each argument may also be a list of n values."""
    def column(values, encode, dtype, null):
        values = values if isinstance(values, (list, tuple, np.ndarray, torch.Tensor)) else [values] * n
        if len(values) != n:
            raise ValueError(f"got {len(values)} values for {n} samples")
        return torch.tensor([null if v is None else encode(v) for v in values], dtype=dtype)

    def style_index(v):
        if isinstance(v, str):
            if v not in data.STYLES:
                raise ValueError(f"unknown style {v!r}; choose one of {data.STYLES}")
            return data.STYLES.index(v)
        return int(v)

    def mode_index(v):
        if isinstance(v, str):
            if v not in MODES:
                raise ValueError(f"unknown mode {v!r}; choose 'major' or 'minor'")
            return MODES.index(v)
        return int(v)

    def density_value(v):
        v = float(v)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"density {v} is outside 0..1 (onsets per 16th step per voice)")
        return v

    return {"style": column(style, style_index, torch.long, -1),
            "mode": column(mode, mode_index, torch.long, -1),
            "density": column(density, density_value, torch.float32, float("nan"))}


def generate(checkpoint: Checkpoint, n: int = 1, *, style="bach", mode=None, density=None,
             sampler: str = "ddim", steps: int = 50, eta: float = 0.0, guidance_scale: float = 0.0,
             seed: int | None = 0, bars: int = 4, callback=None, known=None, known_mask=None,
             resample_steps: int = 1, gradient_fn=None, progress: bool = False) -> np.ndarray:
    """``n`` samples decoded to boolean rolls (n, tracks, 2, pitches, steps).

    sampler "ddim" uses ``steps`` steps and ``eta``; "ddpm" runs all T steps. ``known`` /
    ``known_mask`` (model space, see ``course_lib.guidance``) fix part of the music (inpainting).
    """
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', not {sampler!r}")
    inputs.check_number(n, "n (samples)", low=1, high=MAX_SAMPLES, integer=True)
    inputs.check_number(bars, "bars", low=1, high=MAX_BARS, integer=True)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    labels = make_labels(n, style=style, mode=mode, density=density)
    shape = (n, *checkpoint.encoding.shape(bars))
    common = dict(guidance_scale=guidance_scale, callback=callback, generator=generator, known=known,
                  known_mask=known_mask, resample_steps=resample_steps, gradient_fn=gradient_fn,
                  progress=progress)
    if sampler == "ddim":
        x = diffusion.ddim_sample(checkpoint.model, checkpoint.schedule, shape, labels, steps=steps, eta=eta, **common)
    else:
        x = diffusion.ddpm_sample(checkpoint.model, checkpoint.schedule, shape, labels, **common)
    return checkpoint.encoding.decode(x)


def noise_rolls(checkpoint: Checkpoint, n: int, seed: int = 0, bars: int = 4) -> np.ndarray:
    """Pure Gaussian noise decoded to rolls: the floor every metric is compared with."""
    generator = torch.Generator().manual_seed(seed)
    return checkpoint.encoding.decode(torch.randn((n, *checkpoint.encoding.shape(bars)), generator=generator))


def duration_seconds(steps: int, spec: music.RollSpec, tempo: float = DEFAULT_TEMPO) -> float:
    """How long ``steps`` 16th notes play at ``tempo`` quarter-note beats per minute."""
    return steps / spec.steps_per_beat * 60.0 / tempo


def output_paths(out_dir, n: int, stem: str = "sample") -> list[Path]:
    """The files ``write_outputs`` makes for ``n`` rolls: ``{stem}_{i}.mid``, ``.wav``, ``.png``."""
    width = max(2, int(math.log10(max(1, n))) + 1)
    return [Path(out_dir) / f"{stem}_{i:0{width}d}{ext}" for i in range(n) for ext in (".mid", ".wav", ".png")]


def write_outputs(rolls, out_dir, spec: music.RollSpec, *, stem: str = "sample", tempo: float = DEFAULT_TEMPO,
                  titles=None, overwrite: bool = True) -> list[Path]:
    """For each roll: ``{stem}_{i}.mid``, ``.wav`` and ``.png`` in ``out_dir``. Returns the paths.

    Every file is written under a temporary name and all are renamed at the end, so a run that
    fails half-way leaves no partial files. ``overwrite=False``: refuse (``inputs.InputError``)
    if any of them exists already; ``stem`` must be a plain file name."""
    from . import audio, viz  # rendering sits on top of the maths; imported only when writing files

    stem = inputs.check_plain_name(stem, "stem")
    rolls = np.asarray(rolls)
    rolls = rolls[None] if rolls.ndim == 4 else rolls
    paths = output_paths(out_dir, len(rolls), stem)
    inputs.check_output_dir(out_dir)
    inputs.check_new_files(paths, force=overwrite)
    with inputs.atomic_paths(paths) as temps:
        for i, roll in enumerate(rolls):
            mid, wav, png = temps[3 * i:3 * i + 3]
            midi = music.roll_to_midi(roll, spec, tempo=tempo)
            midi.write(str(mid))
            audio.write_wav(wav, midi, spec, tempo=tempo)
            viz.save_roll_png(png, roll, spec, title=titles[i] if titles else f"{stem} {i}")
    return paths
