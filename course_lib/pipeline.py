"""From a checkpoint to music: conditions in words -> labels -> sampler -> decoded rolls -> files.

This is the glue the CLI, the widgets and the later lessons share:

    ckpt = pipeline.load()                                   # the bundled model
    rolls = pipeline.generate(ckpt, 4, style="bach", mode="minor", seed=0)   # (4, tracks, 2, P, S)
    pipeline.write_outputs(rolls, "out/", ckpt.spec)         # MIDI + WAV + PNG per sample
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
from pathlib import Path

import numpy as np
import torch

from . import ASSETS, data, devices, diffusion, guidance, inputs, music
from .train import Checkpoint, load_checkpoint

CHECKPOINT_DIR = ASSETS / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "soundtracks.pt"
MODES = ("major", "minor")
MAX_SAMPLES, MAX_BARS = 1024, 256  # per call: beyond them a CPU run would take hours (ask in chunks)
DEFAULT_TEMPO = 90.0


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float, device: str) -> Checkpoint:
    return on_device(load_checkpoint(path), device)


def load(path=None, device="cpu") -> Checkpoint:
    """Load a checkpoint (default: the bundled one) once per process; later calls are free.

    device: where its model runs ("cpu", "cuda", "mps" or "auto": ``devices.pick_device``)."""
    path = Path(path or DEFAULT_CHECKPOINT)
    if not path.exists():
        return load_checkpoint(path)  # raises the helpful CheckpointError
    return _load_cached(str(path.resolve()), path.stat().st_mtime, str(devices.pick_device(device)))


def on_device(checkpoint: Checkpoint, device) -> Checkpoint:
    """The checkpoint with its model on ``device`` (itself if it is there already, else a moved copy:
    a cached checkpoint others hold is never moved under them)."""
    device = devices.pick_device(device)
    if next(checkpoint.model.parameters()).device == device:
        return checkpoint
    return dataclasses.replace(checkpoint, model=copy.deepcopy(checkpoint.model).to(device))


def make_labels(n: int, *, style=None, mode=None, density=None, styles=None) -> dict:
    """Label tensors (n,) from words: style "bach"/"folk" (or an index), mode "major"/"minor",
    density a float (onsets per 16th step per voice, ~0.15 calm .. ~0.45 busy). None = null
    (the model chooses). Each argument may also be a list of n values. styles: the model's style
    names (``checkpoint.styles``; default ``data.STYLES``)."""
    styles = tuple(styles or data.STYLES)
    def column(values, encode, dtype, null):
        values = values if isinstance(values, (list, tuple, np.ndarray, torch.Tensor)) else [values] * n
        if len(values) != n:
            raise ValueError(f"got {len(values)} values for {n} samples")
        return torch.tensor([null if v is None else encode(v) for v in values], dtype=dtype)

    def style_index(v):
        if isinstance(v, str):
            if v not in styles:
                raise ValueError(f"unknown style {v!r}; choose one of {styles}")
            return styles.index(v)
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


# Sampling settings when neither the caller nor the checkpoint's card names them (the card's
# "sampling" entry holds what the model was evaluated with: ``sampling_defaults``).
FALLBACK_SAMPLING = {"sampler": "ddim", "steps": 50, "guidance_scale": 0.0, "voice_leading": 0.0,
                     "decoder": "plain", "decoder_rules": {}}


def sampling_defaults(checkpoint: Checkpoint) -> dict:
    """The checkpoint's recommended sampling settings (its card's "sampling"), over ``FALLBACK_SAMPLING``:
    {"sampler", "steps", "guidance_scale", "voice_leading" (rule-correction scale), "voice_leading_weights",
    "decoder" ("plain" or "voice_leading": ``decode``), "decoder_rules" (``decoding.DecodingRules`` fields)}."""
    card = (checkpoint.meta or {}).get("card") or {}
    return {**FALLBACK_SAMPLING, **(card.get("sampling") or {})}


def voice_leading_correction(checkpoint: Checkpoint, scale: float, weights: dict | None = None):
    """The x̂_0 correction toward the rules of four-part writing (``guidance.voice_leading_penalty``
    + ``guidance.penalty_correction``), or None for scale 0 or a model without four voices."""
    if not scale or checkpoint.spec.n_tracks != 4 or checkpoint.encoding.name != "voice":
        return None
    weights = weights if weights is not None else sampling_defaults(checkpoint).get("voice_leading_weights", {})
    return guidance.penalty_correction(guidance.voice_leading_penalty(checkpoint.encoding, **weights), scale)


def decode(checkpoint: Checkpoint, x, *, known_mask=None, decoder: str | None = None,
           decoder_rules: dict | None = None) -> np.ndarray:
    """Model tensors x (B, C, L) -> rolls, with the checkpoint's recommended decoder (``sampling_defaults``):
    "plain" is ``encoding.decode``; "voice_leading" is ``decoding.decode_voice_leading`` with the card's
    rules, or ``decoder_rules`` (``decoding.DecodingRules`` fields; same rhythm, pitches chosen under the
    rules of four-part writing). Notes that start where
    ``known_mask`` (model space, 1 = given music) is set keep the plain decoder's pitch: given music
    is never rewritten."""
    defaults = sampling_defaults(checkpoint)
    decoder = defaults["decoder"] if decoder is None else decoder
    if decoder == "plain" or checkpoint.encoding.name != "voice" or checkpoint.spec.n_tracks != 4:
        return checkpoint.encoding.decode(x)
    if decoder != "voice_leading":
        raise ValueError(f"decoder must be 'plain' or 'voice_leading', not {decoder!r}")
    from . import decoding
    rules = decoding.DecodingRules(**(defaults.get("decoder_rules", {}) if decoder_rules is None else decoder_rules))
    return decoding.decode_voice_leading(checkpoint.encoding, x, rules, known_mask=known_mask)


def sample(checkpoint: Checkpoint, n: int = 1, *, style="bach", mode=None, density=None,
             sampler: str | None = None, steps: int | None = None, eta: float = 0.0,
             guidance_scale: float | None = None, voice_leading: float | None = None,
             seed: int | None = 0, bars: int = 4, callback=None, known=None, known_mask=None,
             resample_steps: int = 1, gradient_fn=None, x0_fn=None,
             progress: bool = False, device=None) -> torch.Tensor:
    """``n`` samples in model space (n, C, L), on the CPU: what ``generate`` decodes. Keeping x lets
    several decoders read the very same samples (``decode(checkpoint, x, decoder=...)``).

    sampler "ddim" uses ``steps`` steps and ``eta``; "ddpm" runs all T steps. ``guidance_scale``:
    classifier-free guidance w. ``voice_leading``: the scale of the x̂_0 correction toward the
    rules of four-part writing (``voice_leading_correction``; 0 = off). Settings left at None take
    the checkpoint's recommended ones (``sampling_defaults``). ``known`` / ``known_mask`` (model
    space, see ``course_lib.guidance``) fix part of the music (inpainting). ``x0_fn``: a correction
    of x̂_0 of your own (replaces the voice-leading one).
    ``device``: where to sample (``on_device``; default: where the checkpoint's model is). The
    noise is drawn on the CPU, so a seed gives the same start whatever the device.
    """
    if device is not None:
        checkpoint = on_device(checkpoint, device)
    defaults = sampling_defaults(checkpoint)
    sampler = defaults["sampler"] if sampler is None else sampler
    steps = defaults["steps"] if steps is None else steps
    guidance_scale = defaults["guidance_scale"] if guidance_scale is None else guidance_scale
    voice_leading = defaults["voice_leading"] if voice_leading is None else voice_leading
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', not {sampler!r}")
    inputs.check_number(n, "n (samples)", low=1, high=MAX_SAMPLES, integer=True)
    inputs.check_number(bars, "bars", low=1, high=MAX_BARS, integer=True)
    if seed is not None:
        inputs.check_number(seed, "seed", low=0, high=2 ** 63 - 1, integer=True)
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    labels = make_labels(n, style=style, mode=mode, density=density, styles=getattr(checkpoint, "styles", None))
    shape = (n, *checkpoint.encoding.shape(bars))
    if x0_fn is None:
        x0_fn = voice_leading_correction(checkpoint, voice_leading)
    common = dict(guidance_scale=guidance_scale, callback=callback, generator=generator, known=known,
                  known_mask=known_mask, resample_steps=resample_steps, gradient_fn=gradient_fn,
                  x0_fn=x0_fn, progress=progress)
    if sampler == "ddim":
        x = diffusion.ddim_sample(checkpoint.model, checkpoint.schedule, shape, labels, steps=steps, eta=eta, **common)
    else:
        x = diffusion.ddpm_sample(checkpoint.model, checkpoint.schedule, shape, labels, **common)
    return x.cpu()


def generate(checkpoint: Checkpoint, n: int = 1, *, known_mask=None, decoder: str | None = None,
             decoder_rules: dict | None = None, device=None, **settings) -> np.ndarray:
    """``n`` samples decoded to boolean rolls (n, tracks, 2, pitches, steps): ``sample`` (every
    keyword of it: style, mode, density, sampler, steps, eta, guidance_scale, voice_leading, seed,
    bars, callback, known, resample_steps, gradient_fn, x0_fn, progress), then ``decode`` with the
    checkpoint's recommended decoder, or ``decoder`` ("plain" / "voice_leading") with ``decoder_rules``."""
    if device is not None:
        checkpoint = on_device(checkpoint, device)
    x = sample(checkpoint, n, known_mask=known_mask, **settings)
    return decode(checkpoint, x, known_mask=known_mask, decoder=decoder, decoder_rules=decoder_rules)


def noise_rolls(checkpoint: Checkpoint, n: int, seed: int = 0, bars: int = 4) -> np.ndarray:
    """Pure Gaussian noise decoded to rolls: the floor every metric is compared with."""
    inputs.check_number(n, "n (samples)", low=1, high=100_000, integer=True)
    inputs.check_number(bars, "bars", low=1, high=MAX_BARS, integer=True)
    inputs.check_number(seed, "seed", low=0, high=2 ** 63 - 1, integer=True)
    generator = torch.Generator().manual_seed(seed)
    return checkpoint.encoding.decode(torch.randn((n, *checkpoint.encoding.shape(bars)), generator=generator))


def duration_seconds(steps: int, spec: music.RollSpec, tempo: float = DEFAULT_TEMPO) -> float:
    """How long ``steps`` 16th notes play at ``tempo`` quarter-note beats per minute."""
    inputs.check_number(steps, "steps (16th notes)", low=0)
    inputs.check_number(tempo, "tempo (BPM)", low=music.MIN_TEMPO, high=music.MAX_TEMPO)
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
    if rolls.ndim != 5 or len(rolls) == 0:
        raise inputs.InputError(f"write_outputs takes one roll (tracks, 2, pitches, steps) or a non-empty batch of "
                                f"them, got shape {rolls.shape}")
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
