"""course_lib.checks: silent on right answers, and failure messages that name the likely mistake."""
import re

import numpy as np
import pytest
import torch

from course_lib.checks import (CheckFailure, check_callable, check_close, check_dtype, check_equal,
                               check_in_range, check_raises, check_shape)


def fails(match: str):
    return pytest.raises(CheckFailure, match=match)


# --------------------------------------------------------------------------- check_close

def test_close_accepts_within_tolerance_and_other_array_types():
    expected = np.linspace(0.0, 1.0, 5)
    check_close(expected + 1e-9, expected, "x")
    check_close(list(expected), expected, "x")
    check_close(torch.tensor(expected, requires_grad=True) * 1, expected, "x")
    check_close(np.float32(0.5), 0.5, "x")
    check_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), "x")  # NaN where NaN is expected


def test_close_names_the_matching_mistake():
    alpha_bar = np.cumprod(1 - np.linspace(1e-4, 0.02, 50))
    mistakes = {"ᾱ at t+1: an off-by-one in the timestep": alpha_bar[11],
                "√ᾱ instead of ᾱ": np.sqrt(alpha_bar[10])}
    with fails(r"alpha_bar\[10\] is wrong: got .*This looks like √ᾱ instead of ᾱ\."):
        check_close(np.sqrt(alpha_bar[10]), alpha_bar[10], "alpha_bar[10]", likely_mistakes=mistakes)
    with fails("This looks like ᾱ at t\\+1: an off-by-one"):
        check_close(alpha_bar[11], alpha_bar[10], "alpha_bar[10]", likely_mistakes=mistakes)


def test_close_mistake_can_be_a_predicate_and_a_broken_predicate_is_skipped():
    def boom(actual):
        raise RuntimeError("predicate bug")

    with fails("This looks like a negative answer"):
        check_close(-3.0, 2.0, "y", likely_mistakes={"a bug": boom, "a negative answer": lambda a: a < 0})


def test_close_without_a_match_says_where_and_by_how_much():
    expected = np.zeros((2, 3))
    actual = expected.copy()
    actual[1, 2] = 0.5
    with fails(re.escape("x is wrong in 1 of 6 entries; the largest error is at x[1, 2]: got 0.5, expected 0")):
        check_close(actual, expected, "x", likely_mistakes={"unrelated": np.ones((2, 3))})


def test_close_points_at_a_number_where_nan_is_expected():
    with fails(re.escape("x is wrong in 1 of 3 entries; the largest error is at x[1]: got 0, expected nan")):
        check_close([4.0, 0.0, 1.0], [4.0, np.nan, 1.0], "x")
    with fails(re.escape("x is wrong: got 0, expected nan")):
        check_close(0.0, np.nan, "x")


@pytest.mark.parametrize("actual, hint", [
    (-np.arange(1.0, 4.0), "wrong sign"),
    (2 * np.arange(1.0, 4.0), "2 times too large"),
])
def test_close_generic_hints(actual, hint):
    with fails(hint):
        check_close(actual, np.arange(1.0, 4.0), "v")


def test_close_transposed_and_shape_mismatch_hints():
    m = np.arange(6.0).reshape(2, 3)
    with fails("are two axes swapped"):
        check_close(m.T, m, "m")
    with fails(r"has shape \(3,\) but should have shape \(2, 3\)"):
        check_close(np.zeros(3), m, "m")


def test_close_rejects_broadcasting_none_nan_and_non_numbers():
    with fails("shape"):
        check_close(np.float64(1.0), np.ones(3), "x")
    with fails("forget to `return`"):
        check_close(None, 1.0, "x")
    with fails("contains NaN"):
        check_close(np.array([1.0, np.nan]), np.ones(2), "x")
    with fails("should hold numbers"):
        check_close("0.5", 0.5, "x")


# --------------------------------------------------------------------------- check_shape

def test_shape_accepts_wildcards():
    check_shape(np.zeros((4, 2, 48, 64)), (4, 2, 48, None), "roll")


def test_shape_names_the_mistake_and_generic_hints():
    with fails(r"shape \(4, 48, 64\) but should have shape \(4, 2, 48, 64\)\. "
               r"This looks like you forgot the onset channel\."):
        check_shape(np.zeros((4, 48, 64)), (4, 2, 48, 64), "roll",
                    likely_mistakes={"you forgot the onset channel": (4, 48, 64)})
    with fails("Axis 1 \\(size 2\\) is missing"):
        check_shape(np.zeros((4, 48, 64)), (4, 2, 48, 64), "roll")
    with fails("are two axes swapped"):
        check_shape(np.zeros((4, 2, 64, 48)), (4, 2, 48, 64), "roll")
    with fails("extra axis 0 of size 1"):
        check_shape(np.zeros((1, 3)), (3,), "v")
    with fails(r"should have shape \(any, 3\)"):
        check_shape(np.zeros((2, 4)), (None, 3), "v")


# --------------------------------------------------------------------------- check_equal

def test_equal_ignores_dtype_but_not_values():
    roll = np.zeros((1, 2, 3, 4), dtype=bool)
    roll[0, :, 1, 2] = True
    check_equal(roll.astype(np.float32), roll, "roll")
    wrong = roll.copy()
    wrong[0, 1, 1, 3] = True
    with fails(re.escape("roll differs in 1 of 24 entries; the first is roll[0, 1, 1, 3]: got True, expected False")
               + ".*one step too long"):
        check_equal(wrong, roll, "roll", likely_mistakes={"notes one step too long": wrong})


def test_equal_scalars_and_shapes():
    check_equal(7, 7, "steps")
    with fails("got 8, expected 7"):
        check_equal(8, 7, "steps")
    with fails("has shape"):
        check_equal(np.zeros((2, 4)), np.zeros((3, 4)), "table")


# --------------------------------------------------------------------------- the rest

def test_callable_and_signature():
    def f(notes, spec, steps):
        return None

    check_callable(f, "f", params=("notes", "spec", "steps"))
    with fails("should be a function"):
        check_callable(3, "f")
    with fails(r"should take the parameters \(notes, steps\) but takes \(notes, spec, steps\)"):
        check_callable(f, "f", params=("notes", "steps"))


def test_dtype():
    check_dtype(np.arange(3), np.integer, "steps")
    check_dtype(np.zeros(2, bool), np.bool_, "roll")
    with fails(r"steps should hold integers but has dtype float64\. Round first"):
        check_dtype(np.rint(np.ones(3)), np.integer, "steps")
    with fails("forget to `return`"):
        check_dtype(None, np.integer, "steps")


def test_in_range():
    check_in_range(np.array([0.0, 1.0]), 0, 1, "p")
    with fails(re.escape("p should lie in [0, 1], but 1 value(s) do not; the first is p[1] = 1.5")):
        check_in_range(np.array([0.0, 1.5]), 0, 1, "p")
    with fails("do not"):
        check_in_range(np.array([np.nan]), 0, 1, "p")


def test_raises():
    err = check_raises(lambda: int("x"), ValueError, 'int("x")')
    assert isinstance(err, ValueError)
    with fails(r"f\(\) should raise ValueError \(out of range\), but returned 3\."):
        check_raises(lambda: 3, ValueError, "f()", why="out of range")
    with fails("but raised KeyError"):
        check_raises(lambda: {}["k"], ValueError, "f()")
    with pytest.raises(NotImplementedError):  # an unfinished exercise is not reported as a wrong answer
        check_raises(lambda: (_ for _ in ()).throw(NotImplementedError()), ValueError, "f()")


# --------------------------------------------------------------------------- what a student sees

def test_failure_renders_as_one_short_box_with_the_likely_cause():
    with pytest.raises(CheckFailure) as info:
        check_close([0.5, 1.3], [0.5, 0.4], "alpha_bar_from_betas(toy_betas)",
                    likely_mistakes={"a running sum: ᾱ_t is a running *product*": [0.5, 1.3]})
    err = info.value
    assert str(err).endswith("This looks like a running sum: ᾱ_t is a running *product*.")  # what nbgrader records
    lines = [re.sub(r"\x1b\[\d+m", "", line) for line in err._render_traceback_()]
    assert lines[0].startswith("╭─ ✗") and lines[-1].startswith("╰") and len(lines) <= 8
    text = " ".join(line.lstrip("│ ") for line in lines[1:-1])
    assert "alpha_bar_from_betas(toy_betas)" in text and "got 1.3, expected 0.4" in text
    assert "Likely cause: a running sum" in text
    assert all(len(line) <= 88 for line in lines) and "checks.py" not in "".join(lines)


def test_call_names_the_call_and_the_students_line():
    from course_lib.checks import NotDoneYet, call

    import linecache

    cell, namespace = "def f(x):\n    return x.nope\n", {}
    linecache.cache["/tmp/ipykernel_1/cell.py"] = (len(cell), None, cell.splitlines(True), "/tmp/ipykernel_1/cell.py")
    exec(compile(cell, "/tmp/ipykernel_1/cell.py", "exec"), namespace)  # as IPython runs a cell
    with fails(r"f\(3\) raised AttributeError: .*nope.*line 2: `return x.nope`"):
        call(namespace["f"], 3, description="f(3)")

    def stub(x):
        raise NotImplementedError()

    with pytest.raises(NotDoneYet, match="stub is not written yet"):
        call(stub, 1, description="stub(1)")
    assert call(lambda x: x + 1, 1, description="g(1)") == 2


def test_type_new_and_unchanged():
    from course_lib.checks import check_new, check_type, check_unchanged

    check_type(np.zeros(2), np.ndarray, "steps")
    with fails(r"should be a NumPy array, but it is a list .*np.array"):
        check_type([1, 2], np.ndarray, "steps", what="a NumPy array")
    with fails("0-d tensor is not a Python number"):
        check_type(torch.tensor(3), int, "start")
    roll = np.zeros((2, 3))
    check_new(roll.copy(), {"the input roll": roll}, "result")
    with fails("shares its memory with the input roll"):
        check_new(roll[:, ::-1], {"the input roll": roll}, "result")
    x = torch.zeros(3)
    with fails("shares its memory"):
        check_new(x.view(3, 1), {"x": x}, "result")
    check_unchanged(roll, roll.copy(), "roll")
    changed = roll.copy()
    changed[0, 0] = 1
    with fails("was changed by the call"):
        check_unchanged(changed, roll, "roll")


def test_use_student_or_library_says_which_it_uses(capsys):
    from course_lib import music
    from course_lib.checks import use_student_or_library

    def stub(seconds, tempo):
        raise NotImplementedError()

    assert use_student_or_library(stub, music.transpose) is music.transpose
    assert "Your stub is not written yet: the cells below use course_lib's music.transpose" in capsys.readouterr().out

    def mine(seconds, tempo):
        return 1

    assert use_student_or_library(mine, music.transpose) is mine
    assert capsys.readouterr().out.strip() == "Using your mine from here on."

    def failing(fn):
        check_equal(fn(0, 0), 2, "mine(0, 0)")

    assert use_student_or_library(mine, music.transpose, check=failing) is music.transpose
    assert "does not pass its test yet" in capsys.readouterr().out
