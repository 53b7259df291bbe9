"""Plausible wrong answers and alternative correct answers to lesson 8's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook's cells have imported ``np``, ``torch`` and
``music``. Every wrong answer must be rejected by the exercise's tests (visible or hidden), every
correct one accepted by all of them. The imports here only keep linters and readers oriented.
"""
import numpy as np
import torch

from course_lib import guidance, music
from course_lib.grading import Variants

variants = Variants()


# --------------------------------------------------------------------------- state_conditions

@variants.wrong("state_conditions", "returns the state's own dict: the tempo stays in, missing labels are absent")
def state_conditions(state, states):
    if state not in states:
        raise ValueError(f"unknown game state {state!r}; known states: {', '.join(states)}")
    return states[state]


@variants.wrong("state_conditions", "drops the tempo but leaves missing labels out instead of None")
def state_conditions(state, states):
    if state not in states:
        raise ValueError(f"unknown game state {state!r}; known states: {', '.join(states)}")
    return {key: value for key, value in states[state].items() if key != "tempo"}


@variants.wrong("state_conditions", "fills missing labels with defaults (density 0.0 asks for silence)")
def state_conditions(state, states):
    if state not in states:
        raise ValueError(f"unknown game state {state!r}; known states: {', '.join(states)}")
    defaults = {"style": "bach", "mode": "major", "density": 0.0}
    return {key: states[state].get(key, defaults[key]) for key in defaults}


@variants.wrong("state_conditions", "pops the tempo out of the caller's mapping (mutates it)")
def state_conditions(state, states):
    if state not in states:
        raise ValueError(f"unknown game state {state!r}; known states: {', '.join(states)}")
    conditions = states[state]
    conditions.pop("tempo", None)
    for key in ("style", "mode", "density"):
        conditions.setdefault(key, None)
    return conditions


@variants.wrong("state_conditions", "a bare KeyError for an unknown state")
def state_conditions(state, states):
    return {key: states[state].get(key) for key in ("style", "mode", "density")}


@variants.wrong("state_conditions", "a ValueError that does not say which states exist")
def state_conditions(state, states):
    if state not in states:
        raise ValueError(f"unknown game state {state!r}")
    return {key: states[state].get(key) for key in ("style", "mode", "density")}


@variants.correct("state_conditions", "try/except KeyError, re-raised as ValueError with sorted names")
def state_conditions(state, states):
    try:
        conditions = states[state]
    except KeyError:
        raise ValueError(f"no state called {state}. Choose one of: {sorted(states)}") from None
    return {"style": conditions.get("style"), "mode": conditions.get("mode"), "density": conditions.get("density")}


@variants.correct("state_conditions", "a copy without the tempo, with the missing labels set to None")
def state_conditions(state, states):
    if state not in states:
        raise ValueError("unknown state " + repr(state) + "; the mapping has " + repr(list(states)))
    conditions = {key: value for key, value in states[state].items() if key != "tempo"}
    for key in ("style", "mode", "density"):
        conditions.setdefault(key, None)
    return conditions


@variants.wrong("state_conditions", "the mapping's own dict returned when a state has exactly the three labels")
def state_conditions(state, states):
    if state not in states:
        raise ValueError(f"unknown game state {state!r}; known states: {', '.join(states)}")
    conditions = states[state]
    if set(conditions) == {"style", "mode", "density"}:
        return conditions
    return {key: conditions.get(key) for key in ("style", "mode", "density")}


# --------------------------------------------------------------------------- continuation_window

@variants.wrong("continuation_window", "keeps the first bars of the music so far, not the last")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    keep = keep_bars * steps_per_bar
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, :keep] = previous[:, :keep]
    known_mask = torch.zeros_like(known)
    known_mask[:, :keep] = 1.0
    return known, known_mask


@variants.wrong("continuation_window", "puts the kept bars at the end of the window")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    keep = keep_bars * steps_per_bar
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, -keep:] = previous[:, -keep:]
    known_mask = torch.zeros_like(known)
    known_mask[:, -keep:] = 1.0
    return known, known_mask


@variants.wrong("continuation_window", "keep_bars taken as a number of steps")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, :keep_bars] = previous[:, -keep_bars:]
    known_mask = torch.zeros_like(known)
    known_mask[:, :keep_bars] = 1.0
    return known, known_mask


@variants.wrong("continuation_window", "the mask inverted: 1 on the steps to generate")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    keep = keep_bars * steps_per_bar
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, :keep] = previous[:, -keep:]
    known_mask = torch.ones_like(known)
    known_mask[:, :keep] = 0.0
    return known, known_mask


@variants.wrong("continuation_window", "bars never converted to steps: a window of window_bars steps")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    known = torch.zeros(previous.shape[0], window_bars)
    known[:, :keep_bars] = previous[:, -keep_bars:]
    known_mask = torch.zeros_like(known)
    known_mask[:, :keep_bars] = 1.0
    return known, known_mask


@variants.wrong("continuation_window", "a time-only mask of shape (L,)")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    keep = keep_bars * steps_per_bar
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, :keep] = previous[:, -keep:]
    known_mask = torch.zeros(window_bars * steps_per_bar)
    known_mask[:keep] = 1.0
    return known, known_mask


@variants.wrong("continuation_window", "the known values written into previous itself (modifies the caller's tensor)")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    keep = keep_bars * steps_per_bar
    tail = previous[:, -keep:].clone()
    previous[:, :keep] = tail  # a scratch copy in the caller's tensor: it overwrites the music so far
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, :keep] = tail
    known_mask = torch.zeros_like(known)
    known_mask[:, :keep] = 1.0
    return known, known_mask


@variants.correct("continuation_window", "torch.cat of the tail and zeros, with guidance.time_mask")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    from course_lib import guidance  # the notebook itself does not import it
    keep = keep_bars * steps_per_bar
    tail = previous[..., -keep:].float()
    known = torch.cat([tail, torch.zeros(previous.shape[0], window_bars * steps_per_bar - keep)], dim=-1)
    return known, guidance.time_mask(known.shape, 0, keep)


@variants.correct("continuation_window", "a step mask broadcast to every channel")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    steps = torch.arange(window_bars * steps_per_bar)
    keep = keep_bars * steps_per_bar
    known_mask = (steps < keep).float().expand(previous.shape[0], -1).clone()
    known = torch.zeros(previous.shape[0], len(steps), dtype=torch.float32)
    known[:, :keep] = previous[:, previous.shape[1] - keep:]
    return known, known_mask


@variants.wrong("continuation_window", "the mask read off the values (known != 0): a kept 0 counts as generated")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    keep = keep_bars * steps_per_bar
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, :keep] = previous[:, -keep:]
    return known, (known != 0).float()


@variants.wrong("continuation_window", "a bool known_mask (1 - known_mask then raises)")
def continuation_window(previous, keep_bars, window_bars, steps_per_bar):
    keep = keep_bars * steps_per_bar
    known = torch.zeros(previous.shape[0], window_bars * steps_per_bar)
    known[:, :keep] = previous[:, -keep:]
    known_mask = torch.zeros(known.shape, dtype=torch.bool)
    known_mask[:, :keep] = True
    return known, known_mask


# --------------------------------------------------------------------------- latest_start

@variants.wrong("latest_start", "an off-by-one bar: counts bar `bar` itself")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    return float(sum(beats_per_bar * 60.0 / t for t in tempos[:bar + 1]) - generation_seconds)


@variants.wrong("latest_start", "beats, not seconds")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    return float(bar * beats_per_bar - generation_seconds)


@variants.wrong("latest_start", "ignores tempo changes: every bar at the first tempo")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    return float(bar * beats_per_bar * 60.0 / tempos[0] - generation_seconds)


@variants.wrong("latest_start", "adds the generation time")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    return float(sum(beats_per_bar * 60.0 / t for t in tempos[:bar]) + generation_seconds)


@variants.wrong("latest_start", "forgets the generation time")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    return float(sum(beats_per_bar * 60.0 / t for t in tempos[:bar]))


@variants.wrong("latest_start", "tempo / 60 upside down: beats per second used as seconds per beat")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    return float(sum(beats_per_bar * t / 60.0 for t in tempos[:bar]) - generation_seconds)


@variants.wrong("latest_start", "hard-codes 4 beats per bar")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    return float(sum(4 * 60.0 / t for t in tempos[:bar]) - generation_seconds)


@variants.correct("latest_start", "cumulative sum with NumPy")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    starts = np.concatenate([[0.0], np.cumsum(beats_per_bar * 60.0 / np.asarray(tempos, dtype=float))])
    return starts[bar] - generation_seconds


@variants.correct("latest_start", "a loop over the bars before, in minutes then converted")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    minutes = 0.0
    for k in range(bar):
        minutes += beats_per_bar / tempos[k]
    return minutes * 60 - generation_seconds


@variants.wrong("latest_start", "the latest starts of every bar (an array), not of bar `bar`")
def latest_start(bar, tempos, generation_seconds, beats_per_bar=4):
    starts = np.concatenate([[0.0], np.cumsum(beats_per_bar * 60.0 / np.asarray(tempos, dtype=float))])
    return starts[:bar + 1] - generation_seconds


# --------------------------------------------------------------------------- seam_jumps

@variants.wrong("seam_jumps", "reads the onset channel after the seam: a held note looks silent")
def seam_jumps(roll, step, spec):
    jumps = np.full(roll.shape[0], np.nan)
    for voice in range(roll.shape[0]):
        before = np.flatnonzero(roll[voice, music.SUSTAIN, :, step - 1])
        after = np.flatnonzero(roll[voice, music.ONSET, :, step])
        if len(before) and len(after):
            jumps[voice] = abs(int(after.max()) - int(before.max()))
    return jumps


@variants.wrong("seam_jumps", "reads the onset channel on both sides")
def seam_jumps(roll, step, spec):
    jumps = np.full(roll.shape[0], np.nan)
    for voice in range(roll.shape[0]):
        before = np.flatnonzero(roll[voice, music.ONSET, :, step - 1])
        after = np.flatnonzero(roll[voice, music.ONSET, :, step])
        if len(before) and len(after):
            jumps[voice] = abs(int(after.max()) - int(before.max()))
    return jumps


@variants.wrong("seam_jumps", "an off-by-one step: compares step with step + 1")
def seam_jumps(roll, step, spec):
    jumps = np.full(roll.shape[0], np.nan)
    for voice in range(roll.shape[0]):
        before = np.flatnonzero(roll[voice, music.SUSTAIN, :, step])
        after = np.flatnonzero(roll[voice, music.SUSTAIN, :, step + 1])
        if len(before) and len(after):
            jumps[voice] = abs(int(after.max()) - int(before.max()))
    return jumps


@variants.wrong("seam_jumps", "an off-by-one step: compares step - 2 with step - 1")
def seam_jumps(roll, step, spec):
    jumps = np.full(roll.shape[0], np.nan)
    for voice in range(roll.shape[0]):
        before = np.flatnonzero(roll[voice, music.SUSTAIN, :, step - 2])
        after = np.flatnonzero(roll[voice, music.SUSTAIN, :, step - 1])
        if len(before) and len(after):
            jumps[voice] = abs(int(after.max()) - int(before.max()))
    return jumps


@variants.wrong("seam_jumps", "the wrong axis: differences between neighbouring voices")
def seam_jumps(roll, step, spec):
    top = np.array([np.flatnonzero(roll[v, music.SUSTAIN, :, step]).max(initial=-1) for v in range(roll.shape[0])])
    jumps = np.abs(np.diff(top)).astype(float)
    return jumps


@variants.wrong("seam_jumps", "a signed jump")
def seam_jumps(roll, step, spec):
    jumps = np.full(roll.shape[0], np.nan)
    for voice in range(roll.shape[0]):
        before = np.flatnonzero(roll[voice, music.SUSTAIN, :, step - 1])
        after = np.flatnonzero(roll[voice, music.SUSTAIN, :, step])
        if len(before) and len(after):
            jumps[voice] = int(after.max()) - int(before.max())
    return jumps


@variants.wrong("seam_jumps", "a rest counted as pitch 0 instead of NaN")
def seam_jumps(roll, step, spec):
    jumps = np.zeros(roll.shape[0])
    for voice in range(roll.shape[0]):
        before = np.flatnonzero(roll[voice, music.SUSTAIN, :, step - 1])
        after = np.flatnonzero(roll[voice, music.SUSTAIN, :, step])
        p0 = spec.low + before.max() if len(before) else 0
        p1 = spec.low + after.max() if len(after) else 0
        jumps[voice] = abs(p1 - p0)
    return jumps


@variants.correct("seam_jumps", "vectorised: top sounding pitch per voice and step with argmax")
def seam_jumps(roll, step, spec):
    sustain = np.asarray(roll)[:, music.SUSTAIN].astype(bool)  # (tracks, pitches, steps)
    pitches = sustain.shape[1]
    top = pitches - 1 - np.argmax(sustain[:, ::-1, :], axis=1)  # (tracks, steps)
    sounding = sustain.any(axis=1)
    jump = np.abs(top[:, step] - top[:, step - 1]).astype(float)
    return np.where(sounding[:, step] & sounding[:, step - 1], jump, np.nan)


@variants.correct("seam_jumps", "through the note table of music.roll_to_notes")
def seam_jumps(roll, step, spec):
    notes = music.roll_to_notes(roll, spec)
    result = []
    for voice in range(spec.n_tracks):
        mine = notes[notes[:, 0] == voice]
        def pitch_at(s):
            here = mine[(mine[:, 2] <= s) & (mine[:, 3] > s)]
            return here[:, 1].max() if len(here) else None
        a, b = pitch_at(step - 1), pitch_at(step)
        result.append(np.nan if a is None or b is None else float(abs(b - a)))
    return np.array(result)



@variants.wrong("seam_jumps", "the lowest pitch of a voice that sounds two (argmax finds the first)")
def seam_jumps(roll, step, spec):
    jumps = np.full(roll.shape[0], np.nan)
    for voice in range(roll.shape[0]):
        before, after = roll[voice, music.SUSTAIN, :, step - 1], roll[voice, music.SUSTAIN, :, step]
        if before.any() and after.any():
            jumps[voice] = abs(int(np.argmax(after)) - int(np.argmax(before)))
    return jumps


@variants.wrong("seam_jumps", "an int array with -1 for a rest (NaN is asked)")
def seam_jumps(roll, step, spec):
    jumps = np.full(roll.shape[0], -1)
    for voice in range(roll.shape[0]):
        before = np.flatnonzero(roll[voice, music.SUSTAIN, :, step - 1])
        after = np.flatnonzero(roll[voice, music.SUSTAIN, :, step])
        if len(before) and len(after):
            jumps[voice] = abs(int(after.max()) - int(before.max()))
    return jumps
