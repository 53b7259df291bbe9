"""Visible tests of lesson 1, Music as data: ``checks.check_seconds_to_steps(seconds_to_steps)``, ...

Each check runs the student's function on the lesson's small examples and compares it with
values worked out by hand; on a wrong answer it names the likely mistake (see course_lib.checks).
Beyond the values, each checks what the docstring promises about type, dtype, shape and inputs:
the next lesson's code indexes with these note tables and rolls.
"""
from __future__ import annotations

import numpy as np

from course_lib import music
from course_lib.checks import (call, check_close, check_dtype, check_equal, check_new, check_raises, check_shape,
                               check_type, check_unchanged, use_student_or_library)

__all__ = ["check_seconds_to_steps", "check_notes_to_roll", "check_roll_to_notes", "check_pitch_class_histogram",
           "check_transpose_roll", "use_student_or_library", "TINY", "TINY_NOTES", "sorted_rows"]

TINY = music.RollSpec(tracks=("upper", "lower"), low=60, high=66)  # the lesson's `tiny`: C4..F4
TINY_NOTES = np.array([[0, 60, 0, 2], [0, 60, 2, 4], [1, 64, 1, 8]])  # `tiny_notes`: C4 twice, then E4 held


def sorted_rows(table):
    """Rows sorted by track, pitch, start: the order does not matter for a note table."""
    table = np.asarray(table)
    return table[np.lexsort(table.T[::-1])] if table.ndim == 2 and len(table) else table


def _int_array(got, name: str) -> None:
    check_type(got, np.ndarray, name, what="a NumPy array of integers")
    check_dtype(got, np.integer, name)


def check_seconds_to_steps(seconds_to_steps) -> None:
    # At 96 BPM a beat lasts 0.625 s, so one 16th-note step lasts 0.15625 s.
    times = np.array([0.0, 0.15625, 0.6, 1.25, 2.2])
    before = times.copy()
    steps = call(seconds_to_steps, times, 96.0, description="seconds_to_steps(times, 96.0)")
    check_equal(steps, [0, 1, 4, 8, 14], "seconds_to_steps(times, 96.0)", likely_mistakes={
        "rounding down (int or floor) instead of to the nearest step": [0, 1, 3, 8, 14],
        "counting beats instead of 16th-note steps (use steps_per_beat)": [0, 0, 1, 2, 4],
        "the tempo used upside down (seconds per beat is 60 / tempo)": [0, 0, 2, 3, 6],
        "a missing division by 60 (the tempo is per minute, times are in seconds)": [0, 60, 230, 480, 845]})
    _int_array(steps, "seconds_to_steps(times, 96.0)")
    check_unchanged(times, before, "the times passed to seconds_to_steps")
    one = call(seconds_to_steps, 0.6, 96.0, description="seconds_to_steps(0.6, 96.0)")
    check_equal(one, 4, "seconds_to_steps(0.6, 96.0)")  # a single number works too
    check_shape(one, (), "seconds_to_steps(0.6, 96.0)")
    check_dtype(one, np.integer, "seconds_to_steps(0.6, 96.0)")
    grid = call(seconds_to_steps, times.reshape(5, 1), 96.0, description="seconds_to_steps(times.reshape(5, 1), 96.0)")
    check_shape(grid, (5, 1), "seconds_to_steps(times.reshape(5, 1), 96.0)")
    print("✓ seconds_to_steps passes the visible tests")


def check_notes_to_roll(notes_to_roll) -> None:
    expected = np.zeros((2, 2, 6, 8), dtype=bool)  # the tiny example, written out by hand
    expected[0, 0, 0, [0, 2]] = True  # upper track: onsets of the two C4s (index 60 - 60 = 0)
    expected[0, 1, 0, 0:4] = True     # ... which sound on steps 0..3
    expected[1, 0, 4, 1] = True       # lower track: E4 (index 64 - 60 = 4) starts on step 1
    expected[1, 1, 4, 1:8] = True     # ... and sounds until the end
    notes = TINY_NOTES.copy()
    got = call(notes_to_roll, notes, TINY, 8, description="notes_to_roll(tiny_notes, tiny, 8)")
    check_shape(got, (2, 2, 6, 8), "notes_to_roll(tiny_notes, tiny, 8)",
                likely_mistakes={"a roll without the channel axis (onset, sustain)": (2, 6, 8)})
    too_long = expected.copy()
    too_long[0, 1, 0, 4] = True
    check_equal(got, expected, "notes_to_roll(tiny_notes, tiny, 8)", likely_mistakes={
        "notes one step too long: the end step is exclusive": too_long,
        "an onset on every sounding step: only a note's first step is an onset": expected[:, [1, 1]],
        "onset and sustain swapped: channel 0 is music.ONSET, 1 is music.SUSTAIN": expected[:, ::-1]})
    check_type(got, np.ndarray, "notes_to_roll(tiny_notes, tiny, 8)", what="a NumPy array of booleans")
    check_dtype(got, np.bool_, "notes_to_roll(tiny_notes, tiny, 8)")
    check_unchanged(notes, TINY_NOTES, "the note table passed to notes_to_roll")
    print("✓ notes_to_roll passes the visible tests")


def check_roll_to_notes(roll_to_notes) -> None:
    tiny_roll = music.notes_to_roll(TINY_NOTES, TINY, 8)
    before = tiny_roll.copy()
    got = call(roll_to_notes, tiny_roll, TINY, description="roll_to_notes(tiny_roll, tiny)")
    check_shape(got, (None, 4), "roll_to_notes(tiny_roll, tiny)")
    check_equal(sorted_rows(got), sorted_rows(TINY_NOTES), "roll_to_notes(tiny_roll, tiny) (rows sorted)",
                likely_mistakes={
        "the two repeated C4s merged into one note: an onset ends the note before it": [[0, 60, 0, 4], [1, 64, 1, 8]],
        "notes end one step early: the end is the first step after the note": [[0, 60, 0, 1], [0, 60, 2, 3], [1, 64, 1, 7]],
        "pitch indices instead of MIDI pitches: add spec.low": [[0, 0, 0, 2], [0, 0, 2, 4], [1, 4, 1, 8]],
        "one-step notes: a note lasts while its sustain stays on": [[0, 60, 0, 1], [0, 60, 2, 3], [1, 64, 1, 2]]})
    _int_array(got, "roll_to_notes(tiny_roll, tiny)")
    check_unchanged(tiny_roll, before, "the roll passed to roll_to_notes")
    silent = call(roll_to_notes, np.zeros((2, 2, 6, 8), dtype=bool), TINY, description="roll_to_notes(a silent roll, tiny)")
    check_shape(silent, (0, 4), "roll_to_notes(a silent roll, tiny)")
    _int_array(silent, "roll_to_notes(a silent roll, tiny)")
    print("✓ roll_to_notes passes the visible tests")


def check_pitch_class_histogram(pitch_class_histogram) -> None:
    a_spec = music.RollSpec(tracks=("melody",), low=57, high=69)  # pitches A3..G#4: index 0 is an A, not a C
    a_notes = np.array([[0, 60, 0, 3], [0, 64, 3, 4], [0, 60, 4, 8]])  # C4 for 3 steps, E4 for 1, C4 for 4
    roll = music.notes_to_roll(a_notes, a_spec, 8)
    before = roll.copy()
    got = call(pitch_class_histogram, roll, a_spec, description="pitch_class_histogram(roll, a_spec)")
    check_shape(got, (12,), "pitch_class_histogram(roll, a_spec)")
    expected = np.zeros(12)
    expected[0], expected[4] = 7 / 8, 1 / 8  # C sounds on 7 of the 8 sounding steps, E on 1
    check_close(got, expected, "pitch_class_histogram(roll, a_spec)", likely_mistakes={
        "counting notes (onsets), not how long they sound": np.eye(12)[0] * 2 / 3 + np.eye(12)[4] / 3,
        "the class of pitch index p taken as p % 12: the MIDI pitch is spec.low + p": np.eye(12)[3] * 7 / 8 + np.eye(12)[7] / 8,
        "counts, not shares: divide by the total so the histogram sums to 1": np.eye(12)[0] * 7 + np.eye(12)[4],
        "division by the largest count: divide by the total so it sums to 1": np.eye(12)[0] + np.eye(12)[4] / 7})
    check_type(got, np.ndarray, "pitch_class_histogram(roll, a_spec)", what="a NumPy array of floats")
    check_dtype(got, np.floating, "pitch_class_histogram(roll, a_spec)")
    check_unchanged(roll, before, "the roll passed to pitch_class_histogram")
    silent = call(pitch_class_histogram, np.zeros_like(roll), a_spec, description="pitch_class_histogram(a silent roll, a_spec)")
    check_close(silent, np.zeros(12), "pitch_class_histogram(a silent roll, a_spec)")
    print("✓ pitch_class_histogram passes the visible tests")


def check_transpose_roll(transpose_roll) -> None:
    melody = music.notes_to_roll(np.array([[0, 61, 0, 2], [0, 63, 2, 4]]), TINY, 8)  # C#4 then D#4, upper track
    before = melody.copy()
    got = call(transpose_roll, melody, 1, TINY, description="transpose_roll(melody, 1, tiny)")
    check_shape(got, melody.shape, "transpose_roll(melody, 1, tiny)")
    check_equal(got, music.notes_to_roll(np.array([[0, 62, 0, 2], [0, 64, 2, 4]]), TINY, 8),
                "transpose_roll(melody, 1, tiny)", likely_mistakes={
        "a shift down: +1 semitone means one pitch index higher": music.notes_to_roll(np.array([[0, 60, 0, 2], [0, 62, 2, 4]]), TINY, 8),
        "a shift in time: transpose along the pitch axis (axis 2), not the step axis": music.notes_to_roll(np.array([[0, 61, 1, 3], [0, 63, 3, 5]]), TINY, 8),
        "a shift across tracks: transpose along the pitch axis (axis 2)": music.notes_to_roll(np.array([[1, 61, 0, 2], [1, 63, 2, 4]]), TINY, 8)})
    check_equal(melody, before, "the roll passed to transpose_roll (it must not change)")
    check_type(got, np.ndarray, "transpose_roll(melody, 1, tiny)", what="a NumPy array (of the input's dtype)")
    check_dtype(got, np.bool_, "transpose_roll(melody, 1, tiny)")
    same = call(transpose_roll, melody, 0, TINY, description="transpose_roll(melody, 0, tiny)")
    check_equal(same, melody, "transpose_roll(melody, 0, tiny)")
    check_new(same, {"the roll passed in": melody}, "transpose_roll(melody, 0, tiny)")
    check_raises(lambda: transpose_roll(melody, 3, TINY), ValueError, "transpose_roll(melody, 3, tiny)",
                 why="D#4 + 3 semitones = F#4 is above F4, the top of the tiny range; nothing may wrap around or vanish")
    print("✓ transpose_roll passes the visible tests")
