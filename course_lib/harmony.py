"""Four voices at once: how well they coordinate, harmonizing a melody, regenerating one voice.

A chorale is four melodies that must also fit together. Counterpoint textbooks name what
"fitting together" means, and each rule becomes a number measured per sample (lesson 7):

- ``voice_crossing``: a lower voice sounds above the voice written above it (alto above
  soprano, ...). Share of adjacent-voice comparisons (both voices sounding) that cross.
- ``spacing_violations``: adjacent *upper* voices (soprano-alto, alto-tenor) more than an
  octave apart; the bass may lie further below the tenor. Share of such comparisons.
- ``metrics.parallels_per_100``: parallel fifths and octaves, the motion that makes two voices
  sound like one; ``parallel_count`` counts them between two given voices.
- ``metrics.consonance`` and ``metrics.range_adherence``: consonant sonorities, voices in range.

``coordination`` puts them in one dict for ``metrics.format_table``, so samples, real chorales
(the ceiling) and decoded noise (the floor) can stand side by side.

Inpainting with a *track* mask turns one model of four voices into a harmonizer (RePaint,
Lugmayr et al. 2022; ``guidance.replace_known``): the soprano's channels are known at every
step, the sampler writes alto, tenor and bass around them. ``regenerate_tracks`` is the general
form, ``harmonize`` gives a melody (a folk tune, a MIDI file) to the soprano and walks over
melodies longer than the model's window, and ``voice_regenerator`` plugs one-voice
regeneration into ``widgets.track_mixer``.

Pitch arrays: ``voice_pitches`` reads a roll (tracks, 2, pitches, steps) as the MIDI pitch of each
voice's top sounding note per step, (tracks, steps) ints, -1 where the voice rests. Voices are
ordered from the highest (track 0, soprano) to the lowest, as in ``music.CHORALE``.
"""
from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np
import torch

from . import guidance, music, pipeline, tasks
from .metrics import SATB_RANGES, _notes, _ratio, _result, consonance, parallels_per_100, range_adherence

SILENT = -1  # the pitch of a resting voice in pitch arrays
OCTAVE = 12
PERFECT_INTERVALS = (0, 7)  # unison/octave and fifth, as interval classes mod 12
WINDOW_BARS = tasks.WINDOW_BARS  # the course's models are trained on 4-bar windows


# --------------------------------------------------------------------------- reading voices

def voice_pitches(rolls, spec: music.RollSpec = music.CHORALE) -> np.ndarray:
    """MIDI pitch of each voice's highest sounding note: (tracks, steps) for a roll, (N, tracks, steps)
    for a batch; ``SILENT`` (-1) where a voice rests. Same reading as ``metrics.parallels_per_100``."""
    sounding, _, single = _notes(rolls, spec)  # (N, T, P, S)
    top = sounding.shape[2] - 1 - sounding[:, :, ::-1].argmax(axis=2)  # (N, T, S) highest pitch index
    pitches = np.where(sounding.any(axis=2), spec.low + top, SILENT)
    return pitches[0] if single else pitches


def _adjacent(pitches: np.ndarray, pairs: Sequence[int]):
    """(upper, lower, both sounding) pitch arrays (N, pairs, S) for the voice pairs (k, k+1)."""
    upper, lower = pitches[:, list(pairs)], pitches[:, [k + 1 for k in pairs]]
    return upper, lower, (upper != SILENT) & (lower != SILENT)


def voice_crossing(rolls, spec: music.RollSpec = music.CHORALE):
    """Share of (adjacent voice pair, step) comparisons, both voices sounding, where the lower voice
    is strictly above the upper one (a unison is not a crossing). NaN if no pair ever sounds together."""
    pitches, single = _pitch_batch(rolls, spec)
    upper, lower, both = _adjacent(pitches, range(spec.n_tracks - 1))
    crossed = both & (lower > upper)
    return _result(_ratio(crossed.sum(axis=(1, 2)), both.sum(axis=(1, 2))), single)


def spacing_violations(rolls, spec: music.RollSpec = music.CHORALE, limit: int = OCTAVE):
    """Share of (adjacent upper pair, step) comparisons, both sounding, where the upper voice is more
    than ``limit`` semitones (an octave) above the lower one. The upper pairs are every adjacent pair
    but the lowest (S-A and A-T in four parts: the bass may lie far below the tenor). NaN for fewer
    than three voices, or when no upper pair ever sounds together."""
    pitches, single = _pitch_batch(rolls, spec)
    if spec.n_tracks < 3:
        return _result(np.full(len(pitches), np.nan), single)
    upper, lower, both = _adjacent(pitches, range(spec.n_tracks - 2))
    wide = both & (upper - lower > limit)
    return _result(_ratio(wide.sum(axis=(1, 2)), both.sum(axis=(1, 2))), single)


def parallel_count(upper, lower) -> np.ndarray | int:
    """Parallel fifths and octaves between two voices, as ``metrics.parallels_per_100`` counts them.

    upper, lower: MIDI pitches (..., steps), ``SILENT`` where a voice rests. A step s -> s+1 counts
    when both voices sound on both steps, both move in the same direction, and the interval between
    them is the same perfect interval class (unison/octave or fifth, mod 12) before and after.
    Oblique motion (one voice holds) and contrary motion never count. Returns an int for 1-D input,
    else counts (...,).
    """
    a, b = np.asarray(upper), np.asarray(lower)
    if a.shape != b.shape or a.ndim < 1:
        raise ValueError(f"upper and lower must be pitch arrays of the same shape (..., steps), "
                         f"got {a.shape} and {b.shape}")
    both = (a[..., :-1] != SILENT) & (a[..., 1:] != SILENT) & (b[..., :-1] != SILENT) & (b[..., 1:] != SILENT)
    move_a, move_b = np.diff(a, axis=-1), np.diff(b, axis=-1)  # (..., steps - 1)
    before, after = np.abs(a[..., :-1] - b[..., :-1]) % OCTAVE, np.abs(a[..., 1:] - b[..., 1:]) % OCTAVE
    similar = (move_a != 0) & (np.sign(move_a) == np.sign(move_b))
    parallel = both & similar & (before == after) & np.isin(before, PERFECT_INTERVALS)
    counts = parallel.sum(axis=-1)
    return int(counts) if counts.ndim == 0 else counts


def parallels_by_pair(rolls, spec: music.RollSpec = music.CHORALE) -> np.ndarray:
    """(tracks, tracks) parallel fifths/octaves summed over a set of rolls, upper triangle filled:
    entry [i, j] (i < j) counts them between voice i and the lower voice j."""
    pitches, _ = _pitch_batch(rolls, spec)
    table = np.zeros((spec.n_tracks, spec.n_tracks), dtype=int)
    for i in range(spec.n_tracks):
        for j in range(i + 1, spec.n_tracks):
            table[i, j] = parallel_count(pitches[:, i], pitches[:, j]).sum()
    return table


def _pitch_batch(rolls, spec) -> tuple[np.ndarray, bool]:
    pitches = voice_pitches(rolls, spec)
    single = pitches.ndim == 2
    return (pitches[None] if single else pitches), single


COORDINATION = ("range", "voice_crossing", "spacing_violations", "parallels_per_100", "consonance")


def coordination(rolls, spec: music.RollSpec = music.CHORALE) -> dict[str, float]:
    """The coordination metrics (``COORDINATION``) of a set of rolls, each averaged over samples
    (NaNs left out), ready for ``metrics.format_table``."""
    per_sample = {"range": range_adherence, "voice_crossing": voice_crossing,
                  "spacing_violations": spacing_violations, "parallels_per_100": parallels_per_100,
                  "consonance": consonance}
    results = {}
    for name in COORDINATION:
        values = np.atleast_1d(per_sample[name](rolls, spec))
        results[name] = float(np.nanmean(values)) if np.any(~np.isnan(values)) else float("nan")
    return results


# --------------------------------------------------------------------------- masks

def known_tracks_mask(encoding, tracks: Sequence[int], bars: int = WINDOW_BARS) -> torch.Tensor:
    """Known-mask (``encoding.shape(bars)``, float): 1 on every channel of ``tracks`` at every step,
    0 elsewhere. ``known_tracks_mask(enc, [0])`` keeps the soprano: harmonization."""
    spec = encoding.spec
    if not len(tracks) or not all(0 <= k < spec.n_tracks for k in tracks):
        raise ValueError(f"tracks must be a non-empty list of indices 0..{spec.n_tracks - 1} "
                         f"({', '.join(spec.tracks)}), got {list(tracks)}")
    channels = [c for k in tracks for c in encoding.track_channels(k)]
    return guidance.track_mask(encoding.shape(bars), channels)


def all_but_track_mask(encoding, track: int, bars: int = WINDOW_BARS) -> torch.Tensor:
    """Known-mask that keeps every track but ``track`` (which the sampler regenerates)."""
    return 1.0 - known_tracks_mask(encoding, [track], bars)


# --------------------------------------------------------------------------- melodies

def fit_octave(pitches, low: int, high: int) -> int:
    """The octave shift (a multiple of 12) that puts the most of ``pitches`` inside low..high
    (inclusive); ties go to the smallest shift, then to the downward one."""
    pitches = np.asarray(pitches, dtype=int).reshape(-1)
    if pitches.size == 0:
        raise ValueError("a melody needs at least one note")
    if not 0 <= low <= high <= 127:
        raise ValueError(f"the range must satisfy 0 <= low <= high <= 127 (MIDI pitches), got {low}..{high}")
    shifts = sorted(range(-4 * OCTAVE, 5 * OCTAVE, OCTAVE), key=lambda s: (abs(s), s))
    return max(shifts, key=lambda s: (int(((pitches + s >= low) & (pitches + s <= high)).sum()), -abs(s), -s))


def melody_to_soprano(melody, spec: music.RollSpec = music.CHORALE, *, to_tonic_c: bool = True,
                      start_bar: int = 0, bars: int | None = None) -> tuple[np.ndarray, int]:
    """A melody as the soprano of an otherwise silent roll for ``spec``; returns (roll, semitones).

    melody: a one-track roll (1, 2, pitches, steps), e.g. from ``data.load_corpus("folk")``; a roll
            for ``spec`` whose first track holds the melody; or a MIDI file (path or bytes, read by
            ``tasks.load_roll``) with a single pitched part.
    to_tonic_c: transpose to tonic C first (``music.estimate_key`` of the whole melody, before
            cropping), as the course's models were trained (the corpora are in C already). Then
            octaves are chosen to fit the soprano range (``metrics.SATB_RANGES``). ``semitones`` is
            the whole shift applied: ``tasks.shift_roll(result, -semitones, spec)`` takes a
            harmonization back to the key given.
    start_bar, bars: crop (default: from ``start_bar`` to the end).
    """
    if not isinstance(melody, np.ndarray) and not torch.is_tensor(melody):
        melody, _ = tasks.load_roll(melody, spec)  # a one-part file lands in track 0
    melody = np.asarray(melody.detach().cpu() if torch.is_tensor(melody) else melody).astype(bool)
    if melody.ndim != 4 or melody.shape[1:3] != (2, spec.n_pitches) or melody.shape[0] not in (1, spec.n_tracks):
        raise ValueError(f"melody has shape {melody.shape}; expected a one-track roll (1, 2, {spec.n_pitches}, steps) "
                         f"or a roll (tracks={spec.n_tracks}, 2, {spec.n_pitches}, steps) with the melody in "
                         "track 0, or the MIDI file itself.")
    if melody.shape[-1] % spec.steps_per_bar:
        raise ValueError(f"the melody has {melody.shape[-1]} steps, not whole bars of {spec.steps_per_bar}")
    total_bars = melody.shape[-1] // spec.steps_per_bar
    bars = total_bars - start_bar if bars is None else bars
    roll = np.zeros((spec.n_tracks, *melody.shape[1:]), dtype=bool)
    roll[0] = melody[0]
    whole = music.roll_to_notes(roll, spec)  # the key of the whole tune, as the data pipeline finds it
    roll = music.crop(roll, start_bar, bars, spec)
    notes = music.roll_to_notes(roll, spec)
    if len(notes) == 0:
        raise ValueError(f"bars {start_bar + 1}..{start_bar + bars} of the melody hold no notes")
    shift = 0
    if to_tonic_c:
        tonic, _, _ = music.estimate_key(whole)
        shift = -tonic if tonic <= 6 else OCTAVE - tonic  # the nearer way to C
    low, high = SATB_RANGES.get(spec.tracks[0].lower(), (spec.low, spec.high - 1))
    shift += fit_octave(notes[:, 1] + shift, low, high)
    lowest, highest = notes[:, 1].min() + shift, notes[:, 1].max() + shift
    while lowest < spec.low:  # a melody wider than the soprano range: stay inside the roll at least
        shift, lowest, highest = shift + OCTAVE, lowest + OCTAVE, highest + OCTAVE
    while highest >= spec.high:
        shift, lowest, highest = shift - OCTAVE, lowest - OCTAVE, highest - OCTAVE
    if lowest < spec.low:
        raise ValueError(f"the melody spans {highest - lowest} semitones, more than the roll's range "
                         f"{music.pitch_name(spec.low)}..{music.pitch_name(spec.high - 1)}")
    return music.transpose(roll, shift, spec), shift


# --------------------------------------------------------------------------- inpainting voices

def regenerate_tracks(checkpoint, roll, tracks: Sequence[int], n: int | None = None, **options) -> np.ndarray:
    """Versions of ``roll`` in which ``tracks`` are written by the model and every other track is kept
    exactly: RePaint inpainting with a track mask.

    roll: one roll (tracks, 2, pitches, steps) of one model window, sampled ``n`` times (default 1), or
    a batch (B, tracks, 2, pitches, steps), sampled once each in one batch. options go to
    ``pipeline.generate`` (style, mode, steps, seed, resample_steps, guidance_scale, ...).
    Returns boolean rolls (n or B, tracks, 2, pitches, steps).
    """
    encoding, spec = checkpoint.encoding, checkpoint.spec
    rolls = _as_batch(roll, spec, n)
    if not all(isinstance(k, (int, np.integer)) and 0 <= k < spec.n_tracks for k in tracks):
        raise ValueError(f"tracks must be indices 0..{spec.n_tracks - 1} of {spec.tracks}, got {list(tracks)}")
    keep = [k for k in range(spec.n_tracks) if k not in set(tracks)]
    if not keep:
        raise ValueError("every track would be regenerated: nothing is known, use pipeline.generate instead")
    bars = rolls.shape[-1] // spec.steps_per_bar
    mask = known_tracks_mask(encoding, keep, bars)
    return pipeline.generate(checkpoint, len(rolls), known=encoding.encode(rolls), known_mask=mask, bars=bars,
                             **options)


def harmonize(checkpoint, soprano_roll, n: int | None = None, *, hop_bars: int = 2,
              window_bars: int = WINDOW_BARS, seed: int | None = 0, progress: bool = False,
              **options) -> np.ndarray:
    """Write alto, tenor and bass under the soprano of ``soprano_roll``; returns rolls
    (n or B, tracks, 2, pitches, steps) whose soprano is the one given.

    soprano_roll: one roll (tracks, 2, pitches, steps), harmonized ``n`` times (default 1), or a batch
    (B, tracks, 2, pitches, steps) of melodies, harmonized once each in one batch (e.g. from
    ``melody_to_soprano``; the lower tracks are ignored). A melody of ``window_bars`` bars is one
    inpainting run. A longer one is harmonized window by window, each ``hop_bars`` after the last:
    in every later window the soprano and the bars already harmonized are known, so the new bars
    continue the old ones. The melody must be a whole number of bars, at least one window.
    options go to ``pipeline.generate`` (style, mode, steps, resample_steps, ...).
    """
    spec, encoding = checkpoint.spec, checkpoint.encoding
    result = _as_batch(soprano_roll, spec, n).copy()  # (n, tracks, 2, pitches, steps)
    total = result.shape[-1] // spec.steps_per_bar
    if total < window_bars or not 1 <= hop_bars <= window_bars:
        raise ValueError(f"need a melody of at least {window_bars} bars and 1 <= hop_bars <= {window_bars}; "
                         f"got {total} bars, hop_bars={hop_bars}")
    lower, step = list(range(1, spec.n_tracks)), spec.steps_per_bar
    result[:, lower] = False
    starts = list(range(0, total - window_bars + 1, hop_bars))
    if starts[-1] != total - window_bars:
        starts.append(total - window_bars)  # the last window ends with the melody
    done = 0  # bars harmonized so far
    for w, start in enumerate(_progress(starts, progress)):
        window = result[..., start * step:(start + window_bars) * step]
        mask = known_tracks_mask(encoding, [0], window_bars)
        if done > start:  # bars start..done-1 are harmonized already: keep all their tracks
            mask = torch.maximum(mask, guidance.time_mask(mask.shape, 0, (done - start) * step))
        new = pipeline.generate(checkpoint, len(result), known=encoding.encode(window), known_mask=mask,
                                bars=window_bars, seed=None if seed is None else seed + w, **options)
        result[:, lower, ..., done * step:(start + window_bars) * step] = new[:, lower, ..., (done - start) * step:]
        done = start + window_bars
    return result


def voice_regenerator(checkpoint, *, seed: int = 0, **options) -> Callable[[np.ndarray, int], np.ndarray]:
    """``f(roll, track) -> roll`` with ``track`` rewritten by the model and the other tracks kept, for
    ``widgets.track_mixer(roll, spec, regenerate=f)``. Each call uses the next seed, so pressing
    "new alto" twice gives two different altos. options go to ``pipeline.generate``."""
    calls = itertools.count(seed)

    def regenerate(roll, track: int) -> np.ndarray:
        return regenerate_tracks(checkpoint, roll, [track], 1, seed=next(calls), **options)[0]

    return regenerate


def _as_batch(roll, spec: music.RollSpec, n: int | None) -> np.ndarray:
    """One roll repeated n times (default 1), or a batch of rolls (n, if given, must match): (n, tracks, 2,
    pitches, steps) bool."""
    roll = np.asarray(roll.detach().cpu() if torch.is_tensor(roll) else roll).astype(bool)
    if roll.ndim not in (4, 5) or roll.shape[-4:-1] != (spec.n_tracks, 2, spec.n_pitches):
        raise ValueError(f"roll has shape {roll.shape}; expected a roll (tracks={spec.n_tracks}, 2, "
                         f"pitches={spec.n_pitches}, steps) or a batch of them. Place a melody with "
                         "melody_to_soprano first.")
    if roll.shape[-1] % spec.steps_per_bar:
        raise ValueError(f"the roll has {roll.shape[-1]} steps, not whole bars of {spec.steps_per_bar}")
    if roll.ndim == 5:
        if n is not None and n != len(roll):
            raise ValueError(f"got a batch of {len(roll)} rolls and n={n}: a batch is sampled once per roll")
        return roll
    if n is not None and n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return np.repeat(roll[None], n or 1, axis=0)


def _progress(items, show: bool):
    if not show:
        return items
    from tqdm.auto import tqdm
    return tqdm(items, desc="harmonizing windows", leave=False)
