"""Plausible wrong answers and alternative correct answers to lesson 7's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook has imported ``np``, ``torch``, ``music``
and ``guidance``. Every wrong answer must be rejected by the exercise's tests (visible or hidden),
every correct one accepted by all of them.
"""
import numpy as np
import torch

from course_lib import guidance, music
from course_lib.grading import Variants

variants = Variants()


# --------------------------------------------------------------------------- voice_pitches

@variants.wrong("voice_pitches", "pitch indices, not MIDI pitches (no + spec.low)")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    return np.where(sounding, np.arange(spec.n_pitches)[None, :, None], -1).max(axis=1)


@variants.wrong("voice_pitches", "argmax without masking: a rest reads as the lowest pitch")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    top = spec.n_pitches - 1 - sounding[:, ::-1].argmax(axis=1)
    return np.where(sounding.any(axis=1), spec.low + top, spec.low + sounding.argmax(axis=1))


@variants.wrong("voice_pitches", "the lowest sounding pitch, not the highest")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    return np.where(sounding.any(axis=1), spec.low + sounding.argmax(axis=1), -1)


@variants.wrong("voice_pitches", "reads the onset channel: held notes vanish")
def voice_pitches(roll, spec):
    onsets = roll[:, music.ONSET].astype(bool)
    return np.where(onsets, spec.low + np.arange(spec.n_pitches)[None, :, None], -1).max(axis=1)


@variants.wrong("voice_pitches", "hard-codes the course's lowest pitch 36")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    return np.where(sounding, 36 + np.arange(sounding.shape[1])[None, :, None], -1).max(axis=1)


@variants.wrong("voice_pitches", "(steps, tracks): transposed")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    return np.where(sounding, spec.low + np.arange(spec.n_pitches)[None, :, None], -1).max(axis=1).T


@variants.wrong("voice_pitches", "the pitch axis read upside down (spec.high - 1 - index)")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    midi_pitch = spec.high - 1 - np.arange(spec.n_pitches)
    return np.where(sounding, midi_pitch[None, :, None], -1).max(axis=1)


@variants.correct("voice_pitches", "arg-max of the reversed pitch axis, rests masked")
def voice_pitches(roll, spec):
    sounding = np.asarray(roll)[:, 1] > 0.5
    top = sounding.shape[1] - 1 - np.argmax(sounding[:, ::-1, :], axis=1)
    return np.where(sounding.any(axis=1), top + spec.low, -1).astype(np.int64)


@variants.correct("voice_pitches", "plain loops over tracks and steps")
def voice_pitches(roll, spec):
    tracks, _, pitches, steps = roll.shape
    out = [[-1] * steps for _ in range(tracks)]
    for k in range(tracks):
        for s in range(steps):
            for i in range(pitches):
                if roll[k][1][i][s]:
                    out[k][s] = spec.low + i  # the last (highest) one wins
    return np.array(out)


@variants.wrong("voice_pitches", "floats, -1.0 for a rest (an int array is asked: 64.0 is no index)")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    midi_pitch = (spec.low + np.arange(sounding.shape[1])).astype(float)
    return np.where(sounding, midi_pitch[None, :, None], -1.0).max(axis=1)

@variants.wrong("voice_pitches", "a list of lists (tolist), not an array")
def voice_pitches(roll, spec):
    sounding = roll[:, music.SUSTAIN].astype(bool)
    return np.where(sounding, (spec.low + np.arange(spec.n_pitches))[None, :, None], -1).max(axis=1).tolist()


# --------------------------------------------------------------------------- voice_crossing_rate

@variants.wrong("voice_crossing_rate", "the voice order reversed (upper above lower counted)")
def voice_crossing_rate(pitches):
    upper, lower = pitches[:-1], pitches[1:]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (upper > lower)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("voice_crossing_rate", "a unison counted as a crossing (>=)")
def voice_crossing_rate(pitches):
    upper, lower = pitches[:-1], pitches[1:]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (lower >= upper)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("voice_crossing_rate", "rests compared as pitch -1")
def voice_crossing_rate(pitches):
    return float((pitches[1:] > pitches[:-1]).mean())


@variants.wrong("voice_crossing_rate", "rests left in the denominator")
def voice_crossing_rate(pitches):
    upper, lower = pitches[:-1], pitches[1:]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (lower > upper)).sum() / upper.size)


@variants.wrong("voice_crossing_rate", "every pair of voices, not only adjacent ones")
def voice_crossing_rate(pitches):
    crossed = compared = 0
    for i in range(len(pitches)):
        for j in range(i + 1, len(pitches)):
            both = (pitches[i] >= 0) & (pitches[j] >= 0)
            crossed += (both & (pitches[j] > pitches[i])).sum()
            compared += both.sum()
    return float(crossed / compared) if compared else float("nan")


@variants.wrong("voice_crossing_rate", "a count, not a rate")
def voice_crossing_rate(pitches):
    upper, lower = pitches[:-1], pitches[1:]
    both = (upper >= 0) & (lower >= 0)
    return int((both & (lower > upper)).sum()) if both.any() else float("nan")


@variants.wrong("voice_crossing_rate", "0 instead of nan when nothing can be compared")
def voice_crossing_rate(pitches):
    upper, lower = pitches[:-1], pitches[1:]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (lower > upper)).sum() / max(1, both.sum()))


@variants.wrong("voice_crossing_rate", "the mean of each pair's rate, not one pooled rate")
def voice_crossing_rate(pitches):
    rates = []
    for k in range(len(pitches) - 1):
        both = (pitches[k] >= 0) & (pitches[k + 1] >= 0)
        if both.any():
            rates.append((both & (pitches[k + 1] > pitches[k])).sum() / both.sum())
    return float(np.mean(rates)) if rates else float("nan")


@variants.wrong("voice_crossing_rate", "only the upper voice's rests skipped")
def voice_crossing_rate(pitches):
    upper, lower = pitches[:-1], pitches[1:]
    sounding = upper >= 0
    return float((sounding & (lower > upper)).sum() / sounding.sum()) if sounding.any() else float("nan")


@variants.correct("voice_crossing_rate", "np.diff down the voices, masked mean")
def voice_crossing_rate(pitches):
    pitches = np.asarray(pitches)
    rising = np.diff(pitches, axis=0) > 0  # lower minus upper > 0
    both = (pitches[:-1] != -1) & (pitches[1:] != -1)
    return rising[both].mean() if both.any() else np.nan


@variants.correct("voice_crossing_rate", "loops over pairs and steps")
def voice_crossing_rate(pitches):
    crossed = compared = 0
    for k in range(len(pitches) - 1):
        for a, b in zip(pitches[k], pitches[k + 1]):
            if a >= 0 and b >= 0:
                compared += 1
                crossed += b > a
    return crossed / compared if compared else float("nan")


@variants.correct("voice_crossing_rate", "a NumPy float32 and np.nan")
def voice_crossing_rate(pitches):
    p = np.asarray(pitches)
    both = (p[:-1] >= 0) & (p[1:] >= 0)
    return np.float32((both & (p[1:] > p[:-1])).sum() / both.sum()) if both.any() else np.nan

@variants.wrong("voice_crossing_rate", "nan when no voice crosses (nan is for no comparison)")
def voice_crossing_rate(pitches):
    upper, lower = pitches[:-1], pitches[1:]
    both = (upper >= 0) & (lower >= 0)
    crossings = (both & (lower > upper)).sum()
    return float(crossings / both.sum()) if crossings else float("nan")


# --------------------------------------------------------------------------- spacing_violation_rate

@variants.wrong("spacing_violation_rate", "the tenor-bass pair included")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[:-1], pitches[1:]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (upper - lower > limit)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("spacing_violation_rate", "an octave counted as too wide (>=)")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[:-2], pitches[1:-1]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (upper - lower >= limit)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("spacing_violation_rate", "the interval taken mod 12")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[:-2], pitches[1:-1]
    both = (upper >= 0) & (lower >= 0)
    return float((both & ((upper - lower) % 12 > limit)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("spacing_violation_rate", "rests compared as pitch -1")
def spacing_violation_rate(pitches, limit=12):
    return float((pitches[:-2] - pitches[1:-1] > limit).mean())


@variants.wrong("spacing_violation_rate", "limit ignored (always 12)")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[:-2], pitches[1:-1]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (upper - lower > 12)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("spacing_violation_rate", "only the soprano-alto pair")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[0], pitches[1]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (upper - lower > limit)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("spacing_violation_rate", "absolute distance: a wide crossing counted as wide spacing")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[:-2], pitches[1:-1]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (np.abs(upper - lower) > limit)).sum() / both.sum()) if both.any() else float("nan")


@variants.wrong("spacing_violation_rate", "the mean of each pair's rate, not one pooled rate")
def spacing_violation_rate(pitches, limit=12):
    rates = []
    for k in range(len(pitches) - 2):
        both = (pitches[k] >= 0) & (pitches[k + 1] >= 0)
        if both.any():
            rates.append((both & (pitches[k] - pitches[k + 1] > limit)).sum() / both.sum())
    return float(np.mean(rates)) if rates else float("nan")


@variants.wrong("spacing_violation_rate", "0 instead of nan when nothing can be compared")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[:-2], pitches[1:-1]
    both = (upper >= 0) & (lower >= 0)
    return float((both & (upper - lower > limit)).sum() / max(1, both.sum()))


@variants.correct("spacing_violation_rate", "np.diff, then drop the lowest pair")
def spacing_violation_rate(pitches, limit=12):
    pitches = np.asarray(pitches)
    gaps = -np.diff(pitches, axis=0)[:-1]  # upper minus lower, (V-2, steps)
    both = (pitches[:-2] >= 0) & (pitches[1:-1] >= 0)
    return float(np.mean(gaps[both] > limit)) if both.any() else float("nan")


@variants.correct("spacing_violation_rate", "loops over the upper pairs")
def spacing_violation_rate(pitches, limit=12):
    wide = compared = 0
    for k in range(len(pitches) - 2):
        for a, b in zip(pitches[k], pitches[k + 1]):
            if a != -1 and b != -1:
                compared += 1
                wide += int(a - b > limit)
    return wide / compared if compared else float("nan")


@variants.wrong("spacing_violation_rate", "nan when no pair is too wide (nan is for no comparison)")
def spacing_violation_rate(pitches, limit=12):
    upper, lower = pitches[:-2], pitches[1:-1]
    both = (upper >= 0) & (lower >= 0)
    gaps = (upper - lower)[both]
    wide = gaps[gaps > limit]
    return len(wide) / both.sum() if len(wide) else float("nan")


# --------------------------------------------------------------------------- parallel_fifths_octaves

@variants.wrong("parallel_fifths_octaves", "interval not taken mod 12 (compound fifths, octaves missed)")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs(upper - lower)
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return int((sound[:-1] & sound[1:] & same & (interval[:-1] == interval[1:]) & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "interval not mod 12 but octave allowed as 12")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs(upper - lower)
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return int((sound[:-1] & sound[1:] & same & (interval[:-1] == interval[1:])
                & np.isin(interval[:-1], (0, 7, 12))).sum())


@variants.wrong("parallel_fifths_octaves", "oblique and contrary motion counted (no direction check)")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    moving = (np.diff(upper) != 0) | (np.diff(lower) != 0)
    interval = np.abs(upper - lower) % 12
    return int((sound[:-1] & sound[1:] & moving & (interval[:-1] == interval[1:])
                & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "oblique motion counted (one voice moving is enough)")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    not_contrary = np.sign(move_u) * np.sign(move_l) >= 0
    interval = np.abs(upper - lower) % 12
    moving = (move_u != 0) | (move_l != 0)
    return int((sound[:-1] & sound[1:] & moving & not_contrary & (interval[:-1] == interval[1:])
                & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "a held perfect interval counted (no motion check)")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs(upper - lower) % 12
    return int((sound[:-1] & sound[1:] & (np.sign(move_u) == np.sign(move_l)) & (interval[:-1] == interval[1:])
                & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "off by one step: the interval after compared two steps later")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    count = 0
    for s in range(len(upper) - 2):
        if min(upper[s], upper[s + 1], lower[s], lower[s + 1]) < 0:
            continue
        du, dl = upper[s + 1] - upper[s], lower[s + 1] - lower[s]
        before, after = abs(upper[s] - lower[s]) % 12, abs(upper[s + 2] - lower[s + 2]) % 12
        count += du != 0 and np.sign(du) == np.sign(dl) and before == after and before in (0, 7)
    return int(count)


@variants.wrong("parallel_fifths_octaves", "off by one step: the moves misaligned with the intervals")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    interval = np.abs(upper - lower) % 12
    perfect = (interval[1:] == interval[:-1]) & np.isin(interval[1:], (0, 7))
    return int((sound[:-2] & sound[1:-1] & same[1:] & perfect[:-1]).sum())


@variants.wrong("parallel_fifths_octaves", "wrong voice order: (lower - upper) % 12 without abs")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = (lower - upper) % 12
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return int((sound[:-1] & sound[1:] & same & (interval[:-1] == interval[1:]) & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "rests not checked")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs(upper - lower) % 12
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return int((same & (interval[:-1] == interval[1:]) & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "only the upper voice's rests checked")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = upper >= 0
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs(upper - lower) % 12
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return int((sound[:-1] & sound[1:] & same & (interval[:-1] == interval[1:]) & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "rests checked on step s only, not on s+1")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs(upper - lower) % 12
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return int((sound[:-1] & same & (interval[:-1] == interval[1:]) & np.isin(interval[:-1], (0, 7))).sum())


@variants.correct("parallel_fifths_octaves", "a loop over consecutive pairs of steps")
def parallel_fifths_octaves(upper, lower):
    count = 0
    for s in range(len(upper) - 1):
        u0, u1, l0, l1 = int(upper[s]), int(upper[s + 1]), int(lower[s]), int(lower[s + 1])
        if min(u0, u1, l0, l1) < 0:
            continue
        similar = (u1 - u0) * (l1 - l0) > 0  # both move, the same way
        if similar and abs(u0 - l0) % 12 == abs(u1 - l1) % 12 and abs(u0 - l0) % 12 in (0, 7):
            count += 1
    return count


@variants.correct("parallel_fifths_octaves", "vectorised with a product of the moves")
def parallel_fifths_octaves(upper, lower):
    u, l = np.asarray(upper, dtype=int), np.asarray(lower, dtype=int)
    ok = np.minimum(np.minimum(u[:-1], u[1:]), np.minimum(l[:-1], l[1:])) >= 0
    ic = np.mod(np.abs(u - l), 12)
    perfect = (ic[1:] == ic[:-1]) & ((ic[:-1] == 0) | (ic[:-1] == 7))
    return int(np.count_nonzero(ok & (np.diff(u) * np.diff(l) > 0) & perfect))


@variants.correct("parallel_fifths_octaves", "a NumPy integer from np.sum")
def parallel_fifths_octaves(upper, lower):
    u, l = np.asarray(upper), np.asarray(lower)
    ic = np.abs(u - l) % 12
    sound = (u[:-1] > -1) & (u[1:] > -1) & (l[:-1] > -1) & (l[1:] > -1)
    similar = (np.diff(u) != 0) & (np.sign(np.diff(u)) == np.sign(np.diff(l)))
    return np.sum(sound & similar & (ic[:-1] == ic[1:]) & ((ic[1:] == 0) | (ic[1:] == 7)))

@variants.wrong("parallel_fifths_octaves", "the absolute value misplaced: abs((upper - lower) % 12)")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs((upper - lower) % 12)
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return int((sound[:-1] & sound[1:] & same & (interval[:-1] == interval[1:]) & np.isin(interval[:-1], (0, 7))).sum())


@variants.wrong("parallel_fifths_octaves", "the per-step flags (a bool array), not their count")
def parallel_fifths_octaves(upper, lower):
    upper, lower = np.asarray(upper), np.asarray(lower)
    sound = (upper >= 0) & (lower >= 0)
    move_u, move_l = np.diff(upper), np.diff(lower)
    interval = np.abs(upper - lower) % 12
    same = (move_u != 0) & (np.sign(move_u) == np.sign(move_l))
    return sound[:-1] & sound[1:] & same & (interval[:-1] == interval[1:]) & np.isin(interval[:-1], (0, 7))


# --------------------------------------------------------------------------- all_but_track_mask

@variants.wrong("all_but_track_mask", "the mask inverted (1 on the track)")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.zeros(encoding.shape(bars))
    mask[encoding.track_channels(track)] = 1.0
    return mask


@variants.wrong("all_but_track_mask", "the next track's channel block")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(bars))
    mask[encoding.track_channels(track + 1)] = 0.0
    return mask


@variants.wrong("all_but_track_mask", "time steps zeroed instead of channels")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(bars))
    mask[..., encoding.track_channels(track)] = 0.0
    return mask


@variants.wrong("all_but_track_mask", "a block one channel short")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(bars))
    channels = encoding.track_channels(track)
    mask[channels[0]:channels[-1]] = 0.0
    return mask


@variants.wrong("all_but_track_mask", "hard-codes 15 channels a voice (the voice encoding)")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(bars))
    mask[15 * track:15 * (track + 1)] = 0.0
    return mask


@variants.wrong("all_but_track_mask", "hard-codes 2 channels a track (the piano roll)")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(bars))
    mask[2 * track:2 * track + 2] = 0.0
    return mask


@variants.wrong("all_but_track_mask", "ignores bars (always 4)")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(4))
    mask[encoding.track_channels(track)] = 0.0
    return mask


@variants.wrong("all_but_track_mask", "a batch axis in front (1, C, steps)")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(1, *encoding.shape(bars))
    mask[:, encoding.track_channels(track)] = 0.0
    return mask


@variants.correct("all_but_track_mask", "1 - guidance.track_mask")
def all_but_track_mask(encoding, track, bars=4):
    return 1.0 - guidance.track_mask(encoding.shape(bars), encoding.track_channels(track))


@variants.correct("all_but_track_mask", "a boolean comparison over a channel index")
def all_but_track_mask(encoding, track, bars=4):
    shape = encoding.shape(bars)
    channel = torch.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1))
    generated = torch.isin(channel, torch.tensor(encoding.track_channels(track)))
    return (~generated).float().expand(shape).clone()


@variants.wrong("all_but_track_mask", "a boolean tensor (True = known): 1 - mask then raises")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(bars), dtype=torch.bool)
    mask[encoding.track_channels(track)] = False
    return mask


@variants.wrong("all_but_track_mask", "the 4-bar mask cut to length: wrong for more than 4 bars")
def all_but_track_mask(encoding, track, bars=4):
    mask = torch.ones(encoding.shape(4))
    mask[encoding.track_channels(track)] = 0.0
    return mask[..., :bars * encoding.shape(1)[-1]]


@variants.wrong("all_but_track_mask", "a NumPy array (the samplers need a tensor)")
def all_but_track_mask(encoding, track, bars=4):
    mask = np.ones(encoding.shape(bars), dtype=np.float32)
    mask[encoding.track_channels(track)] = 0.0
    return mask
