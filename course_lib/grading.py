"""Instructor tooling for the nbgrader course directory: release, autograde, and verify a lesson.

The repository is the course directory (see ``nbgrader_config.py``): ``solutions/NN_name/NN_name.ipynb``
is nbgrader's source, ``lessons/NN_name/`` its release. From the repository root::

    python -m course_lib.grading release [LESSON ...]     # regenerate lessons/ from solutions/
    python -m course_lib.grading autograde LESSON         # autograde submitted/*/LESSON, feedback, scores
    python -m course_lib.grading verify [LESSON ...]      # the checks CI runs, in a temporary course

``verify`` is what a lesson author runs while writing. In a throw-away copy of the course it
regenerates the release, then autogrades two submissions in one ``nbgrader autograde`` call:

- ``solution``: the solution notebook, with an ungraded *probe* cell after each exercise's tests
  for every variant of its answer: the release's stub, the plausible wrong answers and the
  alternative correct answers of ``tests/wrong_answers/NN_name.py``. A probe runs the variant and
  then every test cell of the exercise (visible and hidden tests, from the solution notebook) and
  records which tests rejected it and why. The probes leave the *stub* in place, so the rest of
  the notebook runs as it would for a student who skipped that exercise. One execution thereby
  shows full marks, wrong answers rejected, right answers accepted, and that no later cell
  depends on an exercise's answer (it must use course_lib's version).
- ``release``: the untouched student notebook, which must score 0 and fail only in test cells.
  It is a second execution; ``grade_release=False`` (CLI ``--skip-release``) leaves it out when
  time is short, since the solution run already checks what it would.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import importlib.util
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
SOURCE, RELEASE = "solutions", "lessons"
LESSON_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
SOLUTION_STUDENT, RELEASE_STUDENT = "solution", "release"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")
STUB_LINES = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}
WORKDIR = REPO / "test-artifacts" / "verify"  # ignored by git
PROBE_HEADER = "# Grading probe inserted by course_lib.grading.verify_lesson; not part of the lesson."


# --------------------------------------------------------------------------- the course directory

def find_lessons(root: Path = REPO) -> list[str]:
    """Lesson names ``NN_name`` that have a source notebook ``solutions/NN_name/NN_name.ipynb``."""
    return sorted(p.parent.name for p in Path(root, SOURCE).glob("*/*.ipynb")
                  if LESSON_NAME.match(p.parent.name) and p.stem == p.parent.name)


def notebook_path(root: Path, step: str, lesson: str, student: str | None = None) -> Path:
    """``root/step[/student]/lesson/lesson.ipynb``, nbgrader's layout."""
    return Path(root, step, *([student] if student else []), lesson, f"{lesson}.ipynb")


def nbgrader(args: list[str], root: Path = REPO, timeout: float | None = None) -> str:
    """Run ``python -m nbgrader ARGS`` in ``root`` with this interpreter (so the kernel that grades
    is the course's Python) and return its log; raise ``RuntimeError`` with the log if it fails."""
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH to set up gradebook.db
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, capture_output=True,
                          text=True, timeout=timeout, env=env)
    if done.returncode != 0 or "[ERROR]" in done.stderr:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed (exit {done.returncode}) in {root}:\n"
                           + done.stderr[-4000:])
    return done.stderr


def release(root: Path = REPO, lessons: list[str] | None = None, database: bool = True) -> list[Path]:
    """Regenerate ``lessons/NN_name/`` from ``solutions/NN_name/`` with ``nbgrader generate_assignment``.

    With ``database`` (the default) the assignment is also recorded in ``root/gradebook.db``, which
    ``nbgrader autograde`` needs; without it nothing but the release is written.
    """
    options = ["--force", *([] if database else ["--no-db"])]
    if lessons is None:  # one nbgrader process for all: its start-up is most of the time
        lessons = find_lessons(root)
        nbgrader(["generate_assignment", "*", *options], root)
    else:
        for lesson in lessons:
            nbgrader(["generate_assignment", lesson, *options], root)
    return [notebook_path(root, RELEASE, lesson) for lesson in lessons]


def comparable(nb: nbformat.NotebookNode) -> dict:
    """A notebook as plain data for comparing releases. Nothing in a release is volatile today
    (nbgrader copies metadata and cell ids from the source and clears outputs), so this only drops
    what nbformat may add on reading; the function is the one place to add a volatile key."""
    data = json.loads(nbformat.writes(nb))
    data.get("metadata", {}).pop("widgets", None)  # widget state, should an editor save it
    return data


# --------------------------------------------------------------------------- executing notebooks

REPLY_POLL_SECONDS = 1.0


def poll_in_slices(get_msg, slice_seconds: float = REPLY_POLL_SECONDS):
    """Wrap a channel's async ``get_msg(timeout)`` so that it waits in slices of ``slice_seconds``
    and still raises ``queue.Empty`` only when the whole ``timeout`` has passed."""
    from queue import Empty  # what jupyter_client's channels raise on a timeout

    async def get_msg_in_slices(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_seconds if deadline is None else \
                max(0.0, min(slice_seconds, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
    return get_msg_in_slices


def autograde_preprocessors() -> list:
    """nbgrader's autograde preprocessors with ``Execute`` replaced by one that waits for a
    kernel's replies with ``poll_in_slices`` (used by ``nbgrader_config.py``).

    Why: with the pinned pyzmq 27 / jupyter_client 8.10 / ipykernel 7.4, the client's asyncio
    poll on the shell socket sometimes misses the wake-up for an execute_reply (we saw it after
    cells that open many widget comms, e.g. a chorale browser; cf. nbclient issue #312). nbclient
    then sits until the cell's timeout (``Execute.timeout``, minutes) before it reads the reply,
    for every such submission. A fresh poll checks the socket at once, so slicing the wait finds
    the reply within a second; the overall timeout and everything else stay nbgrader's.
    """
    from jupyter_core.utils import run_sync
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    class SlicedPollExecute(Execute):
        async def async_start_new_kernel_client(self):
            client = await super().async_start_new_kernel_client()
            client.shell_channel.get_msg = poll_in_slices(client.shell_channel.get_msg)
            return client

        # nbclient's setup_kernel calls this sync wrapper, bound to the base class's coroutine
        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    return [SlicedPollExecute if p is Execute else p for p in defaults]


# --------------------------------------------------------------------------- notebook anatomy

def copy_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A deep copy, through JSON (so sources stay strings)."""
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


@dataclass
class TestCell:
    grade_id: str
    source: str
    points: float


@dataclass
class Exercise:
    """An autograded exercise: a code solution cell and the test cells that follow it."""

    name: str  # grade_id of the solution cell; the key in tests/wrong_answers/NN_name.py
    source: str  # the reference answer (the whole solution cell)
    tests: list[TestCell] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The autograded exercises of a source notebook, in order. A test cell belongs to the code
    solution cell before it."""
    found: list[Exercise] = []
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if cell.cell_type != "code" or not (meta.get("solution") or meta.get("grade")):
            continue
        if meta.get("solution") and meta.get("grade"):
            raise ValueError(f"cell {meta.get('grade_id')!r} is an autograded answer (solution and grade): "
                             "this course keeps answers and tests in separate cells")
        if meta.get("solution"):
            found.append(Exercise(meta["grade_id"], cell.source))
        elif not found:
            raise ValueError(f"test cell {meta['grade_id']!r} comes before any solution cell")
        else:
            found[-1].tests.append(TestCell(meta["grade_id"], cell.source, float(meta.get("points", 0))))
    return found


def manual_answers(nb: nbformat.NotebookNode) -> list[str]:
    """grade_ids of the manually graded written answers (markdown solution cells with points)."""
    return [_nbgrader(c)["grade_id"] for c in nb.cells
            if c.cell_type == "markdown" and _nbgrader(c).get("solution") and _nbgrader(c).get("grade")]


def secret_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Stripped lines a release must not contain: those inside solution, hidden-test and mark-scheme
    regions (whole markdown answer cells without markers), minus lines also written in the open."""
    public, secret = set(), set()
    for cell in nb.cells:
        lines = [line.strip() for line in cell.source.splitlines()]
        if cell.cell_type == "markdown" and _nbgrader(cell).get("solution") and \
                not any("BEGIN SOLUTION" in line for line in lines):
            secret.update(lines)
            continue
        inside = False
        for line in lines:
            if any(f"BEGIN {m}" in line for m in ("SOLUTION", "HIDDEN TESTS", "MARK SCHEME")):
                inside = True
            (secret if inside else public).add(line)
            if any(f"END {m}" in line for m in ("SOLUTION", "HIDDEN TESTS", "MARK SCHEME")):
                inside = False
    return secret - public - STUB_LINES - {""}


def leaks(source: nbformat.NotebookNode, released: nbformat.NotebookNode) -> list[str]:
    """Solution, hidden-test or mark-scheme text found in a released notebook (empty if none)."""
    secret = secret_lines(source)
    found = []
    for i, cell in enumerate(released.cells):
        for line in cell.source.splitlines():
            if any(marker in line for marker in MARKERS) or line.strip() in secret:
                found.append(f"cell {i}: {line.strip()}")
    return found


# --------------------------------------------------------------------------- answer variants

@dataclass(frozen=True)
class Variant:
    exercise: str
    label: str
    kind: str  # "wrong", "correct" or "stub"
    source: str


def _function_source(fn) -> str:
    """The source of ``fn`` without its decorators, dedented."""
    source = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(source).body[0]
    return "\n".join(source.splitlines()[node.lineno - 1:]) + "\n"


class Variants:
    """Wrong and alternative correct answers to one lesson's exercises (``tests/wrong_answers/``).

    Register functions with the decorators; each one replaces the exercise's solution cell::

        variants = Variants()

        @variants.wrong("notes_to_roll", "the end step is included (one step too long)")
        def notes_to_roll(notes, spec, steps): ...

    An answer that is not one function can be given as code: ``variants.wrong(ex, label, source=...)``.
    """

    def __init__(self):
        self.items: list[Variant] = []

    def wrong(self, exercise: str, label: str, source: str | None = None):
        return self._add("wrong", exercise, label, source)

    def correct(self, exercise: str, label: str, source: str | None = None):
        return self._add("correct", exercise, label, source)

    def _add(self, kind, exercise, label, source):
        if any(v.exercise == exercise and v.label == label for v in self.items):
            raise ValueError(f"two variants of {exercise!r} are labelled {label!r}")
        if source is not None:
            self.items.append(Variant(exercise, label, kind, textwrap.dedent(source)))
            return None

        def register(fn):
            self.items.append(Variant(exercise, label, kind, _function_source(fn)))
            return fn
        return register

    def of(self, exercise: str, kind: str | None = None) -> list[Variant]:
        return [v for v in self.items if v.exercise == exercise and kind in (None, v.kind)]


def load_variants(root: Path, lesson: str) -> Variants:
    """The ``variants`` object of ``tests/wrong_answers/<lesson>.py`` (empty if there is no file)."""
    path = Path(root, "tests", "wrong_answers", f"{lesson}.py")
    if not path.exists():
        return Variants()
    spec = importlib.util.spec_from_file_location(f"wrong_answers_{lesson}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not isinstance(getattr(module, "variants", None), Variants):
        raise ValueError(f"{path} must define `variants = Variants()` (from course_lib.grading)")
    return module.variants


# --------------------------------------------------------------------------- probes

def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".strip()


def run_probe(namespace: dict, spec: dict) -> dict:
    """Run in the grading kernel by a probe cell: try one answer variant against an exercise's tests.

    Executes ``spec["answer"]`` and then each test cell's source in ``namespace`` (the notebook's
    globals), appends the outcome as a JSON line to ``spec["results"]`` and, whatever happened,
    executes ``spec["restore"]`` (the release's stub): from here on the notebook runs as a
    student's would who left the exercise unanswered.
    """
    outcome = {key: spec[key] for key in ("exercise", "label", "kind")}
    outcome.update(python=sys.executable, answer_error=None, tests={})
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(compile(spec["answer"], f"<{spec['kind']} answer: {spec['label']}>", "exec"), namespace)
            except Exception as err:
                outcome["answer_error"] = _describe(err)
            for test_id, source in spec["tests"]:
                try:
                    exec(compile(source, f"<test cell {test_id}>", "exec"), namespace)
                    outcome["tests"][test_id] = None
                except Exception as err:
                    outcome["tests"][test_id] = _describe(err)
    finally:
        exec(compile(spec["restore"], "<the release's stub>", "exec"), namespace)
        with open(spec["results"], "a", encoding="utf-8") as f:
            f.write(json.dumps(outcome) + "\n")
    failures = [m for m in outcome["tests"].values() if m]
    print(f"{spec['kind']} answer {spec['label']!r}: "
          + (f"rejected. {failures[0]}" if failures else "accepted by every test cell"))
    return outcome


def add_probes(source: nbformat.NotebookNode, released: nbformat.NotebookNode, variants: Variants,
               results: Path) -> nbformat.NotebookNode:
    """A copy of the solution notebook with a probe cell per variant after each exercise's tests.

    The variants of an exercise are the release's stub, then ``variants.of(exercise)``.
    """
    found = exercises(source)
    unknown = {v.exercise for v in variants.items} - {e.name for e in found}
    if unknown:
        raise ValueError(f"wrong answers given for {sorted(unknown)}, which are not exercises of this "
                         f"notebook (its exercises: {[e.name for e in found]})")
    stubs = {_nbgrader(c)["grade_id"]: c.source for c in released.cells if _nbgrader(c).get("solution")}
    after = {ex.tests[-1].grade_id: ex for ex in found if ex.tests}
    probed = copy_notebook(source)
    cells = []
    for cell in probed.cells:
        cells.append(cell)
        ex = after.get(_nbgrader(cell).get("grade_id"))
        if ex is None:
            continue
        for variant in [Variant(ex.name, "the release's stub", "stub", stubs[ex.name]), *variants.of(ex.name)]:
            spec = dict(exercise=ex.name, label=variant.label, kind=variant.kind, answer=variant.source,
                        tests=[[t.grade_id, t.source] for t in ex.tests], restore=stubs[ex.name],
                        results=str(results))
            cells.append(nbformat.v4.new_code_cell(
                f"{PROBE_HEADER}\nfrom course_lib.grading import run_probe\nrun_probe(globals(), {spec!r})"))
    probed.cells = cells
    return probed


# --------------------------------------------------------------------------- verifying a lesson

def autograded_scores(root: Path, lesson: str, student: str) -> dict[str, tuple[float, float]]:
    """``{grade_id: (auto_score, max_score)}`` of the autograded (code) cells of a submission."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(root, 'gradebook.db')}") as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy chatter
        notebook = gb.find_submission_notebook(lesson, lesson, student)
        return {g.name: (g.auto_score, g.max_score) for g in notebook.grades if g.cell_type == "code"}


def cell_seconds(cell) -> float | None:
    """How long a cell took to execute, from the timing nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start, end = (datetime.datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                      for k in ("iopub.execute_input", "shell.execute_reply"))
    except (KeyError, ValueError):
        return None
    return (end - start).total_seconds()


def _cell_name(cell, index: int) -> str:
    lines = cell.source.strip().splitlines()
    return _nbgrader(cell).get("grade_id") or f"cell {index} ({lines[0][:50] if lines else 'empty'})"


@dataclass
class LessonReport:
    """Everything ``verify_lesson`` learned about one lesson; the methods list the problems found."""

    lesson: str
    course: Path  # the temporary course directory
    source: nbformat.NotebookNode
    released: nbformat.NotebookNode  # regenerated from the source by nbgrader
    variants: Variants
    scores: dict[str, dict[str, tuple[float, float]]]  # student -> grade_id -> (score, max)
    autograded: dict[str, nbformat.NotebookNode]  # student -> notebook after autograding
    probes: list[dict]
    seconds: float  # wall time of the one `nbgrader autograde` call (both submissions)

    @property
    def graded_release(self) -> bool:
        return RELEASE_STUDENT in self.scores

    def not_full_marks(self) -> list[str]:
        scores = self.scores[SOLUTION_STUDENT]
        if not scores:
            return ["the solution has no autograded cells"]
        errors = {cell: error for cell, error, _ in self.errors(SOLUTION_STUDENT)}
        hint = (" (it needs an earlier exercise's answer, which the probes replaced by its stub: "
                "use course_lib's version in later cells)")
        return [f"{k}: {s:g} of {m:g}" + (f", {errors[k]}" if k in errors else "")
                + (hint if "NotImplementedError" in errors.get(k, "") else "")
                for k, (s, m) in scores.items() if s != m]

    def not_zero_for_release(self) -> list[str]:
        return [f"{k}: {s:g} of {m:g} for the untouched release" for k, (s, m) in
                self.scores.get(RELEASE_STUDENT, {}).items() if s != 0]

    def errors(self, student: str) -> list[tuple[str, str, bool]]:
        """(cell name, error, whether the cell is an exercise or test cell) for each failing cell."""
        found = []
        for i, cell in enumerate(self.autograded[student].cells):
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    graded = bool(_nbgrader(cell).get("solution") or _nbgrader(cell).get("grade"))
                    found.append((_cell_name(cell, i), f"{out.ename}: {out.evalue}"[:300], graded))
        return found

    def slow_cells(self, limit: float) -> list[str]:
        """Cells of the solution run (probes excluded) that took longer than ``limit`` seconds."""
        return [f"{_cell_name(c, i)}: {cell_seconds(c):.1f} s"
                for i, c in enumerate(self.autograded[SOLUTION_STUDENT].cells)
                if not c.source.startswith(PROBE_HEADER) and (cell_seconds(c) or 0) > limit]

    def lesson_seconds(self) -> float:
        """Execution time of the solution notebook's own cells (probes excluded)."""
        return sum(cell_seconds(c) or 0 for c in self.autograded[SOLUTION_STUDENT].cells
                   if c.cell_type == "code" and not c.source.startswith(PROBE_HEADER))

    def probe_problems(self) -> list[str]:
        problems = []
        by_key = {(p["exercise"], p["kind"], p["label"]): p for p in self.probes}
        for ex in exercises(self.source):
            expected = [("stub", "the release's stub")] + [(v.kind, v.label) for v in self.variants.of(ex.name)]
            for kind, label in expected:
                p = by_key.get((ex.name, kind, label))
                where = f"{ex.name}, {kind} answer {label!r}"
                if p is None:
                    problems.append(f"{where}: no probe result (did the probe cell time out or crash?)")
                    continue
                failed = [t for t, message in p["tests"].items() if message]
                if p["answer_error"] and kind != "stub":
                    problems.append(f"{where}: the answer itself does not run ({p['answer_error']})")
                elif kind == "stub" and len(failed) < len(p["tests"]):
                    passed = sorted(set(p["tests"]) - set(failed))
                    problems.append(f"{where}: test cells {passed} pass on the unanswered exercise")
                elif kind == "wrong" and not failed:
                    problems.append(f"{where}: accepted by every test cell")
                elif kind == "correct" and failed:
                    problems.append(f"{where}: rejected by {failed[0]}: {p['tests'][failed[0]]}")
        return problems

    def problems(self, committed: Path | None = None) -> dict[str, list[str]]:
        """Every check, by title; ``committed`` is the repository's release folder of the lesson."""
        return {
            "the committed release is stale (run `python -m course_lib.grading release`)":
                release_differences(committed, self.course / RELEASE / self.lesson) if committed else [],
            "solution or hidden-test text in the release": leaks(self.source, self.released),
            "the solution is short of full marks": self.not_full_marks(),
            "the untouched release scores points": self.not_zero_for_release(),
            "answer variants misjudged": self.probe_problems(),
            "errors in the solution run": [f"{c}: {e}" for c, e, _ in self.errors(SOLUTION_STUDENT)],
            "the release fails outside exercise and test cells":
                [f"{c}: {e}" for c, e, graded in self.errors(RELEASE_STUDENT) if not graded]
                if self.graded_release else [],
        }

    def summary(self) -> str:
        total = {s: (sum(a for a, _ in v.values()), sum(m for _, m in v.values())) for s, v in self.scores.items()}
        lines = [f"{self.lesson}: autograde {self.seconds:.1f} s for {len(self.scores)} submission(s) "
                 f"(solution cells {self.lesson_seconds():.1f} s); "
                 + ", ".join(f"{s} {a:g}/{m:g}" for s, (a, m) in total.items())]
        for p in self.probes:
            failed = [m for m in p["tests"].values() if m]
            verdict = f"rejected: {failed[0].splitlines()[0][:150]}" if failed else "accepted"
            lines.append(f"  {p['exercise']:24} {p['kind']:7} {p['label'][:45]:45} {verdict}")
        return "\n".join(lines)


def prepare_course(root: Path, workdir: Path, lessons: list[str]) -> Path:
    """A throw-away course directory ``workdir/released`` holding the lessons' sources, their
    release (regenerated from the sources by nbgrader) and a gradebook that knows them."""
    course = Path(workdir, "released").resolve()
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    for lesson in lessons:
        shutil.copytree(Path(root, SOURCE, lesson), course / SOURCE / lesson)
    shutil.copy(Path(root, "nbgrader_config.py"), course)
    if lessons:
        release(course)
    return course


def verify_lesson(lesson: str, root: Path = REPO, workdir: Path = WORKDIR,
                  released: Path | None = None, grade_release: bool = True) -> LessonReport:
    """Autograde the probed solution (and, with ``grade_release``, the untouched release) of one
    lesson in ``workdir/lesson``, a throw-away course directory.

    ``released`` is a course from ``prepare_course`` that includes this lesson (made if not given).
    """
    workdir = Path(workdir).resolve()
    released = released or prepare_course(root, workdir, [lesson])
    course = workdir / lesson
    if course.exists():
        shutil.rmtree(course)
    for step in (SOURCE, RELEASE):
        shutil.copytree(released / step / lesson, course / step / lesson)
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(released / name, course)
    source = nbformat.read(notebook_path(course, SOURCE, lesson), as_version=4)
    release_nb = nbformat.read(notebook_path(course, RELEASE, lesson), as_version=4)
    variants = load_variants(root, lesson)
    results = course / "probes.jsonl"
    students = (SOLUTION_STUDENT, RELEASE_STUDENT) if grade_release else (SOLUTION_STUDENT,)
    for student in students:  # the release folder's data files too, as a student has them
        shutil.copytree(course / RELEASE / lesson, notebook_path(course, "submitted", lesson, student).parent)
    nbformat.write(add_probes(source, release_nb, variants, results),
                   notebook_path(course, "submitted", lesson, SOLUTION_STUDENT))
    start = time.perf_counter()
    nbgrader(["autograde", lesson, "--force"], course)
    seconds = time.perf_counter() - start
    probes = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return LessonReport(
        lesson=lesson, course=course, source=source, released=release_nb, variants=variants,
        scores={s: autograded_scores(course, lesson, s) for s in students},
        autograded={s: nbformat.read(notebook_path(course, "autograded", lesson, s), as_version=4)
                    for s in students},
        probes=probes, seconds=seconds)


def verify_lessons(lessons: list[str], root: Path = REPO, workdir: Path = WORKDIR,
                   jobs: int = 2, released: Path | None = None, grade_release: bool = True) -> dict:
    """``verify_lesson`` for several lessons, ``jobs`` at a time, after one shared release step.
    Values are reports, or the exception that stopped that lesson (the others still run)."""
    released = released or prepare_course(root, workdir, lessons)

    def one(lesson):
        try:
            return verify_lesson(lesson, root, workdir, released, grade_release)
        except Exception as err:
            return err
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(zip(lessons, pool.map(one, lessons)))


def release_differences(committed: Path, generated: Path) -> list[str]:
    """How the committed release folder of a lesson differs from a freshly generated one."""
    files = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()} if committed.exists() else set()
    fresh = {p.relative_to(generated) for p in generated.rglob("*") if p.is_file()}
    problems = [f"{committed / f}: missing" for f in sorted(fresh - files)]
    problems += [f"{committed / f}: not in the generated release" for f in sorted(files - fresh)]
    for f in sorted(files & fresh):
        a, b = committed / f, generated / f
        same = comparable(nbformat.read(a, as_version=4)) == comparable(nbformat.read(b, as_version=4)) \
            if f.suffix == ".ipynb" else a.read_bytes() == b.read_bytes()
        if not same:
            problems.append(f"{a}: differs from what nbgrader generates")
    return problems


def isolated_environment(base: Path) -> dict[str, str]:
    """Environment variables that keep Jupyter, IPython and matplotlib state under ``base``."""
    names = {"JUPYTER_CONFIG_DIR": "jupyter-config", "JUPYTER_DATA_DIR": "jupyter-data",
             "JUPYTER_RUNTIME_DIR": "jupyter-runtime", "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib"}
    env = {}
    for var, sub in names.items():
        Path(base, sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(Path(base, sub))
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


# --------------------------------------------------------------------------- command line

def _print_scores(root: Path, lesson: str) -> None:
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(root, 'gradebook.db')}") as gb:
        warnings.simplefilter("ignore")
        for sub in sorted(gb.assignment_submissions(lesson), key=lambda s: s.student_id):
            manual = " (written answers still to grade in formgrader)" if sub.needs_manual_grade else ""
            print(f"  {sub.student_id:20} {sub.score:5.1f} / {sub.max_score:g}{manual}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="regenerate lessons/ from solutions/ (nbgrader generate_assignment)")
    p.add_argument("lessons", nargs="*", help="default: every lesson in solutions/")
    p.add_argument("--no-db", action="store_true", help="do not record the assignment in gradebook.db")
    p = sub.add_parser("autograde", help="autograde submitted/*/LESSON, write feedback/, print scores")
    p.add_argument("lesson")
    p.add_argument("--force", action="store_true", help="regrade submissions graded before")
    p = sub.add_parser("verify", help="check lessons end to end in a temporary course directory")
    p.add_argument("lessons", nargs="*", help="default: every lesson in solutions/")
    p.add_argument("--workdir", type=Path, default=WORKDIR)
    p.add_argument("--jobs", type=int, default=2, help="lessons graded at the same time")
    p.add_argument("--skip-release", action="store_true", help="do not autograde the untouched release")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if not (root / "nbgrader_config.py").exists():
        parser.error(f"run this from the course directory (the repository root), not {root}")

    if args.command == "release":
        for path in release(root, args.lessons or None, database=not args.no_db):
            print(f"wrote {path.relative_to(root)}")
        return 0
    if args.command == "autograde":
        nbgrader(["autograde", args.lesson, *(["--force"] if args.force else [])], root)
        nbgrader(["generate_feedback", args.lesson, "--force"], root)
        print(f"{args.lesson}: autograded/ and feedback/ written; scores (autograded + manual so far):")
        _print_scores(root, args.lesson)
        return 0

    os.environ.update(isolated_environment(args.workdir / "home"))
    # One thread per kernel, as in CI (tests/conftest.py): lessons are graded two at a time, and a
    # kernel with as many threads as cores slows to a crawl beside another one.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    lessons = args.lessons or find_lessons(root)
    count = 0
    reports = verify_lessons(lessons, root, args.workdir, args.jobs, grade_release=not args.skip_release)
    for lesson, report in reports.items():
        if isinstance(report, Exception):
            print(f"{lesson}: could not be graded: {report}")
            count += 1
            continue
        print(report.summary())
        for title, items in report.problems(root / RELEASE / lesson).items():
            for item in items:
                print(f"  PROBLEM, {title}: {item}")
                count += 1
    print("all checks passed" if not count else f"{count} problem(s)")
    return 1 if count else 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so that `Variants` in
    # tests/wrong_answers/*.py (imported from course_lib.grading) is the class checked here.
    from course_lib.grading import main as _main

    sys.exit(_main())
