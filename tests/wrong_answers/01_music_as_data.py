"""Plausible wrong answers and alternative correct answers to lesson 1's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook has already imported ``np`` and
``music``. Every wrong answer must be rejected by the exercise's tests (visible or hidden), every
correct one accepted by all of them. The imports here only keep linters and readers oriented.
"""
import numpy as np

from course_lib import music
from course_lib.grading import Variants

variants = Variants()


# --------------------------------------------------------------------------- seconds_to_steps

@variants.wrong("seconds_to_steps", "rounds down (floor) instead of to the nearest step")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.floor(np.asarray(seconds) * tempo / 60 * steps_per_beat).astype(int)


@variants.wrong("seconds_to_steps", "forgets that the tempo is per minute (no / 60)")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.rint(np.asarray(seconds) * tempo * steps_per_beat).astype(int)


@variants.wrong("seconds_to_steps", "the tempo upside down: seconds * 60 / tempo")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.rint(np.asarray(seconds) * 60 / tempo * steps_per_beat).astype(int)


@variants.wrong("seconds_to_steps", "hard-codes 16th notes, ignoring steps_per_beat")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.rint(np.asarray(seconds) * tempo / 60 * 4).astype(int)


@variants.wrong("seconds_to_steps", "returns rounded floats, not integers")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.rint(np.asarray(seconds) * tempo / 60 * steps_per_beat)


@variants.correct("seconds_to_steps", "divides by the length of a step in seconds")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    seconds_per_step = 60.0 / tempo / steps_per_beat
    return np.round(np.asarray(seconds, dtype=float) / seconds_per_step).astype(np.int64)


@variants.correct("seconds_to_steps", "Python's round, one element at a time")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.vectorize(lambda t: int(round(t * tempo * steps_per_beat / 60)))(seconds)


@variants.wrong("seconds_to_steps", "a Python list of ints (an int array is asked)")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return [int(round(t * tempo / 60 * steps_per_beat)) for t in np.atleast_1d(seconds)]


@variants.wrong("seconds_to_steps", "flattens its input: an array of shape (N,) whatever the shape of seconds")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.rint(np.ravel(seconds) * tempo / 60 * steps_per_beat).astype(int)


@variants.correct("seconds_to_steps", "np.round then astype(np.int32)")
def seconds_to_steps(seconds, tempo, steps_per_beat=4):
    return np.round(np.multiply(seconds, tempo * steps_per_beat / 60)).astype(np.int32)


# --------------------------------------------------------------------------- notes_to_roll

@variants.wrong("notes_to_roll", "the end step included (notes one step too long)")
def notes_to_roll(notes, spec, steps):
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    for track, pitch, start, end in notes:
        roll[track, music.ONSET, pitch - spec.low, start] = True
        roll[track, music.SUSTAIN, pitch - spec.low, start:end + 1] = True
    return roll


@variants.wrong("notes_to_roll", "the MIDI pitch used as the pitch index (no - spec.low)")
def notes_to_roll(notes, spec, steps):
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    for track, pitch, start, end in notes:
        roll[track, music.ONSET, pitch, start] = True
        roll[track, music.SUSTAIN, pitch, start:end] = True
    return roll


@variants.wrong("notes_to_roll", "an onset on every sounding step")
def notes_to_roll(notes, spec, steps):
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    for track, pitch, start, end in notes:
        roll[track, :, pitch - spec.low, start:end] = True
    return roll


@variants.wrong("notes_to_roll", "onset and sustain channels swapped")
def notes_to_roll(notes, spec, steps):
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    for track, pitch, start, end in notes:
        roll[track, 1, pitch - spec.low, start] = True
        roll[track, 0, pitch - spec.low, start:end] = True
    return roll


@variants.wrong("notes_to_roll", "no channel axis: sustain only, shape (tracks, pitches, steps)")
def notes_to_roll(notes, spec, steps):
    roll = np.zeros((spec.n_tracks, spec.n_pitches, steps), dtype=bool)
    for track, pitch, start, end in notes:
        roll[track, pitch - spec.low, start:end] = True
    return roll


@variants.correct("notes_to_roll", "vectorised with np.logical_or.at")
def notes_to_roll(notes, spec, steps):
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    track, p, start, end = notes[:, 0], notes[:, 1] - spec.low, notes[:, 2], notes[:, 3]
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    roll[track, 0, p, start] = True
    sounding = (np.arange(steps) >= start[:, None]) & (np.arange(steps) < end[:, None])  # (N, steps)
    np.logical_or.at(roll, (track, np.ones_like(track), p), sounding)
    return roll


@variants.wrong("notes_to_roll", "a float roll of 0s and 1s, filled step by step (a bool roll is asked)")
def notes_to_roll(notes, spec, steps):
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=np.float32)
    for track, pitch, start, end in notes.tolist():
        roll[track][0][pitch - spec.low][start] = 1.0
        for step in range(start, end):
            roll[track][1][pitch - spec.low][step] = 1.0
    return roll


@variants.correct("notes_to_roll", "a float roll built note by note, converted to bool at the end")
def notes_to_roll(notes, spec, steps):
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps))
    for track, pitch, start, end in np.asarray(notes):
        roll[track, 0, pitch - spec.low, start] = 1
        roll[track, 1, pitch - spec.low, start:end] = 1
    return roll.astype(bool)


# --------------------------------------------------------------------------- roll_to_notes

@variants.wrong("roll_to_notes", "follows the sustain channel only: repeated notes merge")
def roll_to_notes(roll, spec):
    sustain = roll[:, music.SUSTAIN]
    rows = []
    for track, p, start in np.argwhere(roll[:, music.ONSET]):
        if start > 0 and sustain[track, p, start - 1]:
            continue  # looks like the middle of a note
        end = start + 1
        while end < roll.shape[-1] and sustain[track, p, end]:
            end += 1
        rows.append((track, spec.low + p, start, end))
    return np.array(rows, dtype=int).reshape(-1, 4)


@variants.wrong("roll_to_notes", "the end is the last sounding step (inclusive)")
def roll_to_notes(roll, spec):
    onset, sustain = roll[:, music.ONSET], roll[:, music.SUSTAIN]
    rows = []
    for track, p, start in np.argwhere(onset):
        end = start
        while end + 1 < roll.shape[-1] and sustain[track, p, end + 1] and not onset[track, p, end + 1]:
            end += 1
        rows.append((track, spec.low + p, start, end))
    return np.array(rows, dtype=int).reshape(-1, 4)


@variants.wrong("roll_to_notes", "pitch indices instead of MIDI pitches")
def roll_to_notes(roll, spec):
    onset, sustain = roll[:, music.ONSET], roll[:, music.SUSTAIN]
    rows = []
    for track, p, start in np.argwhere(onset):
        end = start + 1
        while end < roll.shape[-1] and sustain[track, p, end] and not onset[track, p, end]:
            end += 1
        rows.append((track, p, start, end))
    return np.array(rows, dtype=int).reshape(-1, 4)


@variants.wrong("roll_to_notes", "every note one step long (onsets only)")
def roll_to_notes(roll, spec):
    rows = [(track, spec.low + p, start, start + 1) for track, p, start in np.argwhere(roll[:, music.ONSET])]
    return np.array(rows, dtype=int).reshape(-1, 4)


@variants.wrong("roll_to_notes", "a silent roll gives shape (0,) instead of (0, 4)")
def roll_to_notes(roll, spec):
    onset, sustain = roll[:, music.ONSET], roll[:, music.SUSTAIN]
    rows = []
    for track, p, start in np.argwhere(onset):
        end = start + 1
        while end < roll.shape[-1] and sustain[track, p, end] and not onset[track, p, end]:
            end += 1
        rows.append([track, spec.low + p, start, end])
    return np.array(rows, dtype=int)


@variants.correct("roll_to_notes", "row by row, each note cut at the first silent step or new onset")
def roll_to_notes(roll, spec):
    n_tracks, _, n_pitches, steps = roll.shape
    rows = []
    for track in range(n_tracks):
        for p in range(n_pitches):
            onset, sustain = roll[track, 0, p], roll[track, 1, p]
            for start in np.flatnonzero(onset):
                stops = np.flatnonzero(~sustain[start + 1:] | onset[start + 1:])
                end = start + 1 + (stops[0] if stops.size else steps - start - 1)
                rows.append([track, spec.low + p, start, end])
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


@variants.wrong("roll_to_notes", "a float note table (np.array of rows with float entries)")
def roll_to_notes(roll, spec):
    rows = []
    steps = roll.shape[-1]
    for track, p, start in np.argwhere(roll[:, 0]):
        end = start + 1
        while end < steps and roll[track, 1, p, end] and not roll[track, 0, p, end]:
            end += 1
        rows.append([float(track), float(spec.low + p), float(start), float(end)])
    return np.array(rows).reshape(-1, 4)


@variants.wrong("roll_to_notes", "a Python list of rows (an int array is asked)")
def roll_to_notes(roll, spec):
    rows = []
    steps = roll.shape[-1]
    for track, p, start in np.argwhere(roll[:, 0]):
        end = start + 1
        while end < steps and roll[track, 1, p, end] and not roll[track, 0, p, end]:
            end += 1
        rows.append([int(track), int(spec.low + p), int(start), int(end)])
    return rows


# --------------------------------------------------------------------------- pitch_class_histogram

@variants.wrong("pitch_class_histogram", "counts onsets (notes), not sounding steps")
def pitch_class_histogram(roll, spec):
    per_pitch = roll[:, music.ONSET].sum(axis=(0, 2))
    histogram = np.zeros(12)
    np.add.at(histogram, (spec.low + np.arange(spec.n_pitches)) % 12, per_pitch)
    return histogram / histogram.sum() if histogram.sum() > 0 else histogram


@variants.wrong("pitch_class_histogram", "the class of index p is p % 12 (forgets spec.low)")
def pitch_class_histogram(roll, spec):
    per_pitch = roll[:, music.SUSTAIN].sum(axis=(0, 2))
    histogram = np.zeros(12)
    np.add.at(histogram, np.arange(spec.n_pitches) % 12, per_pitch)
    return histogram / histogram.sum() if histogram.sum() > 0 else histogram


@variants.wrong("pitch_class_histogram", "not normalised (raw step counts)")
def pitch_class_histogram(roll, spec):
    per_pitch = roll[:, music.SUSTAIN].sum(axis=(0, 2))
    histogram = np.zeros(12)
    np.add.at(histogram, (spec.low + np.arange(spec.n_pitches)) % 12, per_pitch)
    return histogram


@variants.wrong("pitch_class_histogram", "normalised by the largest count")
def pitch_class_histogram(roll, spec):
    per_pitch = roll[:, music.SUSTAIN].sum(axis=(0, 2))
    histogram = np.zeros(12)
    np.add.at(histogram, (spec.low + np.arange(spec.n_pitches)) % 12, per_pitch)
    return histogram / histogram.max() if histogram.max() > 0 else histogram


@variants.wrong("pitch_class_histogram", "0/0 = NaN for a silent roll")
def pitch_class_histogram(roll, spec):
    per_pitch = roll[:, music.SUSTAIN].sum(axis=(0, 2))
    histogram = np.zeros(12)
    np.add.at(histogram, (spec.low + np.arange(spec.n_pitches)) % 12, per_pitch)
    with np.errstate(invalid="ignore"):
        return histogram / histogram.sum()


@variants.correct("pitch_class_histogram", "np.bincount with weights")
def pitch_class_histogram(roll, spec):
    durations = roll[:, 1].sum(axis=(0, 2)).astype(float)
    classes = (np.arange(spec.low, spec.high)) % 12
    counts = np.bincount(classes, weights=durations, minlength=12)
    return counts / max(counts.sum(), 1.0)


@variants.correct("pitch_class_histogram", "a loop over pitches with Python numbers")
def pitch_class_histogram(roll, spec):
    counts = [0] * 12
    for p in range(spec.n_pitches):
        counts[(spec.low + p) % 12] += int(roll[:, music.SUSTAIN, p, :].sum())
    total = sum(counts)
    return np.array([c / total if total else 0.0 for c in counts])


@variants.wrong("pitch_class_histogram", "a Python list of shares (a float array is asked)")
def pitch_class_histogram(roll, spec):
    counts = [0.0] * 12
    for p in range(spec.n_pitches):
        counts[(spec.low + p) % 12] += float(roll[:, 1, p].sum())
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


@variants.wrong("pitch_class_histogram", "clears the roll's onset channel while counting (changes its input)")
def pitch_class_histogram(roll, spec):
    roll[:, 0] = False
    per_pitch = roll.sum(axis=(0, 1, 3))
    counts = np.bincount((spec.low + np.arange(spec.n_pitches)) % 12, weights=per_pitch, minlength=12)
    return counts / max(counts.sum(), 1)


# --------------------------------------------------------------------------- transpose_roll

@variants.wrong("transpose_roll", "np.roll along the pitch axis: notes wrap around")
def transpose_roll(roll, semitones, spec):
    return np.roll(roll, semitones, axis=2)


@variants.wrong("transpose_roll", "shifts the wrong way (down for positive semitones)")
def transpose_roll(roll, semitones, spec):
    used = np.flatnonzero(roll.any(axis=(0, 1, 3)))
    if used.size and (used[0] - semitones < 0 or used[-1] - semitones >= spec.n_pitches):
        raise ValueError("out of range")
    shifted = np.zeros_like(roll)
    shifted[:, :, used - semitones] = roll[:, :, used]
    return shifted


@variants.wrong("transpose_roll", "shifts along the step axis (time)")
def transpose_roll(roll, semitones, spec):
    used = np.flatnonzero(roll.any(axis=(0, 1, 3)))
    if used.size and (used[0] + semitones < 0 or used[-1] + semitones >= spec.n_pitches):
        raise ValueError("out of range")
    return np.roll(roll, semitones, axis=-1)


@variants.wrong("transpose_roll", "silently drops notes that leave the range")
def transpose_roll(roll, semitones, spec):
    shifted = np.zeros_like(roll)
    n = spec.n_pitches
    if semitones >= 0:
        shifted[:, :, semitones:] = roll[:, :, :n - semitones]
    else:
        shifted[:, :, :n + semitones] = roll[:, :, -semitones:]
    return shifted


@variants.wrong("transpose_roll", "an off-by-one range check (lets a note reach index n_pitches)")
def transpose_roll(roll, semitones, spec):
    used = np.flatnonzero(roll.any(axis=(0, 1, 3)))
    if used.size and (used[0] + semitones < 0 or used[-1] + semitones > spec.n_pitches):
        raise ValueError("out of range")
    shifted = np.zeros_like(roll)
    keep = used + semitones < spec.n_pitches
    shifted[:, :, used[keep] + semitones] = roll[:, :, used[keep]]
    return shifted


@variants.wrong("transpose_roll", "transposes the roll it was given, in place")
def transpose_roll(roll, semitones, spec):
    used = np.flatnonzero(roll.any(axis=(0, 1, 3)))
    if used.size and (used[0] + semitones < 0 or used[-1] + semitones >= spec.n_pitches):
        raise ValueError("out of range")
    moved = roll[:, :, used].copy()
    roll[:] = False
    roll[:, :, used + semitones] = moved
    return roll


@variants.correct("transpose_roll", "slices and a range check through the note table")
def transpose_roll(roll, semitones, spec):
    notes = music.roll_to_notes(roll, spec)
    if len(notes) and not (spec.low <= notes[:, 1].min() + semitones and notes[:, 1].max() + semitones < spec.high):
        raise ValueError(f"cannot transpose by {semitones}: notes would leave the range")
    n = spec.n_pitches
    shifted = np.zeros_like(roll)
    if abs(semitones) < n:
        if semitones >= 0:
            shifted[:, :, semitones:] = roll[:, :, :n - semitones]
        else:
            shifted[:, :, :n + semitones] = roll[:, :, -semitones:]
    return shifted


@variants.correct("transpose_roll", "np.pad and crop")
def transpose_roll(roll, semitones, spec):
    sounding = roll.any(axis=(0, 1, 3))
    lowest, highest = np.argmax(sounding), len(sounding) - 1 - np.argmax(sounding[::-1])
    if sounding.any() and not (0 <= lowest + semitones and highest + semitones < spec.n_pitches):
        raise ValueError("transposition leaves the pitch range")
    if not sounding.any():
        return np.zeros_like(roll)
    padded = np.pad(roll, ((0, 0), (0, 0), (abs(semitones), abs(semitones)), (0, 0)))
    start = abs(semitones) - semitones
    return padded[:, :, start:start + spec.n_pitches].copy()


@variants.wrong("transpose_roll", "returns the input itself when semitones is 0")
def transpose_roll(roll, semitones, spec):
    if semitones == 0:
        return roll
    used = np.flatnonzero(roll.any(axis=(0, 1, 3)))
    if used.size and (used[0] + semitones < 0 or used[-1] + semitones >= spec.n_pitches):
        raise ValueError("notes would leave the range")
    shifted = np.zeros_like(roll)
    shifted[:, :, used + semitones] = roll[:, :, used]
    return shifted


@variants.wrong("transpose_roll", "a float64 roll (np.zeros without the input's dtype)")
def transpose_roll(roll, semitones, spec):
    used = np.flatnonzero(roll.any(axis=(0, 1, 3)))
    if used.size and (used[0] + semitones < 0 or used[-1] + semitones >= spec.n_pitches):
        raise ValueError("notes would leave the range")
    shifted = np.zeros(roll.shape)
    shifted[:, :, used + semitones] = roll[:, :, used]
    return shifted
