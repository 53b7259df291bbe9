"""Does it pass for the real thing? Voice-leading statistics and a classifier two-sample test.

``metrics`` asks whether samples have the properties of music (one pitch per voice, a key, a
pulse). This module asks the harder question a listener asks: *could this have been written by
the composer of the training data?* Two kinds of evidence, both computed identically for the
samples and for real held-out music, so every figure has a real-data figure beside it:

1. **Voice-leading statistics** (``voice_leading``): the rules a first-year harmony student
   learns, as rates per 4-voice window. Pitches are read per voice and 16th step (the voice's
   highest sounding pitch; a voice "sounds" where it has one); voices are ordered soprano, alto,
   tenor, bass (track 0 highest).

   ================  =========================================================================
   ``crossing``      over the 6 voice pairs (upper, lower): steps where both sound and the upper
                     voice is below the lower, summed over pairs, divided by the steps
   ``spacing``       over steps where all four sound: soprano-alto > 12 plus alto-tenor > 12
                     semitones, divided by those steps
   ``parallels``     of the (pair, step) transitions where both voices sound on both steps and
                     both change pitch, the share whose interval (|upper - lower| mod 12) is a
                     fifth both times or an octave/unison both times
   ``leaps``         share of intervals between a voice's consecutive notes larger than a fifth
                     (7 semitones)
   ``consonance``    of the steps where all four sound, the share where every upper voice's
                     interval above the bass, mod 12, is in {0, 3, 4, 5, 7, 8, 9}
   ================  =========================================================================

2. **A classifier two-sample test** (C2ST; Lopez-Paz & Oquab 2017, ``two_sample_test``): train a
   classifier to tell samples from real windows and report its cross-validated accuracy. 0.5
   means it cannot tell them apart; 1.0 means every sample gives itself away. The classifier is
   a plain L2-regularised logistic regression on interpretable per-window features
   (``window_features``: melodic-interval, note-length, vertical-interval and onset-position
   histograms plus the rates above), so when it wins, its weights say *why*
   (``C2STResult.telltales``). Run it real against real (two halves of the real data) to see the
   test's own floor: with finite data it is never exactly 0.5.

Rolls are ``(tracks, 2, pitches, steps)`` or batches ``(N, ...)``, as in ``metrics``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import music

SILENT = -1
FIFTH, OCTAVE = 7, 12
CONSONANT_ABOVE_BASS = (0, 3, 4, 5, 7, 8, 9)  # unison/octave, thirds, fourth, fifth, sixths
VOICE_LEADING = ("crossing", "spacing", "parallels", "leaps", "consonance")


# --------------------------------------------------------------------------- reading voices

def _voices(rolls, spec: music.RollSpec) -> tuple[np.ndarray, np.ndarray]:
    """Rolls -> (pitch (N, T, S) MIDI or SILENT, onset (N, T, S) bool: where a note starts)."""
    if hasattr(rolls, "detach"):
        rolls = rolls.detach().cpu().numpy()
    x = np.asarray(rolls)
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or x.shape[1:4] != (spec.n_tracks, 2, spec.n_pitches) or len(x) == 0:
        raise ValueError(f"rolls have shape {x.shape}; expected a batch (N, {spec.n_tracks}, 2, {spec.n_pitches}, "
                         "steps) or one roll; decode model tensors to rolls first (encoding.decode)")
    x = x > 0.5
    sounding = x[:, :, music.SUSTAIN]  # (N, T, P, S)
    top = spec.n_pitches - 1 - sounding[:, :, ::-1].argmax(axis=2)  # (N, T, S) highest pitch index
    pitch = np.where(sounding.any(axis=2), spec.low + top, SILENT)
    before = np.concatenate([np.full_like(pitch[..., :1], SILENT), pitch[..., :-1]], axis=-1)
    onset_at_top = np.take_along_axis(x[:, :, music.ONSET], np.clip(top, 0, None)[:, :, None], axis=2)[:, :, 0]
    onset = (pitch != SILENT) & (onset_at_top | (pitch != before))
    return pitch, onset


def _melodic_intervals(pitch: np.ndarray, onset: np.ndarray) -> list[np.ndarray]:
    """Per window: the signed intervals between consecutive notes of each voice, concatenated."""
    out = []
    for window_pitch, window_onset in zip(pitch, onset):
        parts = [np.diff(voice[starts]) for voice, starts in zip(window_pitch, window_onset)]
        out.append(np.concatenate(parts) if parts else np.zeros(0, int))
    return out


# --------------------------------------------------------------------------- voice leading

def voice_leading(rolls, spec: music.RollSpec = music.CHORALE) -> dict[str, np.ndarray]:
    """The five voice-leading rates (``VOICE_LEADING``) of each window, each an array (N,);
    NaN where a rate is undefined (no step with all four voices sounding, no moving pair, ...)."""
    if spec.n_tracks != 4:
        raise ValueError(f"voice-leading statistics need four voices (soprano, alto, tenor, bass); "
                         f"this spec has {spec.n_tracks} track(s): {spec.tracks}")
    pitch, onset = _voices(rolls, spec)
    sounds = pitch != SILENT  # (N, 4, S)
    steps = pitch.shape[-1]
    all_four = sounds.all(axis=1)  # (N, S)
    crossed = np.zeros(len(pitch))
    moves, parallel = np.zeros(len(pitch)), np.zeros(len(pitch))
    for i in range(4):
        for j in range(i + 1, 4):
            a, b = pitch[:, i], pitch[:, j]
            both = sounds[:, i] & sounds[:, j]
            crossed += (both & (a < b)).sum(axis=1)
            keep = both[:, :-1] & both[:, 1:]
            moving = keep & (a[:, 1:] != a[:, :-1]) & (b[:, 1:] != b[:, :-1])
            before, after = np.abs(a[:, :-1] - b[:, :-1]) % OCTAVE, np.abs(a[:, 1:] - b[:, 1:]) % OCTAVE
            perfect = (before == after) & ((before == 0) | (before == FIFTH))
            moves += moving.sum(axis=1)
            parallel += (moving & perfect).sum(axis=1)
    wide = ((pitch[:, 0] - pitch[:, 1] > OCTAVE).astype(int) + (pitch[:, 1] - pitch[:, 2] > OCTAVE)) * all_four
    above_bass = (pitch[:, :3] - pitch[:, 3:4]) % OCTAVE  # (N, 3, S)
    consonant = np.isin(above_bass, CONSONANT_ABOVE_BASS).all(axis=1) & all_four
    intervals = _melodic_intervals(pitch, onset)
    n_intervals = np.array([len(i) for i in intervals])
    n_leaps = np.array([(np.abs(i) > FIFTH).sum() for i in intervals])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"crossing": crossed / steps,
                "spacing": np.where(all_four.any(axis=1), wide.sum(axis=1) / all_four.sum(axis=1), np.nan),
                "parallels": np.where(moves > 0, parallel / moves, np.nan),
                "leaps": np.where(n_intervals > 0, n_leaps / n_intervals, np.nan),
                "consonance": np.where(all_four.any(axis=1), consonant.sum(axis=1) / all_four.sum(axis=1), np.nan)}


def voice_leading_summary(rolls, spec: music.RollSpec = music.CHORALE) -> dict[str, float]:
    """``voice_leading`` pooled over a set: each rate as a mean over windows (NaNs left out)."""
    rates = voice_leading(rolls, spec)
    return {name: float(np.nanmean(v)) if np.any(~np.isnan(v)) else float("nan") for name, v in rates.items()}


# --------------------------------------------------------------------------- features

INTERVAL_BINS = (-99, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 5, 7, 99)  # edges: leaps down .. leaps up
LENGTH_BINS = (1, 2, 3, 4, 6, 8, 12, 16, 999)  # note lengths in 16ths, edges


def feature_names(spec: music.RollSpec = music.CHORALE) -> list[str]:
    """Names of ``window_features``' columns, in order."""
    edges = INTERVAL_BINS
    names = [f"interval {edges[k]}..{edges[k + 1] - 1}" for k in range(len(edges) - 1)]
    names += [f"length {LENGTH_BINS[k]}..{LENGTH_BINS[k + 1] - 1}" for k in range(len(LENGTH_BINS) - 1)]
    names += [f"above bass {k}" for k in range(12)]
    names += [f"onset at 16th {k}" for k in range(spec.steps_per_bar)]
    names += [f"notes per voice: {t}" for t in spec.tracks] + [f"silent: {t}" for t in spec.tracks]
    return names + list(VOICE_LEADING)


def _histogram(values, edges) -> np.ndarray:
    counts = np.histogram(values, bins=edges)[0].astype(float)
    return counts / max(1.0, counts.sum())


def window_features(rolls, spec: music.RollSpec = music.CHORALE) -> np.ndarray:
    """Interpretable features of each 4-voice window: (N, len(feature_names(spec))) floats.

    Histograms (each normalised to sum 1): melodic intervals between consecutive notes, note
    lengths, intervals of the upper voices above the bass mod 12, onset positions in the bar;
    then notes per voice, the share of steps each voice is silent, and the voice-leading rates
    (undefined rates count as 0)."""
    pitch, onset = _voices(rolls, spec)
    steps = pitch.shape[-1]
    rates = np.nan_to_num(np.stack([voice_leading(rolls, spec)[name] for name in VOICE_LEADING], axis=1))
    rows = []
    for window_pitch, window_onset, interval in zip(pitch, onset, _melodic_intervals(pitch, onset)):
        lengths = []
        for voice, starts in zip(window_pitch, window_onset):
            begin = np.flatnonzero(starts)
            ends = np.append(begin[1:], steps)
            for b, e in zip(begin, ends):  # a note lasts until the voice rests or the next note
                rest = np.flatnonzero(voice[b:e] == SILENT)
                lengths.append(rest[0] if len(rest) else e - b)
        sounding = window_pitch != SILENT
        above = ((window_pitch[:3] - window_pitch[3:]) % OCTAVE)[sounding[:3] & sounding[3:]]
        positions = np.flatnonzero(window_onset.any(axis=0)) % spec.steps_per_bar
        rows.append(np.concatenate([
            _histogram(interval, INTERVAL_BINS), _histogram(lengths, LENGTH_BINS),
            _histogram(above, np.arange(13)), _histogram(positions, np.arange(spec.steps_per_bar + 1)),
            window_onset.sum(axis=1) / (steps / 4), 1 - sounding.mean(axis=1)]))
    return np.concatenate([np.stack(rows), rates], axis=1)


# --------------------------------------------------------------------------- the test

def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method: weights (features + 1,), bias last.

    Minimises Σ log(1 + exp(-ỹ·(x·w + b))) + l2/2·|w|² (ỹ = ±1); deterministic, no dependency."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (p - y) + penalty * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass
class C2STResult:
    accuracy: float  # mean held-out accuracy over the folds: 0.5 = indistinguishable
    fold_accuracies: list[float]
    n_per_class: int
    telltales: list[tuple[str, float]] = field(default_factory=list)  # (feature, weight): + means "sample"

    def __str__(self) -> str:
        spread = np.std(self.fold_accuracies)
        return f"{self.accuracy:.3f} ± {spread:.3f} (5-fold, {self.n_per_class} per class)"


def two_sample_test(samples, real, spec: music.RollSpec = music.CHORALE, *, groups=None, sample_groups=None,
                    folds: int = 5, seed: int = 0, l2: float = 1.0) -> C2STResult:
    """Classifier two-sample test: cross-validated accuracy of telling ``samples`` from ``real``.

    Both sets are rolls (or ``window_features`` arrays (N, F)). The larger set is subsampled to the
    size of the smaller (seeded), so chance is exactly 0.5; features are standardised on each
    training fold. ``groups`` / ``sample_groups``: a label per window (e.g. the piece it comes from;
    default: every window its own group). Windows of one group always share a fold: overlapping
    windows of one chorale are near copies, and a classifier that has seen a piece in training
    would otherwise recognise the piece, not the style (real against real would then score far
    above 0.5). ``telltales``: the features the classifier leans on most, fitted on all data."""
    a = samples if _is_features(samples) else window_features(samples, spec)
    b = real if _is_features(real) else window_features(real, spec)
    group_a = np.asarray([f"a{k}" for k in range(len(a))] if sample_groups is None else [f"a{g}" for g in sample_groups])
    group_b = np.asarray([f"b{k}" for k in range(len(b))] if groups is None else [f"b{g}" for g in groups])
    if len(group_a) != len(a) or len(group_b) != len(b):
        raise ValueError(f"groups need one label per window: {len(group_b)} for {len(b)} real windows, "
                         f"{len(group_a)} for {len(a)} samples")
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < 2 * folds:
        raise ValueError(f"the two-sample test needs at least {2 * folds} windows in each set, got {len(a)} and {len(b)}")
    keep_a, keep_b = rng.permutation(len(a))[:n], rng.permutation(len(b))[:n]
    x, y = np.concatenate([a[keep_a], b[keep_b]]), np.concatenate([np.ones(n), np.zeros(n)])
    group = np.concatenate([group_a[keep_a], group_b[keep_b]])
    names, index = np.unique(group, return_inverse=True)
    fold_of_group = np.empty(len(names), int)
    fold_of_group[rng.permutation(len(names))] = np.arange(len(names)) % folds
    fold_of = fold_of_group[index]
    accuracies = []
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
        w = fit_logistic((x[train] - mean) / std, y[train], l2)
        logits = np.concatenate([(x[test] - mean) / std, np.ones((test.sum(), 1))], axis=1) @ w
        accuracies.append(float(((logits > 0) == (y[test] > 0.5)).mean()))
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    w = fit_logistic((x - mean) / std, y, l2)[:-1]
    names = feature_names(spec) if x.shape[1] == len(feature_names(spec)) else [f"feature {k}" for k in range(x.shape[1])]
    top = np.argsort(-np.abs(w))[:5]
    return C2STResult(float(np.mean(accuracies)), accuracies, n, [(names[k], float(w[k])) for k in top])


def _is_features(x) -> bool:
    return isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind == "f"


# --------------------------------------------------------------------------- tables for the lessons

def real_windows(corpus: str = "bach", split: str = "test"):
    """The real windows every comparison is made against: rolls (N, tracks, 2, pitches, steps) of a
    split of a bundled corpus, the piece each window comes from (the two-sample test's groups), and
    the ``data.WindowDataset`` (labels, pieces)."""
    from . import data  # data imports music21 lazily; realism itself stays light
    windows = data.WindowDataset(data.load_corpus(corpus), split)
    return np.stack([windows.roll(i) for i in range(len(windows))]), [p[1] for p in windows.pieces], windows


def compare(sets: dict, real, spec: music.RollSpec = music.CHORALE, *, real_groups=None, real_name: str = "real",
            c2st: bool = True, seed: int = 0) -> str:
    """A text table for the lessons: the voice-leading rates of each named set of rolls, each with its
    multiple of the real rate beside it, and (``c2st``) the two-sample test of each set against
    ``real`` (chance 0.5). The first row is ``real`` itself; its C2ST is real against real (the
    first half of its pieces against the second), the test's own floor with this much data."""
    rows = {real_name: voice_leading_summary(real, spec)}
    rows.update({name: voice_leading_summary(rolls, spec) for name, rolls in sets.items()})
    tests = {}
    if c2st:
        groups = np.asarray(real_groups if real_groups is not None else np.arange(len(real)))
        names = np.unique(groups)
        first = np.isin(groups, names[: len(names) // 2])
        tests[real_name] = two_sample_test(real[first], real[~first], spec, groups=groups[~first],
                                           sample_groups=groups[first], seed=seed).accuracy
        for name, rolls in sets.items():
            tests[name] = two_sample_test(rolls, real, spec, groups=groups, seed=seed).accuracy
    from .metrics import format_rows  # metrics imports this module inside evaluate: import at call time
    base = rows[real_name]
    table = {}
    for name, rates in rows.items():
        cells = {f"{k} (x real)": f"{rates[k]:.4f}" if name == real_name else
                 f"{rates[k]:.4f} ({rates[k] / base[k] if base[k] else float('nan'):.1f}x)" for k in VOICE_LEADING}
        table[name] = {**cells, **({"C2ST": f"{tests[name]:.2f}"} if c2st else {})}
    lines = format_rows(table, "set").splitlines()
    lines.insert(1, "-" * len(lines[0]))
    note = (f"\nC2ST: accuracy of a logistic regression telling a set's windows from those of the {real_name} "
            f"(5-fold, grouped by piece); 0.5 = cannot tell them apart; its own row: two halves of its pieces") if c2st else ""
    return "\n".join(lines) + note
