"""Visible tests of lesson 7, Multi-track generation: ``checks.check_voice_pitches(voice_pitches)``, ...

The checks use pitch lines small enough to count by hand; on a wrong answer they name the likely
mistake. They also check what the docstrings promise: an int array of pitches, a float rate (0
when nothing is broken, nan only when nothing can be compared), an int count, crossed voices,
a float mask for any number of bars, and inputs left as they were.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import music
from course_lib.checks import (CheckFailure, call, check_close, check_dtype, check_equal, check_shape, check_type,
                               check_unchanged, use_student_or_library)

__all__ = ["check_voice_pitches", "check_voice_crossing_rate", "check_spacing_violation_rate",
           "check_parallel_fifths_octaves", "check_all_but_track_mask", "use_student_or_library"]

RATE = (float, np.floating)
COUNT = (int, np.integer)


def _rate(fn, pitches: np.ndarray, description: str, *args):
    """fn(pitches, *args), checked to be a float and to leave `pitches` alone."""
    before = pitches.copy()
    got = call(fn, pitches, *args, description=description)
    check_unchanged(pitches, before, f"the pitch lines passed to {description.split('(')[0]}")
    check_type(got, RATE, description, what="a float (a rate between 0 and 1, or nan)")
    return got


def check_voice_pitches(voice_pitches) -> None:
    toy = np.zeros((4, 2, 48, 8), dtype=bool)
    toy[0, :, 72 - 36, 0:4] = True  # soprano C5 held for 4 steps (onset on every step is harmless here)
    toy[0, music.ONSET, 72 - 36, 1:4] = False
    toy[0, :, 74 - 36, 4:8] = True  # then D5
    toy[1, music.SUSTAIN, 64 - 36, 2:6] = True  # alto E4 on steps 2-5, rests elsewhere
    toy[1, music.ONSET, 64 - 36, 2] = True
    toy[2, music.SUSTAIN, [55 - 36, 60 - 36], 0:8] = True  # the tenor holds two pitches: G3 and C4
    toy[2, music.ONSET, [55 - 36, 60 - 36], 0] = True
    before = toy.copy()
    expected = np.array([[72] * 4 + [74] * 4, [-1, -1, 64, 64, 64, 64, -1, -1], [60] * 8, [-1] * 8])
    description = "voice_pitches(toy, music.CHORALE)"
    got = call(voice_pitches, toy, music.CHORALE, description=description)
    check_unchanged(toy, before, "the roll passed to voice_pitches")
    check_type(got, np.ndarray, description, what="a NumPy array of ints")
    check_shape(got, (4, 8), description,
                likely_mistakes={"(steps, tracks): keep the tracks first, (tracks, steps)": (8, 4)})
    check_equal(got, expected, description, likely_mistakes={
        "pitch indices, not MIDI pitches: add spec.low": np.where(expected >= 0, expected - 36, -1),
        "a rest read as a pitch: where a voice is silent the answer is -1": lambda a: a[3, 0] != -1 and a[0, 0] == 72,
        "the lowest pitch of the tenor's two: take the highest": lambda a: a[2, 0] == 55,
        "the onset channel: a held note sounds on every step of the sustain channel": lambda a: a[0, 1] == -1})
    check_dtype(got, np.integer, description)  # pitches index arrays and tables: 64.0 is not an index
    print("✓ voice_pitches passes the visible tests")


def check_voice_crossing_rate(voice_crossing_rate) -> None:
    lines = np.array([[72, 70, 69, -1],   # soprano: rests on the last step
                      [67, 71, 69, 67],   # alto: above the soprano on step 1, unison on step 2
                      [60, 60, 60, 60],   # tenor
                      [48, 48, 62, 48]])  # bass: above the tenor on step 2
    # comparisons: soprano-alto on 3 steps, alto-tenor on 4, tenor-bass on 4 = 11; crossings: 2
    got = _rate(voice_crossing_rate, lines, "voice_crossing_rate(lines)")
    check_close(got, 2 / 11, "voice_crossing_rate(lines)", likely_mistakes={
        "the voice order reversed: row 0 is the top voice, a crossing is the LOWER voice sounding higher": 8 / 11,
        "a unison counted as a crossing: only a lower voice strictly above is one": 3 / 11,
        "the soprano's rest compared as pitch -1: skip steps where either voice is silent": 3 / 12,
        "rests left in the denominator: only steps where both voices sound are comparisons": 2 / 12,
        "the mean of the three pairs' rates: pool every comparison, then divide once": 7 / 36,
        "every pair of voices compared, not only adjacent ones": lambda a: a < 2 / 11 and a > 0,
        "a count, not a rate: divide by the number of comparisons": 2})
    never = np.array([[72, -1], [-1, 60]])
    check_close(_rate(voice_crossing_rate, never, "voice_crossing_rate(never)"), float("nan"),
                "voice_crossing_rate of two voices that never sound together (no comparison: nan)")
    apart = np.array([[72, 74, -1], [60, 62, 60], [48, 50, 52]])  # comparisons, none crossed
    check_close(_rate(voice_crossing_rate, apart, "voice_crossing_rate(apart)"), 0.0,
                "voice_crossing_rate of voices that never cross (comparisons but no crossing: 0)",
                likely_mistakes={"nan for no crossing: nan means no comparison; with comparisons and no crossing the "
                                 "rate is 0": float("nan")})
    print("✓ voice_crossing_rate passes the visible tests")


def check_spacing_violation_rate(spacing_violation_rate) -> None:
    lines = np.array([[81, 79, 76, -1],   # soprano: 14, 12, 9 semitones above the alto
                      [67, 67, 67, 67],
                      [60, 60, 54, 60],   # alto-tenor: 7, 7, 13, 7
                      [36, 36, 36, 36]])  # tenor-bass: 24 apart, which is allowed
    # comparisons: soprano-alto 3, alto-tenor 4 = 7; violations: 81-67 and 67-54
    got = _rate(spacing_violation_rate, lines, "spacing_violation_rate(lines)")
    check_close(got, 2 / 7, "spacing_violation_rate(lines)", likely_mistakes={
        "the tenor-bass pair included: only the upper pairs (all but the lowest) count": 6 / 11,
        "an octave counted as too wide: a violation is MORE than `limit` semitones": 3 / 7,
        "the interval taken mod 12: spacing is about distance, a 14th is not a 2nd": 0.0,
        "rests compared as pitch -1: skip steps where either voice is silent": 2 / 8,
        "the mean of the two pairs' rates: pool every comparison, then divide once": 7 / 24,
        "only soprano-alto compared: every adjacent pair but the lowest counts (alto-tenor too)": 1 / 3,
        "a count, not a rate: divide by the number of comparisons": 2})
    check_close(_rate(spacing_violation_rate, lines, "spacing_violation_rate(lines, limit=13)", 13), 1 / 7,
                "spacing_violation_rate(lines, limit=13)", likely_mistakes={"limit ignored: use the argument, not 12": 2 / 7})
    crossed = np.array([[60, 72], [76, 60], [48, 48], [36, 36]])  # the alto 16 semitones ABOVE the soprano
    check_close(_rate(spacing_violation_rate, crossed, "spacing_violation_rate(crossed)"), 1 / 4,
                "spacing_violation_rate(crossed)", likely_mistakes={
        "a crossing counted as wide spacing: a violation is pitches[k] - pitches[k+1] > limit, without abs": 2 / 4})
    check_close(_rate(spacing_violation_rate, np.array([[72, -1], [-1, 67], [60, -1], [48, 48]]),
                      "spacing_violation_rate(apart)"), float("nan"),
                "spacing_violation_rate when no upper pair sounds together (no comparison: nan)")
    close = np.array([[72, 74, 76], [67, 67, 67], [60, 62, -1], [36, 36, 36]])  # comparisons, none too wide
    check_close(_rate(spacing_violation_rate, close, "spacing_violation_rate(close)"), 0.0,
                "spacing_violation_rate of close voices (comparisons but no violation: 0)",
                likely_mistakes={"nan for no violation: nan means no comparison; with comparisons and no violation the "
                                 "rate is 0": float("nan")})
    print("✓ spacing_violation_rate passes the visible tests")


def check_parallel_fifths_octaves(parallel_fifths_octaves) -> None:
    rules = {  # (upper, lower, expected count, what it shows)
        "parallel fifths C4-D4 over F3-G3": ([60, 62], [53, 55], 1),
        "parallel octaves C5-D5 over C4-D4": ([72, 74], [60, 62], 1),
        "parallel twelfths (compound fifths) G5-A5 over C4-D4": ([79, 81], [60, 62], 1),
        "oblique: the upper voice leaps an octave, G4-G5 over C4 held": ([67, 79], [60, 60], 0),
        "contrary motion from a fifth to a twelfth, G4/C4 to D5/G3": ([67, 74], [60, 55], 0),
        "a fifth held (no motion)": ([67, 67], [60, 60], 0),
        "parallel fourths are fine": ([65, 67], [60, 62], 0),
        "a rest breaks the line": ([60, -1, 62], [53, 54, 55], 0),
        "a rest in the lower voice breaks it too: D4 over D3, then B3 over a rest": ([62, 59], [50, -1], 0),
        "a fifth then an octave (not the same interval)": ([67, 74], [60, 62], 0),
        "crossed voices in parallel fifths: the 'upper' line G3-A3 a fifth BELOW D4-E4": ([55, 57], [62, 64], 1),
    }
    for what, (u, l, expected) in rules.items():
        upper, lower = np.array(u), np.array(l)
        description = f"parallel_fifths_octaves({u}, {l})"
        got = call(parallel_fifths_octaves, upper, lower, description=description)
        check_unchanged(upper, np.array(u), f"upper, passed to {description}")
        check_unchanged(lower, np.array(l), f"lower, passed to {description}")
        check_type(got, COUNT, description, what="an int (a count)")
        check_equal(got, expected, f"parallel_fifths_octaves for {what}", likely_mistakes={
            "the absolute value in the wrong place: the interval class is |upper - lower| % 12 (crossed voices "
            "give a negative difference)": lambda a: "crossed" in what and a == 0})
    melody = np.array([67, 69, 72, 74, 74, 76, 72])
    bass = np.array([60, 62, 60, 62, 57, 64, 60])  # fifths in parallel once, octaves twice, and other motion
    got = call(parallel_fifths_octaves, melody, bass, description="parallel_fifths_octaves(melody, bass)")
    check_equal(got, 3, "parallel_fifths_octaves(melody, bass)", likely_mistakes={
        "the voices swapped in the interval: (lower - upper) % 12 turns a fifth into a fourth; use |upper - lower|": 2,
        "the interval not taken mod 12: an octave is 12 semitones, a twelfth 19, and both count": 1})
    print("✓ parallel_fifths_octaves passes the visible tests")


def check_all_but_track_mask(all_but_track_mask, voice) -> None:
    """``voice``: the lesson's VoiceEncoding (15 channels a voice)."""
    description = "all_but_track_mask(voice, 1)"
    got = call(all_but_track_mask, voice, 1, description=description)
    check_type(got, torch.Tensor, description, what="a float tensor")
    check_shape(got, voice.shape(4), description)
    alto_block = np.ones(voice.shape(4))
    alto_block[15:30] = 0
    check_equal(got, alto_block, description, likely_mistakes={
        "the mask inverted: 1 = known, so the alto's channels are 0 and every other channel is 1": 1 - alto_block,
        "the soprano's block (channels 0-14); the alto is track 1": lambda a: a[:15].sum() == 0 and a[15:30].all(),
        "the tenor's block (channels 30-44); the alto is track 1": lambda a: a[30:45].sum() == 0 and a[15:30].all(),
        "a block one channel short or shifted: use encoding.track_channels": lambda a: 0 < (a[15:30] == 0).all(1).sum() < 15,
        "time steps zeroed instead of channels: the channel axis is the first axis of one sample":
            lambda a: a[:, 15:30].sum() == 0 and a[15:30, 40:].all()})
    if not got.is_floating_point():
        raise CheckFailure(f"{description} has dtype {got.dtype}; the mask should be a float tensor (1.0 known, "
                           "0.0 generated).", "The samplers compute 1 - mask, which a bool tensor refuses: build it "
                           "with torch.ones(...) or convert with .float().")
    for bars in (2, 8):  # fewer and more bars than the model's 4-bar window
        got = call(all_but_track_mask, voice, 3, bars=bars, description=f"all_but_track_mask(voice, 3, bars={bars})")
        check_shape(got, voice.shape(bars), f"all_but_track_mask(voice, 3, bars={bars})")
        expected = torch.ones(voice.shape(bars))
        expected[45:] = 0
        check_equal(got, expected, f"all_but_track_mask(voice, 3, bars={bars})")
    print("✓ all_but_track_mask passes the visible tests")
