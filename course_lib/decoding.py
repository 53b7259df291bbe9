"""Rule-aware decoding: from the voice encoding's channels to notes that obey four-part writing.

``VoiceEncoding.decode`` reads every note on its own: the pitch class with the largest summed
score, in the octave its mean height points at. So one small error in a height channel puts a
soprano an octave low (under the alto), and two voices that the model moves together in fifths
stay parallel, even when the model's own scores say a neighbouring choice was almost as likely.

``decode_voice_leading`` keeps the rhythm exactly as the plain decoder cuts it (same notes, same
onsets and rests) and chooses each note's *pitch* by dynamic programming, voice by voice (outer
voices first: soprano, bass, then alto and tenor, as harmony is taught), minimising

    cost = confidence · (best pitch-class score - this class's score) / steps      (the model's say)
         + height · ((pitch - height target) / 6)²                                 (the model's say)
         + crossing · steps on the wrong side of a voice decoded before             (rules, against
         + spacing · steps more than an octave from the neighbouring upper voice      the voices
         + parallels · [same perfect interval as another voice, both moving]         already decoded)
         + dissonance · steps dissonant with a voice already decoded (as ``metrics.is_consonant``
                        hears a sonority: a fourth only against the bass, seconds, sevenths, tritones)
         + leaps · max(0, |interval from the previous note| - 7) / 12               (rules, this voice)
         + motion · |interval from the previous note| / 12
         + repeats · [the same pitch as the previous note]
         + intervals · -log p(interval | Bach), relative to the likeliest interval    (a melodic prior)
         + range · semitones outside the voice's range

over each voice's candidates (the ``classes`` best pitch classes, in every octave within
``reach`` semitones of the height target), Viterbi over the voice's notes. It is a decoder, not a
new model: with one class and every rule weight at 0 it gives the plain decoder's notes back (tested), and the
model card measures the model both ways. The same idea as beam search with a length penalty in
a language model: the model proposes, a small explicit prior disposes among close calls.

A window with a single melody (a folk tune; a voice sounding on under 1/8 of the steps, a stray
note, does not count) is decoded plainly: there are no voices to lead, and the melodic prior is
Bach's, not the tune's style.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import music
from .encoding import ACTIVE, HEIGHT, ONSET, PITCH_CLASSES, VOICE_CHANNELS, VoiceEncoding

SILENT = -1


@dataclass(frozen=True)
class DecodingRules:
    """Weights of ``decode_voice_leading``'s cost terms (see the module docstring)."""

    confidence: float = 1.0
    height: float = 1.0
    crossing: float = 1.0
    spacing: float = 0.5
    parallels: float = 2.0
    leaps: float = 2.0
    motion: float = 0.0  # per octave of any melodic motion: a preference for steps over skips
    repeats: float = 0.0  # a note that repeats the voice's previous pitch (chorale voices seldom do: ~14%)
    intervals: float = 0.0  # per nat of -log p(interval) under real chorales' melodic intervals (interval_costs)
    dissonance: float = 0.0  # steps dissonant with another voice (a fourth only above the bass)
    range: float = 0.2
    classes: int = 2  # pitch classes tried per note, best first
    reach: int = 9  # semitones around the height target searched for octaves

    def __post_init__(self):
        weights = [v for k, v in asdict(self).items() if k not in ("classes", "reach")]
        if not all(np.isfinite(weights)) or min(weights) < 0 or not 1 <= self.classes <= 12 or self.reach < 6:
            raise ValueError(f"decoding rules need finite weights >= 0, 1 <= classes <= 12 and reach >= 6; got {self}")


def _notes_of(active: np.ndarray, onset: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each note of one voice, as ``VoiceEncoding.decode`` cuts them."""
    starts = np.flatnonzero(active & (onset | ~np.concatenate([[False], active[:-1]])))
    notes = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(active)
        rest = np.flatnonzero(~active[start:stop])
        notes.append((int(start), int(start + (rest[0] if len(rest) else stop - start))))
    return notes


def _candidates(scores: np.ndarray, target: float, steps: int, rules: DecodingRules, spec) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pitches (C,) of one note lasting ``steps`` and their model cost (C,)."""
    order = np.argsort(-scores)[: rules.classes]
    pitches, costs = [], []
    nearest = None
    for rank, pc in enumerate(order):
        base = spec.low + (pc - spec.low) % 12
        options = np.arange(base, spec.high, 12)
        near = options[np.abs(options - target) <= rules.reach]
        if rank == 0:
            nearest = options[np.argmin(np.abs(options - target))]
            near = np.union1d(near, [nearest])
        for p in near:
            pitches.append(p)
            costs.append(rules.confidence * (scores[order[0]] - scores[pc]) / steps
                         + rules.height * ((p - target) / 6) ** 2)
    return np.asarray(pitches), np.asarray(costs)


SOLO_SHARE = 0.125  # a voice sounding on fewer steps than this (2 beats of 4 bars) does not make a window polyphonic
MAX_INTERVAL = 12  # intervals beyond an octave share the octave's cost


@functools.lru_cache(maxsize=4)
def interval_costs(corpus: str = "bach") -> np.ndarray:
    """(2·MAX_INTERVAL + 1,) costs of the signed melodic intervals -12..+12 between consecutive notes of
    a voice: -log p(interval) over the TRAIN split of a bundled corpus (add-one smoothed), minus its
    minimum, so the likeliest interval costs 0. The rule decoder's melodic prior, like a language
    model fused with a speech recogniser's scores: the network proposes, the prior breaks close calls."""
    from . import data
    loaded = data.load_corpus(corpus)
    counts = np.ones(2 * MAX_INTERVAL + 1)
    for index, notes in enumerate(loaded.notes):
        if loaded.split_of(index) != "train":
            continue
        for track in np.unique(notes[:, 0]):
            voice = notes[notes[:, 0] == track]
            voice = voice[np.argsort(voice[:, 2], kind="stable")]
            steps = np.clip(np.diff(voice[:, 1].astype(int)), -MAX_INTERVAL, MAX_INTERVAL)
            np.add.at(counts, steps + MAX_INTERVAL, 1)
    costs = -np.log(counts / counts.sum())
    return costs - costs.min()


ORDER = (0, 3, 1, 2)  # outer voices first (soprano, bass), then alto and tenor, as harmony is taught
CONSONANT_ABOVE_BASS = np.zeros(12, bool)
CONSONANT_ABOVE_BASS[[0, 3, 4, 7, 8, 9]] = True  # unison/octave, thirds, fifth, sixths (no fourth: a 6/4)
CLASH_BETWEEN_UPPER = np.zeros(12, bool)
CLASH_BETWEEN_UPPER[[1, 2, 6, 10, 11]] = True  # seconds, the tritone, sevenths


def _plain_pitch(roll: np.ndarray, step: int, spec) -> int:
    """The pitch the plain decoder gave one voice's roll (2, pitches, steps) at ``step``."""
    return spec.low + int(np.argmax(roll[music.SUSTAIN, :, step]))


def _decode_voice(voice: int, notes, scores, targets, placed: np.ndarray, encoding: VoiceEncoding,
                  rules: DecodingRules, fixed=None) -> list[int]:
    """Viterbi over one voice's notes; ``placed`` (tracks, S) holds the voices decoded so far
    (SILENT where a voice rests or is not decoded yet); track 0 is the highest voice. ``fixed``:
    per note, a pitch it must keep (given music), or None."""
    spec = encoding.spec
    low, high = encoding.ranges[voice]
    bass = spec.n_tracks - 1
    options, totals, back = [], [], []
    for n, (start, end) in enumerate(notes):
        pitches, cost = _candidates(scores[n], targets[n], end - start, rules, spec)
        if fixed is not None and fixed[n] is not None:
            pitches, cost = np.array([fixed[n]]), np.zeros(1)
        cost = cost + rules.range * (np.maximum(low - pitches, 0) + np.maximum(pitches - high, 0))
        for u in range(spec.n_tracks):
            other = placed[u, start:end]
            sounding = other != SILENT
            if u == voice or not sounding.any():
                continue
            wrong_side = pitches[:, None] > other[None, :] if u < voice else pitches[:, None] < other[None, :]
            cost = cost + rules.crossing * wrong_side[:, sounding].sum(1)
            if abs(u - voice) == 1 and min(u, voice) <= 1:  # soprano-alto, alto-tenor more than an octave apart
                gap = (other[None, :] - pitches[:, None]) * (1 if u < voice else -1)
                cost = cost + rules.spacing * (gap > 12)[:, sounding].sum(1)
            if rules.dissonance:  # as metrics.is_consonant hears a sonority: the fourth only above the bass is
                if bass in (u, voice):  # a dissonance (a 6/4), seconds, sevenths and tritones between any two
                    above = (pitches[:, None] - other[None, :]) * (1 if u == bass else -1) % 12
                    clash = ~CONSONANT_ABOVE_BASS[above]
                else:
                    clash = CLASH_BETWEEN_UPPER[np.abs(pitches[:, None] - other[None, :]) % 12]
                cost = cost + rules.dissonance * clash[:, sounding].sum(1)
        if n == 0:
            options.append(pitches), totals.append(cost), back.append(None)
            continue
        previous = options[-1]
        jump = np.abs(pitches[None, :] - previous[:, None])  # (prev, cur)
        pair = rules.leaps * np.maximum(jump - 7, 0) / 12 + rules.motion * jump / 12 + rules.repeats * (jump == 0)
        if rules.intervals:
            signed = np.clip(pitches[None, :] - previous[:, None], -MAX_INTERVAL, MAX_INTERVAL)
            pair = pair + rules.intervals * interval_costs()[signed + MAX_INTERVAL]
        if notes[n - 1][1] == start and start > 0:  # the voice moves at `start`: parallels with the others
            for u in range(spec.n_tracks):
                a, b = placed[u, start - 1], placed[u, start]
                if u == voice or a == SILENT or b == SILENT or a == b:
                    continue
                before = np.abs(a - previous[:, None]) % 12
                after = np.abs(b - pitches[None, :]) % 12
                parallel = (before == after) & ((before == 0) | (before == 7)) & (jump > 0)
                pair = pair + rules.parallels * parallel
        total = totals[-1][:, None] + pair + cost[None, :]
        back.append(total.argmin(axis=0))
        options.append(pitches), totals.append(total.min(axis=0))
    choice = [int(np.argmin(totals[-1]))]
    for n in range(len(notes) - 1, 0, -1):
        choice.append(int(back[n][choice[-1]]))
    choice.reverse()
    return [int(options[n][c]) for n, c in enumerate(choice)]


def decode_voice_leading(encoding: VoiceEncoding, x, rules: DecodingRules | None = None, *,
                         known_mask=None) -> np.ndarray:
    """x (C, S) or (B, C, S) in the voice encoding -> bool roll(s) (…, tracks, 2, pitches, steps),
    the plain decoder's rhythm with pitches chosen under the rules (module docstring).

    known_mask: model-space mask (C, S) or (B, C, S), 1 where the music is given (inpainting,
    continuation): a note starting on a given step of its voice keeps the plain decoder's pitch."""
    rules = rules or DecodingRules()
    if not isinstance(encoding, VoiceEncoding):
        raise ValueError("rule-aware decoding reads the voice encoding; decode other encodings with encoding.decode")
    x = (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))).detach().float().cpu()
    spec = encoding.spec
    if x.shape[-2] != spec.n_tracks * VOICE_CHANNELS:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (…, {spec.n_tracks * VOICE_CHANNELS}, steps)")
    batch_shape, steps = x.shape[:-2], x.shape[-1]
    v = x.reshape(-1, spec.n_tracks, VOICE_CHANNELS, steps).numpy()
    keep = np.zeros((len(v), spec.n_tracks, steps), bool)
    if known_mask is not None:
        mask = torch.as_tensor(known_mask).float().cpu().expand(*batch_shape, spec.n_tracks * VOICE_CHANNELS, steps)
        keep = mask.reshape(-1, spec.n_tracks, VOICE_CHANNELS, steps)[:, :, ACTIVE].numpy() > 0.5
    # (B,) voices that sound for more than a stray note (a folk window's model output may hold one)
    voices_heard = ((v[:, :, ACTIVE] > 0).mean(axis=-1) >= SOLO_SHARE).sum(axis=1)
    solo = voices_heard < 2
    plain = (encoding.decode(x.reshape(-1, spec.n_tracks * VOICE_CHANNELS, steps))
             if keep.any() or solo.any() else None)
    roll = np.zeros((len(v), spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    for b in range(len(v)):
        if solo[b]:  # one melody (a folk tune): no voices to lead, and Bach's melodic prior is not its style
            roll[b] = plain[b]
            continue
        placed = np.full((spec.n_tracks, steps), SILENT)
        for voice in (ORDER if spec.n_tracks == 4 else range(spec.n_tracks)):
            active = v[b, voice, ACTIVE] > 0
            notes = _notes_of(active, v[b, voice, ONSET] > 0)
            if not notes:
                continue
            scores = np.stack([v[b, voice, PITCH_CLASSES, s:e].sum(axis=1) for s, e in notes])  # (N, 12)
            # the plain decoder's octave target: the note's mean height, clipped to the range
            mean_height = torch.tensor([[v[b, voice, HEIGHT, s:e].mean() for s, e in notes]]).clamp(-1, 1)
            targets = encoding.heights_to_pitches(mean_height.expand(spec.n_tracks, -1).unsqueeze(0))[0, voice].numpy()
            fixed = [_plain_pitch(plain[b, voice], start, spec) if keep[b, voice, start] else None
                     for start, _ in notes]
            chosen = _decode_voice(voice, notes, scores, targets, placed, encoding, rules, fixed)
            for (start, end), pitch in zip(notes, chosen):
                placed[voice, start:end] = pitch
                roll[b, voice, music.SUSTAIN, pitch - spec.low, start:end] = True
                roll[b, voice, music.ONSET, pitch - spec.low, start] = True
    return roll.reshape(*batch_shape, spec.n_tracks, 2, spec.n_pitches, steps)
