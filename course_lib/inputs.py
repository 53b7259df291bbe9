"""Checking what users hand us: numbers in range, plain names, files to read, files to write.

Every check raises ``InputError`` (a ``ValueError``) with a sentence that names the option or
argument, the range it must lie in, and what to do. The CLI's argparse ``type=`` helpers
(``positive_int``, ``finite_float``, ``plain_name``, ``int_in(1, 64)``, ...) wrap the same checks,
so ``python -m course_lib generate --steps 0`` and ``pipeline.generate(..., steps=0)`` say the same.

Writing is safe in two ways: ``check_output_dir`` / ``check_new_files`` run *before* minutes of
work (a folder that is a file, a read-only folder, files that would be overwritten without
``force``), and ``atomic_paths`` writes every file under a temporary name and renames them only
once all were written, so a run that dies half-way leaves no half-written file behind.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import stat
import tempfile
from pathlib import Path


class InputError(ValueError):
    """An argument or option outside what the course accepts; the message says what to give."""


# --------------------------------------------------------------------------- numbers

def check_number(value, name: str, *, low=None, high=None, integer: bool = False,
                 low_inclusive: bool = True):
    """``value`` as an int (``integer``) or float, finite and in ``low..high``; else InputError.

    ``low_inclusive=False`` makes the lower bound strict (e.g. a learning rate > 0)."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__index__") \
            and not hasattr(value, "__float__"):
        raise InputError(f"{name} must be {kind}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be {kind}, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if integer:
        if number != int(number):
            raise InputError(f"{name} must be a whole number, got {value!r}")
        number = int(value) if isinstance(value, int) else int(number)
    below = low is not None and (number < low if low_inclusive else number <= low)
    if below or (high is not None and number > high):
        lo = "" if low is None else (f"{low} <= " if low_inclusive else f"{low} < ")
        hi = "" if high is None else f" <= {high}"
        raise InputError(f"{name} must satisfy {lo}{name}{hi}, got {value!r}")
    return number


def _argparse_type(check, description: str):
    """An argparse ``type=`` function: text -> checked value, or an ArgumentTypeError (exit code 2)."""
    def parse(text: str):
        try:
            value = _to_int(text) if description.startswith("integer") else _to_float(text)
            return check(value)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err).replace("value must", "must", 1)) from None
    parse.__name__ = description  # argparse names it in "invalid <name> value"
    return parse


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"value must be a number, got {text!r}") from None


def _to_int(text: str) -> int:
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        raise InputError(f"value must be a whole number, got {text!r}")
    return int(text)


def int_in(low: int, high: int | None = None):
    """argparse type: a whole number in ``low..high`` (``high`` None: no upper bound)."""
    return _argparse_type(lambda v: check_number(v, "value", low=low, high=high, integer=True),
                          f"integer {low}..{'' if high is None else high}")


def float_in(low: float | None = None, high: float | None = None, *, low_inclusive: bool = True):
    """argparse type: a finite number in ``low..high``."""
    return _argparse_type(lambda v: check_number(v, "value", low=low, high=high, low_inclusive=low_inclusive),
                          f"number {'' if low is None else low}..{'' if high is None else high}")


MAX_INT = 2 ** 31 - 1  # what "no bound" means for counts: far beyond anything a CPU can do, but not 1e300
positive_int = int_in(1, MAX_INT)
nonneg_int = int_in(0, MAX_INT)
finite_float = float_in()
nonneg_float = float_in(0.0)
positive_float = float_in(0.0, low_inclusive=False)
fraction = float_in(0.0, 1.0)  # 0..1 inclusive


# --------------------------------------------------------------------------- names and files to read

def check_plain_name(value, name: str = "--stem") -> str:
    """A file-name stem without folders, dots at the start or odd characters (no ``../escape``)."""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", text) or ".." in text:
        raise InputError(f"{name} must be a plain file name (letters, digits, '_', '-', '.'; no folders, "
                         f"at most 100 characters), got {text!r}; choose the folder with --out")
    return text


def plain_name(text: str) -> str:
    """argparse type of ``check_plain_name``."""
    try:
        return check_plain_name(text, "the name")
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def check_regular_file(path, what: str = "file", error=InputError) -> Path:
    """``path`` exists and is a regular file (not a folder, FIFO or device that would hang a read).

    ``error``: the exception class to raise (e.g. ``music.MidiError``)."""
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise error(f"the {what} must be a path (str or pathlib.Path), got {type(path).__name__}")
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file. Check the path (relative paths start from the current "
                    f"folder, {os.getcwd()}).") from None
    except OSError as err:
        raise error(f"{path}: cannot read this {what} ({err.strerror or err}).") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path} is a folder, not a {what}; give the path of a file inside it.")
    if not stat.S_ISREG(mode):
        raise error(f"{path} is not a regular file (a pipe or device?); copy the {what} to a normal file first.")
    return path


# --------------------------------------------------------------------------- where outputs go

def check_output_dir(path, what: str = "--out", *, create: bool = True) -> Path:
    """Make sure ``path`` is (or can become) a writable folder; else InputError.

    create: make the folder now. With create=False (the early check before minutes of work) a
    folder that does not exist yet is left uncreated, so a run refused later for another reason
    leaves nothing behind; its nearest existing parent is probed instead.

    Checked with a real probe file, because permission bits do not tell the whole story (root,
    read-only mounts)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} is a file, not a folder; give a folder for the outputs")
    probe = path
    if not create:
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise InputError(f"{what} {path} cannot be created: {probe} is a file, not a folder")
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".write-check-"):
            pass
    except OSError as err:
        raise InputError(f"{what} {path} is not a writable folder ({err.strerror or err}); "
                         "choose another folder") from None
    return path


def check_output_file(path, what: str = "--out", *, force: bool = False, protected=()) -> Path:
    """A file about to be written: its folder is writable, it is not a folder, and it exists only
    if ``force``. ``protected``: folders never written to by default (the bundled assets)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name, e.g. {path / 'model.pt'}")
    for folder in protected:
        if Path(folder).resolve() in path.resolve().parents and not force:
            raise InputError(f"{what} {path} is inside the bundled assets ({folder}); write elsewhere, or pass "
                             "--force to replace a bundled file on purpose")
    check_output_dir(path.parent, f"the folder of {what}")
    check_new_files([path], force=force)
    return path


def check_new_files(paths, *, force: bool = False) -> list[Path]:
    """Refuse (InputError) to overwrite existing files unless ``force``."""
    paths = [Path(p) for p in paths]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise InputError(f"{shown} already exist(s); pass --force (force=True) to overwrite, or choose "
                         "another --out folder or --stem")
    return paths


@contextlib.contextmanager
def atomic_paths(paths):
    """Yield a temporary path for each of ``paths`` (same folder); rename them all when the block
    ends without error, delete them all when it raises. Readers never see a half-written file."""
    paths = [Path(p) for p in paths]
    temps = [p.with_name(f".{p.stem}.partial{p.suffix}") for p in paths]  # same suffix: writers pick formats by it
    try:
        yield temps
        for temp, final in zip(temps, paths):
            os.replace(temp, final)
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


# --------------------------------------------------------------------------- results

def check_finite(x, what: str, error=InputError):
    """Raise ``error`` if the tensor/array ``x`` holds NaN or inf (a silent wrong result otherwise)."""
    import torch  # only here: the rest of this module is plain Python
    t = torch.as_tensor(x)
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise error(f"{what} holds {bad} NaN/inf value(s) of {t.numel()}; check the guidance scales "
                         "and the checkpoint (a damaged or diverged model gives NaN)")
    return x
