"""Production tasks on rolls: continue, infill, regenerate, bridge and restyle music with a trained model.

Every task is one DDIM run (``diffusion``) told two things by ``guidance``:

- **what is given**: the music ``known`` in model space and a mask m (1 = given) of the same
  shape. Hard replacement (RePaint) overwrites x_t with the given music noised to level t at every
  step, so the given region comes back exactly; *reconstruction guidance* instead pulls the model's
  clean guess x̂_0 toward it with ∇_{x_t} ||m ⊙ (x̂_0(x_t) - known)||²; both can be used together.
- **where to start**: from noise (strength 1), or, SDEdit-style (Meng et al. 2022), from the given
  music noised to level t_0 = strength · (T - 1) and denoised from there with the same step size,
  so the result keeps the given music's broad shape and changes its details. Strength 0 changes
  nothing.

    task            given (m = 1)                                start          labels
    continuation    bars 1..g                                    noise          any
    infill          all but bars a..b of tracks S                noise          any
    regeneration    all but the region                           strength s     any
    transition      last c bars of piece A, first c bars of B    noise          any
    style transfer  nothing (the start carries the music)        strength s     the target style

Rolls in and out are NumPy ``(tracks, 2, pitches, steps)`` arrays in the checkpoint's RollSpec;
results are batches ``(n, tracks, 2, pitches, steps)`` with a ``generated`` mask for
``viz.plot_roll(highlight_mask=)``. Bars are counted from 1, both ends included ("bars 2-3").
The measures at the end say how well a task worked: seams (``seam_statistics``) and rules
(``in_scale_share``, ``note_density``; ``metrics.range_adherence`` for voice ranges).
"""
from __future__ import annotations

import warnings
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

from . import data, diffusion, guidance, inputs, music, pipeline
from .train import Checkpoint

WINDOW_BARS = 4  # the bundled model was trained on 4-bar windows


class TaskResult(NamedTuple):
    rolls: np.ndarray      # (n, tracks, 2, pitches, steps) bool: the music after the task
    generated: np.ndarray  # (tracks, steps) bool: True where the task wrote new music (viz highlight_mask)
    x: torch.Tensor        # (n, C, L) or (n, C, H, W): the samples in model space


# --------------------------------------------------------------------------- masks

def bar_steps(spec: music.RollSpec, first_bar: int, last_bar: int) -> tuple[int, int]:
    """Bars first_bar..last_bar (from 1, both included) -> (start step, end step exclusive)."""
    return (first_bar - 1) * spec.steps_per_bar, last_bar * spec.steps_per_bar


def bar_mask(encoding, bars: int, first_bar: int, last_bar: int, tracks: Sequence[int] | None = None) -> torch.Tensor:
    """1 on bars first_bar..last_bar of ``tracks`` (all tracks if None), 0 elsewhere.

    Shape ``encoding.shape(bars)``: (C, L) for the voice encoding, where track k owns channels
    15k .. 15k + 14; (C, H, W) for piano rolls. ``1 - bar_mask(...)`` is the known mask of an infill."""
    if not 1 <= first_bar <= last_bar <= bars:
        raise ValueError(f"need 1 <= first_bar <= last_bar <= {bars} (bars are counted from 1), "
                         f"got first_bar={first_bar}, last_bar={last_bar}")
    shape = encoding.shape(bars)
    mask = guidance.time_mask(shape, *bar_steps(encoding.spec, first_bar, last_bar))
    if tracks is not None:
        if not all(0 <= k < encoding.spec.n_tracks for k in tracks):
            raise ValueError(f"tracks must be indices 0..{encoding.spec.n_tracks - 1} "
                             f"({', '.join(encoding.spec.tracks)}), got {list(tracks)}")
        mask = mask * guidance.track_mask(shape, [c for k in tracks for c in encoding.track_channels(k)])
    return mask


def _given_tracks(encoding, known_mask: torch.Tensor, tracks: Sequence[int] | None) -> torch.Tensor:
    """The known mask restricted to ``tracks`` (None: all): a melody file gives only the soprano."""
    if tracks is None:
        return known_mask
    channels = [c for k in tracks for c in encoding.track_channels(k)]
    return known_mask * guidance.track_mask(known_mask.shape, channels)


def _generated_steps(mask: torch.Tensor, encoding) -> np.ndarray:
    """A model-space mask (1 = generated) -> (tracks, steps) bool: where each track was generated."""
    per_channel = mask.reshape(mask.shape[0], -1, mask.shape[-1]).amax(dim=1)  # (C, L)
    return np.stack([per_channel[encoding.track_channels(k)].amax(dim=0).numpy() > 0
                     for k in range(encoding.spec.n_tracks)])


# --------------------------------------------------------------------------- the one sampler all tasks use

def start_timestep(schedule, strength: float) -> int:
    """SDEdit's starting level t_0 = round(strength · (T - 1)); strength must lie in [0, 1]."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1] (0 keeps the music, 1 starts from noise), got {strength}")
    return int(round(strength * (schedule.timesteps - 1)))


def sample(checkpoint: Checkpoint, n: int = 1, *, known: torch.Tensor | None = None,
           known_mask: torch.Tensor | None = None, strength: float = 1.0, replace: bool = True,
           reconstruction_scale: float = 0.0, rule: Callable | None = None, rule_scale: float = 1.0,
           gradient_fn: Callable | None = None, style="bach", mode=None, density=None,
           guidance_scale: float = 0.0, steps: int = 50, resample_steps: int = 1, seed: int | None = 0,
           bars: int = WINDOW_BARS, callback=None, progress: bool = False,
           x0_fn: Callable | None = None) -> torch.Tensor:
    """n samples in model space (n, C, L): DDIM from noise or from the given music noised to t_0.

    known: the given music in model space, one sample's shape (or n of them); known_mask: 1 where
    it is given (None: nothing is held fixed). strength: where to start, 1 = pure noise, s < 1 =
    q_sample(known, t_0 = s (T - 1)), with about s · steps DDIM steps; 0 returns ``known``.
    replace: overwrite the given region at every step (RePaint); reconstruction_scale > 0: add
    reconstruction guidance toward it; rule: a penalty on x̂_0 from ``guidance`` (e.g.
    ``guidance.key_penalty(encoding)``), applied with weight ``rule_scale``; gradient_fn(x_t, t): any
    other guidance gradient, e.g. ``guidance.classifier_gradient`` toward a style (added to the rest);
    x0_fn(x̂_0, t): a correction of x̂_0 at every step (e.g. ``pipeline.voice_leading_correction``).
    style, mode, density, guidance_scale: labels and classifier-free guidance, as in ``pipeline.generate``.
    """
    model, schedule, encoding = checkpoint.model, checkpoint.schedule, checkpoint.encoding
    shape = (n, *encoding.shape(bars))
    if (known_mask is not None or strength < 1.0 or reconstruction_scale) and known is None:
        raise ValueError("known_mask, strength < 1 and reconstruction guidance need the given music, known=")
    if known is not None:
        known = torch.as_tensor(known, dtype=torch.float32)
        if tuple(known.shape[-len(shape) + 1:]) != shape[1:] or known.ndim > len(shape) or \
                (known.ndim == len(shape) and known.shape[0] not in (1, n)):
            raise ValueError(f"known has shape {tuple(known.shape)}; give one sample of shape {shape[1:]} (this "
                             f"model's {bars} bars) or {n} of them (encode rolls with checkpoint.encoding.encode)")
        known = known.expand(shape)
    t0 = start_timestep(schedule, strength)
    if strength == 0.0:
        return known.clone()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    labels = pipeline.make_labels(n, style=style, mode=mode, density=density)
    # SDEdit: start at t_0 from the given music (Meng et al. 2022, Algorithm 1); t_0 = T-1 is pure noise.
    x_start = (diffusion.randn(shape, generator) if strength == 1.0
               else diffusion.q_sample(schedule, known, t0, generator=generator))
    timesteps = sorted({int(t) for t in np.linspace(t0, 0, max(1, round(steps * strength))).round()}, reverse=True)

    penalties = []
    if reconstruction_scale:
        mask = torch.ones(shape[1:]) if known_mask is None else torch.as_tensor(known_mask, dtype=torch.float32)
        penalties.append((guidance.reconstruction_penalty(known, mask), reconstruction_scale))
    if rule is not None:
        penalties.append((rule, rule_scale))
    gradients = [] if gradient_fn is None else [gradient_fn]
    if penalties:
        gradients.append(guidance.penalty_gradient(model, schedule, guidance.combine_penalties(*penalties), 1.0,
                                                   labels))

    def total_gradient(x_t, t):  # log-probabilities add, so their gradients do
        return sum(gradient(x_t, t) for gradient in gradients)

    def ddim(x, t, t_prev, prediction):  # Song et al. 2021, eq. 12 with η = 0
        return diffusion.ddim_step(schedule, x, t, t_prev, prediction.eps, prediction.x0)

    replacing = replace and known_mask is not None
    # diffusion._sample is the samplers' shared loop (callback, RePaint, guidance); here it runs over
    # the timesteps t_0 .. 0 instead of T-1 .. 0.
    return diffusion._sample(model, schedule, shape, labels, timesteps, ddim, guidance_scale=guidance_scale,
                             clip_x0=True, callback=callback, generator=generator,
                             known=known if replacing else None, known_mask=known_mask if replacing else None,
                             resample_steps=resample_steps, gradient_fn=total_gradient if gradients else None,
                             progress=progress,
                             x_T=x_start, x0_fn=x0_fn, desc=f"DDIM-{len(timesteps)} from t={t0}")


def _check_roll(roll, spec: music.RollSpec, name: str = "roll") -> np.ndarray:
    roll = np.asarray(roll)
    if roll.ndim != 4 or roll.shape[:3] != (spec.n_tracks, 2, spec.n_pitches) or roll.shape[-1] % spec.steps_per_bar:
        raise ValueError(f"{name} has shape {roll.shape}; expected (tracks={spec.n_tracks}, 2, pitches="
                         f"{spec.n_pitches}, steps) with whole bars of {spec.steps_per_bar} steps")
    return roll.astype(bool)


def _bars_of(roll, spec) -> int:
    return roll.shape[-1] // spec.steps_per_bar


def _result(checkpoint, x, generated_mask) -> TaskResult:
    known_mask = None if generated_mask is None else 1 - generated_mask.float()
    return TaskResult(pipeline.decode(checkpoint, x, known_mask=known_mask),
                      _generated_steps(generated_mask, checkpoint.encoding), x)


# --------------------------------------------------------------------------- the tasks

def infill(checkpoint: Checkpoint, roll, n: int = 1, *, first_bar: int = 2, last_bar: int = 3,
           tracks: Sequence[int] | None = None, given_tracks: Sequence[int] | None = None, **options) -> TaskResult:
    """Regenerate bars first_bar..last_bar of ``tracks`` (all if None) so that both edges fit.

    roll: the given music, (tracks, 2, pitches, steps), the length the model samples (4 bars).
    given_tracks: the tracks ``roll`` really gives (None: all); the others are generated throughout.
    options: anything ``sample`` takes (style, mode, steps, seed, reconstruction_scale, rule, ...)."""
    spec, encoding = checkpoint.spec, checkpoint.encoding
    roll = _check_roll(roll, spec)
    region = bar_mask(encoding, _bars_of(roll, spec), first_bar, last_bar, tracks)
    known_mask = _given_tracks(encoding, 1 - region, given_tracks)
    x = sample(checkpoint, n, known=encoding.encode(roll), known_mask=known_mask, bars=_bars_of(roll, spec), **options)
    return _result(checkpoint, x, 1 - known_mask)


def regenerate(checkpoint: Checkpoint, roll, n: int = 1, *, strength: float = 0.5, first_bar: int = 1,
               last_bar: int | None = None, tracks: Sequence[int] | None = None, **options) -> TaskResult:
    """Re-imagine a region (default: everything) SDEdit-style: noise it to t_0 = strength · (T - 1),
    denoise from there, keep the rest. Strength 0 returns the roll; 1 is an infill."""
    spec, encoding = checkpoint.spec, checkpoint.encoding
    roll = _check_roll(roll, spec)
    bars = _bars_of(roll, spec)
    region = bar_mask(encoding, bars, first_bar, bars if last_bar is None else last_bar, tracks)
    everything = bool(region.min() == 1)
    x = sample(checkpoint, n, known=encoding.encode(roll), known_mask=None if everything else 1 - region,
               strength=strength, bars=bars, **options)
    return _result(checkpoint, x, region * float(strength > 0))


STYLE_TRANSFER_BY = ("label", "classifier", "both")


def style_transfer(checkpoint: Checkpoint, roll, style: str, n: int = 1, *, strength: float = 0.6,
                   by: str = "label", classifier=None, classifier_scale: float = 30.0, **options) -> TaskResult:
    """The roll re-imagined in another ``style`` ("bach" or "folk"): SDEdit of the whole roll, denoised
    toward the style

    - by its **label** (the model conditioned on ``style``; add guidance_scale= for classifier-free
      guidance toward it),
    - by a **classifier** target (every label null; the noisy classifier's ∇ log p(style | x_t), scaled
      by ``classifier_scale``, steers each step: ``classifiers.steer``), or by **both**.

    classifier: a noisy ``classifiers.ClassifierCheckpoint`` (default: the bundled one). The label
    changes texture at moderate strengths (a chorale becomes a folk melody from strength ~0.6); the
    classifier alone needs more (measured on 4 chorales toward folk, scale 30: 0/8 samples at 0.8,
    7/8 at 0.9, 8/8 at 0.95), since what SDEdit keeps is the layout of the voices."""
    if by not in STYLE_TRANSFER_BY:
        raise ValueError(f"by must be one of {STYLE_TRANSFER_BY}, not {by!r}")
    if style not in data.STYLES:
        raise ValueError(f"style transfer needs a target style, one of {list(data.STYLES)}; got {style!r}")
    if by != "label":
        from . import classifiers

        classifier = classifier or classifiers.load_bundled("noisy")
        classifiers.check_schedule(classifier, checkpoint.schedule)
        pull, other = classifiers.steer(classifier, classifier_scale, style=style), options.pop("gradient_fn", None)
        options["gradient_fn"] = pull if other is None else (lambda x_t, t: pull(x_t, t) + other(x_t, t))
    options["style"] = None if by == "classifier" else style
    return regenerate(checkpoint, roll, n, strength=strength, **options)


def continuation(checkpoint: Checkpoint, roll, n: int = 1, *, given_bars: int = 2, bars: int = WINDOW_BARS,
                 given_tracks: Sequence[int] | None = None, **options) -> TaskResult:
    """The first ``given_bars`` bars of ``roll``, continued to ``bars`` bars.

    Beyond the model's window (4 bars) the music grows window by window: each new window is given
    the last ``given_bars`` bars written so far and generates the rest (seeds advance by one).
    given_tracks: the tracks ``roll`` really gives (None: all); the others are generated throughout."""
    spec, encoding = checkpoint.spec, checkpoint.encoding
    roll = _check_roll(roll, spec)
    if not 1 <= given_bars < WINDOW_BARS or given_bars > _bars_of(roll, spec) or bars <= given_bars:
        raise ValueError(f"need 1 <= given_bars < {WINDOW_BARS} (the model's window), given_bars <= the roll's "
                         f"{_bars_of(roll, spec)} bars and bars > given_bars; got given_bars={given_bars}, bars={bars}")
    spb, window = spec.steps_per_bar, WINDOW_BARS * spec.steps_per_bar
    x = encoding.encode(roll[..., :given_bars * spb]).expand(n, -1, -1).clone()  # (n, C, given steps)
    first_mask = _given_tracks(encoding, 1 - bar_mask(encoding, WINDOW_BARS, given_bars + 1, WINDOW_BARS),
                               given_tracks)
    known_mask = first_mask
    seed = options.pop("seed", 0)
    while x.shape[-1] < bars * spb:
        context = x[..., -given_bars * spb:]
        known = torch.cat([context, -torch.ones(*context.shape[:-1], window - context.shape[-1])], dim=-1)
        new = sample(checkpoint, n, known=known, known_mask=known_mask, seed=seed, **options)
        x = torch.cat([x[..., :-given_bars * spb], new], dim=-1)  # the first window may rewrite free tracks
        known_mask = 1 - bar_mask(encoding, WINDOW_BARS, given_bars + 1, WINDOW_BARS)  # later: all tracks given
        seed = None if seed is None else seed + 1
    x = x[..., :bars * spb]
    generated = torch.ones(encoding.shape(bars))
    generated[..., :given_bars * spb] = 1 - first_mask[..., :given_bars * spb]
    return _result(checkpoint, x, generated)


def transition(checkpoint: Checkpoint, roll_a, roll_b, n: int = 1, *, context_bars: int = 1,
               given_tracks: Sequence[int] | None = None, **options) -> TaskResult:
    """A 4-bar bridge from the end of piece A to the start of piece B: its first ``context_bars``
    bars are A's last ones, its last ``context_bars`` bars B's first ones, the middle is generated.
    given_tracks: the tracks A and B really give (None: all). ``stitch`` puts A, bridge and B together."""
    spec, encoding = checkpoint.spec, checkpoint.encoding
    roll_a, roll_b = _check_roll(roll_a, spec, "roll_a"), _check_roll(roll_b, spec, "roll_b")
    if not 1 <= context_bars <= (WINDOW_BARS - 1) // 2:
        raise ValueError(f"context_bars must be 1..{(WINDOW_BARS - 1) // 2} so that the {WINDOW_BARS}-bar bridge "
                         f"generates at least one bar, got {context_bars}")
    c = context_bars * spec.steps_per_bar
    for name, r in (("roll_a", roll_a), ("roll_b", roll_b)):
        if r.shape[-1] < c:
            raise ValueError(f"{name} has {_bars_of(r, spec)} bar(s); the transition needs {context_bars}")
    known_roll = np.zeros(spec.shape(WINDOW_BARS), dtype=bool)
    known_roll[..., :c] = music.crop(roll_a, _bars_of(roll_a, spec) - context_bars, context_bars, spec)
    known_roll[..., -c:] = roll_b[..., :c]
    middle = bar_mask(encoding, WINDOW_BARS, context_bars + 1, WINDOW_BARS - context_bars)
    known_mask = _given_tracks(encoding, 1 - middle, given_tracks)
    x = sample(checkpoint, n, known=encoding.encode(known_roll), known_mask=known_mask, **options)
    return _result(checkpoint, x, 1 - known_mask)


def stitch(roll_a, bridge, roll_b, context_bars: int, spec: music.RollSpec) -> np.ndarray:
    """A without its last ``context_bars`` bars, then the bridge, then B without its first ones."""
    c = context_bars * spec.steps_per_bar
    return np.concatenate([np.asarray(roll_a)[..., :-c], np.asarray(bridge), np.asarray(roll_b)[..., c:]], axis=-1)


# --------------------------------------------------------------------------- music from files

def load_roll(source, spec: music.RollSpec = music.CHORALE, *, min_bars: int = 1) -> tuple[np.ndarray, list[int]]:
    """A MIDI file (path or bytes) -> (roll in ``spec``, the tracks it fills).

    A file with the spec's tracks (four parts for ``music.CHORALE``) fills them all; a file with
    one pitched part is read as a melody (``music.MELODY``) and goes into the first track (the
    soprano). Raises ``music.MidiError`` (a ValueError) with what to do for anything else: an
    empty, damaged or drums-only file, a meter other than 4/4, fewer than ``min_bars`` bars."""
    inputs.check_number(min_bars, "min_bars", low=1, high=pipeline.MAX_BARS, integer=True)
    midi = music.load_midi(source)  # checks notes, drums, tempo and meter
    pitched = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    if len(pitched) == 1 and spec.n_tracks > 1:
        melody = music.midi_to_roll(midi, music.RollSpec(tracks=spec.tracks[:1], low=spec.low, high=spec.high,
                                                         steps_per_beat=spec.steps_per_beat,
                                                         beats_per_bar=spec.beats_per_bar))
        roll, tracks = np.zeros((spec.n_tracks, *melody.shape[1:]), dtype=bool), [0]
        roll[0] = melody[0]
    else:
        roll, tracks = music.midi_to_roll(midi, spec), list(range(spec.n_tracks))
    if _bars_of(roll, spec) < min_bars:
        raise music.MidiError(f"the music is {_bars_of(roll, spec)} bar(s) long; this task needs at least "
                              f"{min_bars} bars of {spec.beats_per_bar}/4")
    return roll, tracks


def shift_roll(roll, semitones: int, spec: music.RollSpec) -> np.ndarray:
    """Transpose by ``semitones``, moving any note that would leave the range by octaves into it."""
    semitones = inputs.check_number(semitones, "semitones", low=-127, high=127, integer=True)
    notes = music.roll_to_notes(roll, spec)
    notes[:, 1] += semitones
    notes[:, 1] = np.where(notes[:, 1] < spec.low, notes[:, 1] + 12 * -((notes[:, 1] - spec.low) // 12), notes[:, 1])
    notes[:, 1] = np.where(notes[:, 1] >= spec.high, notes[:, 1] - 12 * ((notes[:, 1] - spec.high) // 12 + 1),
                           notes[:, 1])
    return music.notes_to_roll(notes, spec, np.shape(roll)[-1])


def key_of(roll, spec: music.RollSpec) -> tuple[int, str]:
    """(tonic pitch class 0..11, "major" or "minor") of a roll, by ``music.estimate_key``."""
    tonic, mode, _ = music.estimate_key(music.roll_to_notes(roll, spec))
    return tonic, pipeline.MODES[mode]


def to_tonic_c(roll, spec: music.RollSpec) -> tuple[np.ndarray, int]:
    """(roll transposed so its tonic is C, the semitones it moved): the course's models only saw
    music in C. The smaller of the shifts down or up that keeps every note in range is taken;
    ``shift_roll(result, -semitones, spec)`` goes back."""
    tonic, _ = key_of(roll, spec)
    for semitones in sorted((-tonic, 12 - tonic), key=abs):
        try:
            return music.transpose(roll, semitones, spec), semitones
        except music.MidiError:
            continue
    warnings.warn("the music cannot be moved to C inside the pitch range; it is used as it is", music.MidiWarning)
    return np.asarray(roll), 0


# --------------------------------------------------------------------------- how well did it work?

def _voice_notes(roll, spec: music.RollSpec) -> list[np.ndarray]:
    """Per track, its notes (N, 4) in order of onset."""
    notes = music.roll_to_notes(roll, spec)
    return [notes[notes[:, 0] == k] for k in range(spec.n_tracks)]


def crossing_intervals(rolls, spec: music.RollSpec, step: int) -> np.ndarray:
    """|semitones| between each voice's last note starting before ``step`` and its first note starting
    at or after it: the melodic move across that point. (N, tracks) floats, NaN where a side has none."""
    rolls = np.asarray(rolls)
    out = np.full((len(rolls), spec.n_tracks), np.nan)
    for i, roll in enumerate(rolls):
        for k, notes in enumerate(_voice_notes(roll, spec)):
            before, after = notes[notes[:, 2] < step], notes[notes[:, 2] >= step]
            if len(before) and len(after):
                out[i, k] = abs(int(after[0, 1]) - int(before[-1, 1]))
    return out


def onset_change(rolls, spec: music.RollSpec, step: int) -> np.ndarray:
    """|notes started in the bar after ``step`` - in the bar before it| per voice, (N, tracks)."""
    rolls = np.asarray(rolls)
    spb = spec.steps_per_bar
    onsets = rolls[:, :, music.ONSET].any(axis=2)  # (N, tracks, steps)
    return np.abs(onsets[..., step:step + spb].sum(-1).astype(float) - onsets[..., step - spb:step].sum(-1))


def seam_statistics(rolls, spec: music.RollSpec, steps: Sequence[int]) -> dict[str, float]:
    """How a set of rolls moves across the bar lines at ``steps``, averaged over rolls, voices and steps:

    interval     mean |melodic interval| (semitones) between the notes either side;
    leaps        share of those intervals larger than a fifth (7 semitones);
    onset_change mean |notes in the bar after - notes in the bar before| per voice.
    Compare seams (where given and generated music meet) with other bar lines of real music."""
    intervals = np.concatenate([crossing_intervals(rolls, spec, s).ravel() for s in steps])
    intervals = intervals[~np.isnan(intervals)]
    change = np.concatenate([onset_change(rolls, spec, s).ravel() for s in steps])
    return {"interval": float(intervals.mean()) if intervals.size else float("nan"),
            "leaps": float((intervals > 7).mean()) if intervals.size else float("nan"),
            "onset_change": float(change.mean())}


def in_scale_share(rolls, spec: music.RollSpec, pitch_classes: Sequence[int] = guidance.C_MAJOR) -> np.ndarray:
    """Share of each roll's notes whose pitch class is in ``pitch_classes`` (default C major), (N,)."""
    rolls = np.asarray(rolls)
    rolls = rolls[None] if rolls.ndim == 4 else rolls
    shares = []
    for roll in rolls:
        pitches = music.roll_to_notes(roll, spec)[:, 1]
        shares.append(np.isin(pitches % 12, list(pitch_classes)).mean() if len(pitches) else np.nan)
    return np.array(shares)


def note_density(rolls, spec: music.RollSpec) -> np.ndarray:
    """Notes per 16th step per sounding voice, as the dataset's ``density`` label, (N,)."""
    rolls = np.asarray(rolls)
    rolls = rolls[None] if rolls.ndim == 4 else rolls
    sounding = rolls[:, :, music.SUSTAIN].any(axis=(2, 3)).sum(axis=1)  # (N,) voices that sound at all
    notes = np.array([len(music.roll_to_notes(roll, spec)) for roll in rolls])
    return notes / (rolls.shape[-1] * np.maximum(sounding, 1))
