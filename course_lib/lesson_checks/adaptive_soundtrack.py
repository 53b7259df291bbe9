"""Visible tests of lesson 8, The adaptive soundtrack: ``checks.check_state_conditions(state_conditions)``, ...

The checks use small worked examples (a two-state mapping, a 2-channel window of 2-step bars, a
tempo ramp, a seam with a leap, a held note and a voice sounding two pitches); on a wrong answer
they name the likely mistake. They also check what the docstrings promise: new dicts and tensors,
float masks that do not depend on the values kept (a kept value may be 0), a float time, a float
array of jumps, and inputs left as they were.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import music
from course_lib.checks import (CheckFailure, call, check_close, check_dtype, check_equal, check_new, check_raises,
                               check_shape, check_type, check_unchanged, use_student_or_library)

__all__ = ["check_state_conditions", "check_continuation_window", "check_latest_start", "check_seam_jumps",
           "use_student_or_library"]


def check_state_conditions(state_conditions) -> None:
    my_states = {"stealth": {"style": "folk", "density": 0.12, "tempo": 70.0},
                 "boss": {"style": "bach", "mode": "minor", "density": 0.4, "tempo": 140.0},
                 "menu": {"style": "folk", "mode": "major", "density": 0.2}}
    saved = {name: dict(conditions) for name, conditions in my_states.items()}
    got = call(state_conditions, "stealth", my_states, description="state_conditions('stealth', my_states)")
    if my_states != saved:
        raise CheckFailure("state_conditions changed the mapping it was given: the engine reuses it.",
                           "Build a new dict (a dict comprehension) instead of popping or setting keys.")
    check_type(got, dict, "state_conditions('stealth', my_states)", what="a dict of labels")
    if "tempo" in got:
        raise CheckFailure("state_conditions('stealth', my_states) has a 'tempo' key.",
                           "The tempo is not a label: pipeline.make_labels takes style, mode and density only.")
    if set(got) != {"style", "mode", "density"}:
        raise CheckFailure(f"state_conditions('stealth', my_states) has the keys {sorted(got)}; they should be exactly "
                           "density, mode and style.", "A label the state leaves out must still be there, as None.")
    if got["mode"] is not None:
        raise CheckFailure(f"state_conditions('stealth', my_states)['mode'] is {got['mode']!r}.",
                           "'stealth' says nothing about the mode, so mode should be None (the model chooses).")
    if got != {"style": "folk", "mode": None, "density": 0.12}:
        raise CheckFailure(f"state_conditions('stealth', my_states) gave {got}, expected "
                           "{'style': 'folk', 'mode': None, 'density': 0.12}.")
    menu = call(state_conditions, "menu", my_states, description="state_conditions('menu', my_states)")
    if menu is my_states["menu"]:
        raise CheckFailure("state_conditions('menu', my_states) returned the mapping's own dict for 'menu': a change "
                           "to the labels would change the mapping.", "Return a new dict.")
    if menu != {"style": "folk", "mode": "major", "density": 0.2}:
        raise CheckFailure(f"state_conditions('menu', my_states) gave {menu}.")
    error = check_raises(lambda: state_conditions("batle", my_states), ValueError, "state_conditions('batle', my_states)",
                         why="'batle' is not a state of the mapping")
    if not ("stealth" in str(error) and "boss" in str(error)):
        raise CheckFailure(f"the ValueError should name the known states (stealth, boss, menu) so the typo is easy to "
                           f"fix; it says: {error}")
    print("✓ state_conditions passes the visible tests")


def check_continuation_window(continuation_window) -> None:
    previous = torch.arange(2 * 10, dtype=torch.float32).reshape(2, 10) + 1  # C = 2 channels, 5 bars of 2 steps
    before = previous.clone()
    description = "continuation_window(previous, keep_bars=2, window_bars=4, steps_per_bar=2)"
    got = call(continuation_window, previous, keep_bars=2, window_bars=4, steps_per_bar=2, description=description)
    check_unchanged(previous, before, "previous, passed to continuation_window")
    check_type(got, (tuple, list), description, what="a pair (known, known_mask)")
    check_equal(len(got), 2, f"the number of results of {description} (return known, known_mask)")
    known, known_mask = got
    for name, value in (("known", known), ("known_mask", known_mask)):
        check_type(value, torch.Tensor, name, what="a float tensor")
    check_shape(known, (2, 8), "known", likely_mistakes={"a window of W steps, not W bars of steps_per_bar steps": (2, 4)})
    check_shape(known_mask, (2, 8), "known_mask", likely_mistakes={
        "a mask over time only: give it x's shape, one row per channel": (8,)})
    check_dtype(known_mask, np.floating, "known_mask")  # the sampler computes 1 - known_mask
    check_dtype(known, np.floating, "known")
    check_new(known, {"previous": previous}, "known")
    expected = torch.zeros(2, 8)
    expected[:, :4] = previous[:, 6:]  # the last 2 bars (4 steps) at the start
    first_bars = torch.zeros(2, 8)
    first_bars[:, :4] = previous[:, :4]
    at_the_end = torch.zeros(2, 8)
    at_the_end[:, 4:] = previous[:, 6:]
    check_close(known, expected, "known", likely_mistakes={
        "the first bars of previous: the window continues from its LAST bars": first_bars,
        "the kept bars at the end of the window: they come first, the new music follows them": at_the_end,
        "keep_bars used as a number of steps: keep keep_bars * steps_per_bar steps": torch.cat(
            [previous[:, 8:], torch.zeros(2, 6)], dim=1)})
    check_close(known_mask, torch.tensor([[1.0] * 4 + [0.0] * 4] * 2), "known_mask", likely_mistakes={
        "the mask inverted: 1 marks the KNOWN (kept) steps": torch.tensor([[0.0] * 4 + [1.0] * 4] * 2),
        "keep_bars used as a number of steps": torch.tensor([[1.0] * 2 + [0.0] * 6] * 2)})
    quiet = previous.clone()
    quiet[:, 6:8] = 0.0  # the kept music holds zeros (in model space 0 is a value like any other)
    known, known_mask = call(continuation_window, quiet, keep_bars=2, window_bars=4, steps_per_bar=2,
                             description="continuation_window(quiet, 2, 4, 2) (kept values equal to 0)")
    check_close(known_mask, torch.tensor([[1.0] * 4 + [0.0] * 4] * 2), "known_mask when some kept values are 0",
                likely_mistakes={"a mask read off the values (known != 0): the mask says which steps are kept, "
                                 "whatever their values": lambda got: bool((got[:, :2] == 0).all())})
    print("✓ continuation_window passes the visible tests")


def check_latest_start(latest_start) -> None:
    tempos = [84.0, 84.0, 108.0, 132.0, 132.0]  # a bridge bar at 108 BPM between 84 and 132
    saved = list(tempos)
    got = call(latest_start, 3, tempos, 0.2, description="latest_start(3, tempos, 0.2)")
    check_unchanged(np.array(tempos), np.array(saved), "tempos, passed to latest_start")
    check_type(got, (float, np.floating), "latest_start(3, tempos, 0.2)", what="a float (seconds)")
    bar_seconds = [4 * 60 / t for t in tempos]  # 2.857, 2.857, 2.222, 1.818, 1.818 s
    check_close(got, sum(bar_seconds[:3]) - 0.2, "latest_start(3, tempos, 0.2)", rtol=1e-6, likely_mistakes={
        "an off-by-one bar: bar 3 starts after bars 0, 1 and 2 (tempos[:bar])": sum(bar_seconds[:4]) - 0.2,
        "beats, not seconds: a bar lasts beats_per_bar * 60 / tempo seconds": 3 * 4 - 0.2,
        "every bar at the first tempo: each bar plays at its own tempo": 3 * bar_seconds[0] - 0.2,
        "the generation time added: generation must start BEFORE the bar, by generation_seconds":
            sum(bar_seconds[:3]) + 0.2,
        "the generation time forgotten": sum(bar_seconds[:3]),
        "one beat per bar: multiply by beats_per_bar": sum(60 / t for t in tempos[:3]) - 0.2,
        "minutes, not seconds: 60 / tempo is the length of a beat in seconds": sum(4 / t for t in tempos[:3]) - 0.2})
    check_close(call(latest_start, 0, tempos, 0.5, description="latest_start(0, tempos, 0.5)"), -0.5,
                "latest_start(0, tempos, 0.5)",
                likely_mistakes={"an off-by-one bar: nothing plays before bar 0": bar_seconds[0] - 0.5})
    ramp = np.array([60.0, 120.0, 90.0])  # an array, in 3/4
    got = call(latest_start, 2, ramp, 0.25, beats_per_bar=3, description="latest_start(2, ramp, 0.25, beats_per_bar=3)")
    check_type(got, (float, np.floating), "latest_start(2, ramp, 0.25, beats_per_bar=3)", what="a float (seconds)")
    check_close(got, 3 * 60 / 60 + 3 * 60 / 120 - 0.25, "latest_start(2, ramp, 0.25, beats_per_bar=3)", rtol=1e-6,
                likely_mistakes={"4 beats hard-coded: use beats_per_bar": 4 * 60 / 60 + 4 * 60 / 120 - 0.25})
    print("✓ latest_start passes the visible tests")


def check_seam_jumps(seam_jumps) -> None:
    spec = music.CHORALE  # soprano, alto, tenor, bass; MIDI 36..83
    seam_notes = np.array([[0, 60, 0, 16], [0, 64, 16, 32],   # soprano: C4, then E4 at the bar line
                           [1, 55, 0, 12], [1, 57, 16, 32],   # alto: rests on the step before the bar line
                           [2, 50, 8, 24],                    # tenor: D3 held across the bar line
                           [3, 52, 0, 16], [3, 40, 16, 20]])  # bass: leaps down an octave
    seam_roll = music.notes_to_roll(seam_notes, spec, 32)
    before = seam_roll.copy()
    description = "seam_jumps(seam_roll, 16, spec)"
    got = call(seam_jumps, seam_roll, 16, spec, description=description)
    check_unchanged(seam_roll, before, "seam_roll, passed to seam_jumps")
    check_type(got, np.ndarray, description, what="a NumPy array of floats")
    check_shape(got, (4,), description, likely_mistakes={
        "differences along the wrong axis (between voices): one jump per voice, across time": (3,)})
    check_dtype(got, np.floating, description)  # NaN marks a rest: only a float array can hold it
    check_close(got, [4.0, np.nan, 0.0, 12.0], description, likely_mistakes={
        "the onset channel read as the pitch: a note held across the seam still sounds (use music.SUSTAIN)":
            [4.0, np.nan, np.nan, 12.0],
        "a signed jump: the size is |p(step) - p(step - 1)|": [4.0, np.nan, 0.0, -12.0],
        "an off-by-one step: the seam is between step - 1 and step, not step and step + 1": [0.0, 0.0, 0.0, 0.0],
        "an off-by-one step: the seam is between step - 1 and step, not step - 2 and step - 1": [0.0, np.nan, 0.0, 0.0]})
    two_spec = music.RollSpec(tracks=("upper", "lower"), low=40, high=70)
    chord = music.notes_to_roll(np.array([[0, 45, 0, 4], [0, 52, 0, 4], [0, 47, 4, 8],  # upper: A2 and E3, then B2
                                          [1, 41, 0, 8]]), two_spec, 8)  # lower: F2 held throughout
    got = call(seam_jumps, chord, 4, two_spec, description="seam_jumps(chord, 4, two_spec)")
    check_close(got, [5.0, 0.0], "seam_jumps(chord, 4, two_spec): the upper voice sounds two pitches before the seam",
                likely_mistakes={
        "the lowest of a voice's pitches: use its highest": [2.0, 0.0],
        "the mean of a voice's pitches: use its highest": [1.5, 0.0]})
    print("✓ seam_jumps passes the visible tests")
