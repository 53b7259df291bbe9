"""Student-facing test helpers: tolerant comparisons whose failure messages point at the likely mistake.

The visible tests in the lessons are written with these functions. Each one is silent when the
answer is right and raises ``CheckFailure`` (an ``AssertionError``, so nbgrader scores the cell 0)
with a message a student can act on when it is wrong::

    check_close(alpha_bar[10], expected, "alpha_bar[10]",
                likely_mistakes={"alpha_bar[11]: an off-by-one in t": alpha_bar_ref[11],
                                 "√ᾱ instead of ᾱ": np.sqrt(expected)})
    # CheckFailure: alpha_bar[10] is wrong: got 0.9561, expected 0.9142 (...).
    #               This looks like √ᾱ instead of ᾱ.

``likely_mistakes`` maps a label (a phrase that completes "This looks like ...") to what that
mistake would have produced: a value (compared with the same tolerance as the right answer), a
shape (for ``check_shape``), or a function ``actual -> bool`` for mistakes no single value
describes. Only when the answer is wrong are the mistakes tried, in order; the first that matches
is named. Without a match the message still says where and by how much the answer is off, and
names a few mistakes every exercise can have (``None`` from a missing ``return``, a flipped sign,
swapped axes, a constant factor).
"""
from __future__ import annotations

import inspect
import textwrap
from typing import Any, Callable, Iterable, Mapping

import numpy as np

__all__ = ["CheckFailure", "NotDoneYet", "check_callable", "check_shape", "check_dtype", "check_close",
           "check_equal", "check_in_range", "check_raises", "call", "check_type", "check_new", "check_unchanged",
           "use_student_or_library"]


class CheckFailure(AssertionError):
    """A test found a wrong answer; the message says what is wrong and, if it can, why.

    ``str(err)`` is the whole message (what nbgrader and the grading probes record). In a notebook
    the failure draws itself as one short box (IPython calls ``_render_traceback_``), without the
    traceback through this module: what was checked, got against expected, the likely cause.
    """

    title = "✗ Not right yet"

    def __init__(self, problem: str, cause: str | None = None):
        super().__init__(problem + (f" {cause}" if cause else ""))
        self.problem, self.cause = problem, cause

    def box_lines(self, width: int = 88) -> list[str]:
        """The message as a box of lines at most ``width`` characters wide."""
        body = textwrap.wrap(self.problem, width - 4) or [""]
        if self.cause:
            body += textwrap.wrap("Likely cause: " + _cause_text(self.cause), width - 4)
        rule = "─" * (width - 4 - len(self.title))
        return [f"╭─ {self.title} {rule}", *(f"│ {line}" for line in body), "╰" + "─" * (width - 1)]

    def _render_traceback_(self) -> list[str]:  # IPython's hook; nbgrader's feedback shows the same lines
        red, reset = "\x1b[31m", "\x1b[0m"
        return [red + line + reset for line in self.box_lines()]


class NotDoneYet(CheckFailure):
    """The function under test still raises ``NotImplementedError``: the exercise is not written yet."""

    title = "… Not done yet"


def _cause_text(cause: str) -> str:
    """'This looks like X.' -> 'X.'; any other hint unchanged."""
    return cause[len("This looks like "):] if cause.startswith("This looks like ") else cause


# --------------------------------------------------------------------------- helpers

def _fail(message: str, cause: str | None = None) -> None:
    raise CheckFailure(message, cause)


def _as_array(value: Any, name: str) -> np.ndarray:
    """Numbers, lists, NumPy arrays and torch tensors -> ndarray; anything else fails clearly."""
    if value is None:
        _fail(f"{name} is None: did your function forget to `return` its result?")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        _fail(f"{name} could not be read as an array of numbers ({type(err).__name__}: {err}).")
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        _fail(f"{name} should hold numbers, but it is a {type(value).__name__} "
              f"({_short(value)}).")
    return array


def _short(value: Any, width: int = 60) -> str:
    text = np.array2string(value, threshold=6, edgeitems=2) if isinstance(value, np.ndarray) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _fmt(x: Any) -> str:
    x = np.asarray(x).item() if np.ndim(x) == 0 else x
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (float, np.floating)):
        return f"{x:.6g}"
    return repr(x) if isinstance(x, str) else str(x)


def _index(i: tuple) -> str:
    return "[" + ", ".join(str(int(k)) for k in i) + "]" if i else ""


def _matching_mistake(actual: Any, likely_mistakes: Mapping[str, Any] | None,
                      same: Callable[[Any, Any], bool]) -> str | None:
    """The label of the first known mistake that ``actual`` reproduces, or None."""
    for label, wrong in (likely_mistakes or {}).items():
        try:
            if callable(wrong) and not isinstance(wrong, np.ndarray):
                if wrong(actual):
                    return label
            elif same(actual, wrong):
                return label
        except Exception:  # a predicate that cannot handle this answer simply does not match
            continue
    return None


def _fail_with_mistake(message: str, label: str | None, hint: str | None = None) -> None:
    """Fail with ``message``, naming the matched mistake ``label`` (else the generic ``hint``)."""
    _fail(message, f"This looks like {label}." if label else hint)


def _shape_hint(actual: tuple, expected: tuple) -> str | None:
    """Generic explanations for a wrong shape."""
    if len(actual) == len(expected) and sorted(actual) == sorted(expected):
        return "The sizes are right but in another order: are two axes swapped?"
    if len(actual) == len(expected) - 1:
        for axis in range(len(expected)):
            if expected[:axis] + expected[axis + 1:] == actual:
                return f"Axis {axis} (size {expected[axis]}) is missing."
    if len(actual) == len(expected) + 1:
        for axis in range(len(actual)):
            if actual[:axis] + actual[axis + 1:] == expected:
                return f"There is an extra axis {axis} of size {actual[axis]}."
    return None


def _value_hint(actual: np.ndarray, expected: np.ndarray, close: Callable) -> str | None:
    """Generic explanations for wrong values: sign, constant factor, transposition."""
    if actual.shape == expected.shape and np.any(expected != 0) and close(actual, -expected):
        return "Every value has the wrong sign."
    nonzero = np.abs(expected) > 1e-12
    if actual.shape == expected.shape and nonzero.any() and not np.any(actual[~nonzero]):
        ratios = actual[nonzero] / expected[nonzero]
        if np.allclose(ratios, ratios.flat[0], rtol=1e-6) and ratios.flat[0] != 0:
            return f"Every value is {_fmt(ratios.flat[0])} times too large: a constant factor is off."
    if actual.ndim == 2 and actual.shape == expected.shape[::-1] and close(actual.T, expected):
        return "It is the transpose of the expected array."
    return None


# --------------------------------------------------------------------------- checks

def check_callable(obj: Any, name: str, params: Iterable[str] | None = None) -> None:
    """``obj`` is a function (or other callable) and, if given, takes exactly ``params`` in order."""
    if not callable(obj):
        _fail(f"{name} should be a function, but it is a {type(obj).__name__} ({_short(obj)}). "
              "Did you assign to the name instead of defining it with `def`?")
    if params is not None:
        params = tuple(params)
        got = tuple(inspect.signature(obj).parameters)
        if got != params:
            _fail(f"{name} should take the parameters ({', '.join(params)}) but takes "
                  f"({', '.join(got)}). Keep the signature given in the exercise: the tests call it "
                  "that way.")


def check_shape(actual: Any, expected_shape: tuple, name: str,
                likely_mistakes: Mapping[str, Any] | None = None) -> None:
    """``actual`` has ``expected_shape`` (``None`` in it means any size on that axis).

    ``likely_mistakes`` maps a label to the shape that mistake gives, or to a predicate on the shape.
    """
    shape = tuple(_as_array(actual, name).shape)
    expected_shape = tuple(expected_shape)
    if len(shape) == len(expected_shape) and all(e is None or e == s for s, e in zip(shape, expected_shape)):
        return
    shown = "(" + ", ".join("any" if e is None else str(e) for e in expected_shape) + \
        ("," if len(expected_shape) == 1 else "") + ")"
    label = _matching_mistake(shape, likely_mistakes, lambda s, wrong: s == tuple(wrong))
    hint = None if None in expected_shape else _shape_hint(shape, expected_shape)
    _fail_with_mistake(f"{name} has shape {shape} but should have shape {shown}.", label, hint)


def check_dtype(actual: Any, kind: type, name: str) -> None:
    """The values of ``actual`` are of ``kind``: ``np.integer``, ``np.floating``, ``np.bool_``, ..."""
    dtype = _as_array(actual, name).dtype
    if np.issubdtype(dtype, kind):
        return
    wanted = {np.integer: "integers", np.floating: "floats", np.bool_: "booleans"}.get(kind, kind.__name__)
    hint = {np.integer: " Round first, then convert with `.astype(int)`.",
            np.bool_: " Compare (e.g. `x > 0`) or convert with `.astype(bool)`."}.get(kind, "")
    _fail(f"{name} should hold {wanted} but has dtype {dtype}.", hint.strip() or None)


def check_close(actual: Any, expected: Any, name: str, *, rtol: float = 1e-5, atol: float = 1e-8,
                likely_mistakes: Mapping[str, Any] | None = None) -> None:
    """``actual`` equals ``expected`` within ``|actual - expected| <= atol + rtol * |expected|``.

    Arrays must have the same shape (broadcasting is not accepted: it hides mistakes). NaN is only
    accepted where ``expected`` is NaN too.
    """
    expected = _as_array(expected, "the expected value")
    actual = _as_array(actual, name)

    def close(a, b) -> bool:
        b = np.asarray(b)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))

    if close(actual, expected):
        return
    label = _matching_mistake(actual, likely_mistakes, close)
    if actual.shape != expected.shape:
        _fail_with_mistake(f"{name} has shape {actual.shape} but should have shape {expected.shape}.",
                           label, _shape_hint(actual.shape, expected.shape))
    actual_f, expected_f = actual.astype(float), expected.astype(float)
    nan = np.isnan(actual_f) & ~np.isnan(expected_f)
    if nan.any():
        where = _index(tuple(np.argwhere(nan)[0]))
        _fail_with_mistake(f"{name} contains NaN (first at {name}{where}). NaN comes from 0/0, "
                           "log of a negative number or sqrt of a negative number.", label)
    error = np.abs(actual_f - expected_f)
    error = np.where(np.isnan(expected_f) & ~np.isnan(actual_f), np.inf, error)  # a number where NaN belongs: the worst
    bad = ~np.isclose(actual_f, expected_f, rtol=rtol, atol=atol, equal_nan=True)
    if actual.ndim == 0:
        message = f"{name} is wrong: got {_fmt(actual)}, expected {_fmt(expected)}."
    else:
        worst = np.unravel_index(np.nanargmax(np.where(bad, error, -1.0)), actual.shape)
        message = (f"{name} is wrong in {int(bad.sum())} of {bad.size} entries; the largest error is at "
                   f"{name}{_index(worst)}: got {_fmt(actual[worst])}, expected {_fmt(expected[worst])}.")
    _fail_with_mistake(message + f" (tolerance: rtol={rtol:g}, atol={atol:g})", label,
                       _value_hint(actual_f, expected_f, close))


def check_equal(actual: Any, expected: Any, name: str, *,
                likely_mistakes: Mapping[str, Any] | None = None) -> None:
    """``actual`` equals ``expected`` exactly: for integers, booleans, rolls, note tables.

    The dtype may differ (a roll of 0/1 floats equals the same roll of booleans), the shape may not.
    """
    expected = _as_array(expected, "the expected value")
    actual = _as_array(actual, name)

    def same(a, b) -> bool:
        b = np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b))

    if same(actual, expected):
        return
    label = _matching_mistake(actual, likely_mistakes, same)
    if actual.shape != expected.shape:
        _fail_with_mistake(f"{name} has shape {actual.shape} but should have shape {expected.shape}.",
                           label, _shape_hint(actual.shape, expected.shape))
    if actual.ndim == 0:
        _fail_with_mistake(f"{name} is wrong: got {_fmt(actual)}, expected {_fmt(expected)}.", label)
    diff = np.argwhere(actual != expected)
    first = tuple(diff[0])
    message = (f"{name} differs in {len(diff)} of {actual.size} entries; the first is {name}{_index(first)}: "
               f"got {_fmt(actual[first])}, expected {_fmt(expected[first])}.")
    _fail_with_mistake(message, label, _value_hint(actual.astype(float), expected.astype(float),
                                                   lambda a, b: a.shape == b.shape and np.array_equal(a, b)))


def check_in_range(actual: Any, low: float, high: float, name: str) -> None:
    """Every value of ``actual`` lies in the closed interval ``[low, high]`` (and none is NaN)."""
    values = _as_array(actual, name).astype(float)
    outside = np.isnan(values) | (values < low) | (values > high)
    if outside.any():
        i = tuple(np.argwhere(outside)[0])
        _fail(f"{name} should lie in [{_fmt(low)}, {_fmt(high)}], but {int(outside.sum())} value(s) do not; "
              f"the first is {name}{_index(i)} = {_fmt(values[i])}.")


def check_raises(call: Callable[[], Any], exception: type[BaseException] | tuple, description: str,
                 why: str = "") -> BaseException:
    """``call()`` raises ``exception``; returns the exception so a test can inspect its message.

    ``description`` names the call in the message (e.g. ``"transpose_roll(roll, 40, spec)"``),
    ``why`` says why it must fail (e.g. ``"notes would leave the pitch range"``).
    """
    names = (exception,) if isinstance(exception, type) else tuple(exception)
    expected = " or ".join(e.__name__ for e in names)
    reason = f" ({why})" if why else ""
    try:
        result = call()
    except NotImplementedError:
        raise  # an unfinished exercise should say so, not look like a wrong answer
    except names as err:
        return err
    except Exception as err:
        _fail(f"{description} should raise {expected}{reason}, but raised {type(err).__name__}: {err}")
    _fail(f"{description} should raise {expected}{reason}, but returned {_short(result)}.")


# --------------------------------------------------------------------------- calling the student's code

def _your_line(err: BaseException) -> str:
    """' (your code, line N: `source`)' for the innermost frame outside course_lib, or ''."""
    import traceback

    library = ("/course_lib/", "site-packages", "/lib/python")
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if not any(part in f.filename.replace("\\", "/") for part in library)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (in your code, line {frame.lineno}: `{(frame.line or '').strip()}`)"


def call(fn: Callable, *args, description: str, **kwargs) -> Any:
    """``fn(*args, **kwargs)``; an exception it raises becomes a CheckFailure that names the call.

    ``NotImplementedError`` (the stub) becomes ``NotDoneYet``. ``description`` is the call as the
    student would write it, e.g. ``"q_sample(x0, 10, noise, alpha_bar)"``.
    """
    name = description.split("(")[0]
    if not callable(fn):
        check_callable(fn, name)
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotDoneYet(f"{name} is not written yet.", "Replace `raise NotImplementedError()` in its cell with "
                         "your code, run that cell, then run this test again.") from None
    except Exception as err:
        raise CheckFailure(f"{description} raised {type(err).__name__}: {err}{_your_line(err)}.") from None


def check_type(actual: Any, kinds: type | tuple, name: str, what: str | None = None) -> None:
    """``actual`` is an instance of ``kinds`` (``what`` names them, e.g. "a NumPy array")."""
    if isinstance(actual, kinds):
        return
    if actual is None:
        _fail(f"{name} is None: did your function forget to `return` its result?")
    names = (kinds,) if isinstance(kinds, type) else kinds
    what = what or " or ".join(k.__name__ for k in names)
    kind, module = type(actual).__name__, type(actual).__module__.split(".")[0]
    hint = {"list": "Build a NumPy array (np.array(rows), np.asarray) rather than a list.",
            "Tensor": "A 0-d tensor is not a Python number: convert it with int(...) or .item()."}.get(kind)
    _fail(f"{name} should be {what}, but it is a {kind if module == 'builtins' else module + '.' + kind} "
          f"({_short(actual)}).", hint)


def check_new(result: Any, inputs: Mapping[str, Any], name: str) -> None:
    """``result`` shares no memory with any of ``inputs`` ({description: array}): a new array."""
    for what, x in inputs.items():
        shared = (np.shares_memory(result, x) if isinstance(result, np.ndarray) and isinstance(x, np.ndarray)
                  else hasattr(result, "untyped_storage") and hasattr(x, "untyped_storage")
                  and result.untyped_storage().data_ptr() == x.untyped_storage().data_ptr())
        if shared:
            _fail(f"{name} shares its memory with {what}: changing one would change the other.",
                  "Return a new array (np.zeros_like / .copy() / .clone()) instead of the input or a view of it.")


def check_unchanged(after: Any, before: Any, name: str) -> None:
    """An input equals the copy taken before the call (NaN equal to NaN): the function left it alone."""
    a, b = _as_array(after, name), _as_array(before, name)
    if a.shape == b.shape and np.array_equal(a, b, equal_nan=np.issubdtype(a.dtype, np.floating)):
        return
    _fail(f"{name} was changed by the call; it must stay as it was.",
          "Work on a copy (.copy(), .clone()) or on new arrays; avoid in-place operations on inputs "
          "(+=, x[...] = , .add_(), .requires_grad_()).")


def use_student_or_library(student_fn: Any, library_fn: Callable, check: Callable | None = None,
                           name: str | None = None) -> Callable:
    """Your function where it is done, else the library's one, saying which in one line.

    ``check(student_fn)`` (e.g. a lesson's visible test) decides "done"; without it a function
    that still raises ``NotImplementedError`` from its stub counts as not done. The cells after an
    exercise call the returned function, so Run All goes on whether or not the exercise is solved.
    """
    name = name or getattr(student_fn, "__name__", "function")
    library = f"{library_fn.__module__.replace('course_lib.', '')}.{getattr(library_fn, '__name__', 'function')}"
    reason = None
    if not callable(student_fn):
        reason = "is not defined as a function"
    elif check is not None:
        import contextlib
        import io

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                check(student_fn)
        except NotImplementedError:
            reason = "is not written yet"
        except NotDoneYet:
            reason = "is not written yet"
        except Exception:
            reason = "does not pass its test yet"
    else:
        try:
            source = inspect.getsource(student_fn)
        except (OSError, TypeError):
            source = ""
        if "raise NotImplementedError" in source:
            reason = "is not written yet"
    if reason is None:
        print(f"Using your {name} from here on.")
        return student_fn
    print(f"Your {name} {reason}: the cells below use course_lib's {library} instead.")
    return library_fn
