"""The nbgrader pipeline: release == committed lessons/, no leaks, full marks, zero for a blank,
wrong answers rejected, right answers accepted, timeouts, deterministic regrading, feedback.

Every lesson ``solutions/NN_name/NN_name.ipynb`` is picked up automatically. The notebook tests
share one autograde run per lesson (``lesson_report`` in conftest.py): the solution, with a probe
cell per answer variant of ``tests/wrong_answers/NN_name.py``, and the untouched release.
"""
import ast
import json
import re
import shutil
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib import grading

LESSONS = grading.find_lessons()
REPO = grading.REPO
MAX_CELL_LINES = 30  # STYLE: "no code cell over ~25 lines"; test cells with hidden tests are exempt


def source_nb(lesson):
    return nbformat.read(grading.notebook_path(REPO, grading.SOURCE, lesson), as_version=4)


def nbgrader_meta(grade_id, *, solution=False, grade=False, points=0):
    meta = {"grade": grade, "grade_id": grade_id, "locked": grade and not solution, "schema_version": 3,
            "solution": solution}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def fixture_notebook():
    """A two-exercise source notebook with hidden tests (one seeded) and a written answer."""
    square = 'def square(x):\n    """x squared."""\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION'
    total = ('def total(xs):\n    """Sum of xs, a float."""\n    ### BEGIN SOLUTION\n    return float(np.sum(xs))\n'
             '    ### END SOLUTION')
    nb = new_notebook(cells=[
        new_markdown_cell("# A fixture lesson"),
        new_code_cell("import numpy as np"),
        new_code_cell(square, metadata=nbgrader_meta("square", solution=True)),
        new_code_cell("assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert square(-2) == 4\n### END HIDDEN TESTS",
                      metadata=nbgrader_meta("square_test", grade=True, points=1)),
        new_code_cell(total, metadata=nbgrader_meta("total", solution=True)),
        new_code_cell("assert total([1, 2]) == 3\n### BEGIN HIDDEN TESTS\nxs = np.random.default_rng(0).normal(size=5)\n"
                      "assert abs(total(xs) - xs.sum()) < 1e-9\n### END HIDDEN TESTS",
                      metadata=nbgrader_meta("total_test", grade=True, points=2)),
        new_markdown_cell("Why is a square never negative?"),
        new_markdown_cell("A product of two numbers of the same sign.",
                          metadata=nbgrader_meta("why", solution=True, grade=True, points=1)),
    ])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    return nb


# --------------------------------------------------------------------------- the library itself (fast)

def test_find_lessons_picks_up_new_lessons(tmp_path):
    for name in ("01_music_as_data", "02_forward", "notes", "03_bad"):
        (tmp_path / "solutions" / name).mkdir(parents=True)
    for name in ("01_music_as_data", "02_forward"):
        (tmp_path / "solutions" / name / f"{name}.ipynb").write_text("{}")
    (tmp_path / "solutions" / "03_bad" / "other.ipynb").write_text("{}")  # notebook not named after its folder
    assert grading.find_lessons(tmp_path) == ["01_music_as_data", "02_forward"]


def test_anatomy_of_a_notebook():
    nb = fixture_notebook()
    found = grading.exercises(nb)
    assert [(e.name, [t.grade_id for t in e.tests], e.points) for e in found] == \
        [("square", ["square_test"], 1.0), ("total", ["total_test"], 2.0)]
    assert grading.manual_answers(nb) == ["why"]
    secret = grading.secret_lines(nb)
    assert {"return x * x", "assert square(-2) == 4", "A product of two numbers of the same sign."} <= secret
    assert "assert square(3) == 9" not in secret and "def square(x):" not in secret


def test_leaks_finds_solution_text_and_markers():
    nb = fixture_notebook()
    clean = grading.copy_notebook(nb)
    clean.cells[2].source = 'def square(x):\n    """x squared."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    clean.cells[3].source = "assert square(3) == 9"
    clean.cells[5].source = "assert total([1, 2]) == 3"
    clean.cells[4].source = clean.cells[2].source.replace("square", "total")
    clean.cells[7].source = "YOUR ANSWER HERE"
    assert grading.leaks(nb, clean) == []
    leaky = grading.copy_notebook(clean)
    leaky.cells[3].source += "\nassert square(-2) == 4"
    leaky.cells[0].source += "\n### END SOLUTION"
    assert grading.leaks(nb, leaky) == ["cell 0: ### END SOLUTION", "cell 3: assert square(-2) == 4"]


def test_variants_strip_decorators_and_reject_duplicates():
    variants = grading.Variants()

    @variants.wrong("square", "doubles\n instead of squaring")
    def square(x):
        return 2 * x

    variants.correct("square", "power", source="    def square(x):\n        return x ** 2\n")
    assert variants.of("square", "wrong")[0].source == "def square(x):\n    return 2 * x\n"
    assert variants.of("square", "correct")[0].source.startswith("def square(x):")
    with pytest.raises(ValueError, match="labelled"):
        variants.wrong("square", "power", source="x = 1")


def test_add_probes_puts_one_cell_per_variant_after_the_tests(tmp_path):
    nb = fixture_notebook()
    released = fixture_notebook()
    released.cells[2].source = "def square(x):\n    raise NotImplementedError()"
    variants = grading.Variants()
    variants.wrong("square", "double", source="def square(x):\n    return 2 * x\n")
    probed = grading.add_probes(nb, released, variants, tmp_path / "probes.jsonl")
    kinds = [re.search(r"'kind': '(\w+)'", c.source).group(1) if c.source.startswith(grading.PROBE_HEADER)
             else c.metadata.get("nbgrader", {}).get("grade_id", "-") for c in probed.cells]
    assert kinds == ["-", "-", "square", "square_test", "stub", "wrong", "total", "total_test", "stub", "-", "why"]
    with pytest.raises(ValueError, match="not exercises"):
        variants.wrong("cube", "typo", source="pass")
        grading.add_probes(nb, released, variants, tmp_path / "probes.jsonl")


def test_run_probe_records_verdicts_and_leaves_the_stub(tmp_path):
    results = tmp_path / "probes.jsonl"
    namespace = {}
    exec("def square(x):\n    return x * x\n", namespace)
    spec = dict(exercise="square", label="double", kind="wrong", answer="def square(x):\n    return 2 * x\n",
                tests=[["visible", "assert square(2) == 4"], ["hidden", "assert square(3) == 9, 'not 9'"]],
                restore="def square(x):\n    raise NotImplementedError()\n", results=str(results))
    outcome = grading.run_probe(namespace, spec)
    assert outcome["tests"] == {"visible": None, "hidden": "AssertionError: not 9"}
    with pytest.raises(NotImplementedError):  # later cells see what a student who skipped it has
        namespace["square"](3)
    assert json.loads(results.read_text())["tests"]["hidden"] == "AssertionError: not 9"


def test_polling_in_slices_finds_a_missed_reply_and_keeps_the_timeout():
    import asyncio
    from queue import Empty

    from nbgrader.preprocessors import Execute

    asked = []

    async def get_msg(timeout=None):  # a channel whose reply shows up on the third poll
        asked.append(timeout)
        if len(asked) < 3:
            raise Empty
        return {"msg_type": "execute_reply"}

    sliced = grading.poll_in_slices(get_msg, slice_seconds=0.01)
    assert asyncio.run(sliced(timeout=180))["msg_type"] == "execute_reply"
    assert len(asked) == 3 and max(asked) <= 0.01

    async def never(timeout=None):
        await asyncio.sleep(timeout)
        raise Empty

    with pytest.raises(Empty):
        asyncio.run(grading.poll_in_slices(never, slice_seconds=0.01)(timeout=0.05))
    execute = [p for p in grading.autograde_preprocessors() if issubclass(p, Execute)]
    assert len(execute) == 1 and execute[0] is not Execute
    assert "start_new_kernel_client" in vars(execute[0])  # the sync entry point nbclient calls


def nbgrader_config():
    """The course's nbgrader configuration, as nbgrader loads it."""
    from traitlets.config import Config

    config = Config()
    exec((REPO / "nbgrader_config.py").read_text(), {"get_config": lambda: config})
    return config


def test_config_sets_the_course_layout_and_sane_timeouts():
    config = nbgrader_config()
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "lessons"
    assert 60 <= config.Execute.timeout <= 600
    assert config.Execute.iopub_timeout >= 10
    assert config.Autograde.autograde_preprocessors[0].__name__ == "SlicedPollExecute"


# --------------------------------------------------------------------------- each lesson, no execution

@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_follows_the_course_format(lesson):
    nb = source_nb(lesson)
    found = grading.exercises(nb)
    problems = []
    if not 3 <= len(found) <= 6:
        problems.append(f"{len(found)} autograded exercises (want 3-6)")
    if not 1 <= len(grading.manual_answers(nb)) <= 2:
        problems.append(f"{len(grading.manual_answers(nb))} written answers (want 1-2)")
    for ex in found:
        if not ex.tests or ex.points <= 0:
            problems.append(f"{ex.name}: no test cell with points")
        if not any("BEGIN HIDDEN TESTS" in t.source for t in ex.tests):
            problems.append(f"{ex.name}: no hidden tests")
        if "BEGIN SOLUTION" not in ex.source:
            problems.append(f"{ex.name}: no ### BEGIN SOLUTION region")
        functions = [n for n in ast.parse(ex.source).body if isinstance(n, ast.FunctionDef)]
        if any(ast.get_docstring(f) is None for f in functions):
            problems.append(f"{ex.name}: a function without a docstring (give shapes and ranges)")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count):
            problems.append(f"cell {i}: has outputs (save solutions/ with outputs cleared)")
        graded_test = cell.metadata.get("nbgrader", {}).get("grade") and "HIDDEN" in cell.source
        if cell.cell_type == "code" and not graded_test and len(cell.source.splitlines()) > MAX_CELL_LINES:
            problems.append(f"cell {i}: {len(cell.source.splitlines())} lines (split it: one idea per cell)")
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    if "nbgrader" in first_code.metadata:
        problems.append("the first code cell should be the setup cell, not a graded cell")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_has_wrong_and_alternative_answers(lesson):
    variants = grading.load_variants(REPO, lesson)
    problems = []
    for ex in grading.exercises(source_nb(lesson)):
        wrong, right = len(variants.of(ex.name, "wrong")), len(variants.of(ex.name, "correct"))
        if wrong < 3 or right < 1:
            problems.append(f"{ex.name}: {wrong} wrong and {right} alternative correct answers "
                            f"(want >= 3 and >= 1 in tests/wrong_answers/{lesson}.py)")
    names = {ex.name for ex in grading.exercises(source_nb(lesson))}
    problems += [f"variant for unknown exercise {v.exercise!r}" for v in variants.items if v.exercise not in names]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lesson", LESSONS)
def test_visible_tests_are_short_calls_and_let_run_all_go_on(lesson):
    """Issue 20: Run All goes past an unfinished exercise (JupyterLab continues after a cell tagged
    raises-exception; nbgrader still scores it), and a visible test is a short call into
    course_lib.lesson_checks: no reference answers or tables of likely mistakes for the student to read."""
    problems = []
    for ex in grading.exercises(source_nb(lesson)):
        for test in ex.tests:
            cell = next(c for c in source_nb(lesson).cells if c.metadata.get("nbgrader", {}).get("grade_id") == test.grade_id)
            if "raises-exception" not in cell.metadata.get("tags", []):
                problems.append(f"{test.grade_id}: not tagged raises-exception (Run All would stop there)")
            visible = test.source.split("### BEGIN HIDDEN TESTS")[0].strip().splitlines()
            if len(visible) > 2 or "likely_mistakes" in test.source.split("### BEGIN HIDDEN TESTS")[0]:
                problems.append(f"{test.grade_id}: {len(visible)} visible lines (want one call to a check)")
            if not any(line.startswith("checks.check_") for line in visible):
                problems.append(f"{test.grade_id}: the visible test does not call course_lib.lesson_checks")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lesson", LESSONS)
def test_committed_release_leaks_nothing(lesson):
    released = grading.notebook_path(REPO, grading.RELEASE, lesson)
    assert released.exists(), f"{released} is missing: run `python -m course_lib.grading release`"
    assert grading.leaks(source_nb(lesson), nbformat.read(released, as_version=4)) == []


def test_release_regenerates_the_committed_lessons(released_course):
    """`nbgrader generate_assignment` on solutions/ reproduces lessons/ exactly (a few seconds)."""
    problems = []
    for lesson in LESSONS:
        problems += grading.release_differences(REPO / grading.RELEASE / lesson,
                                                released_course / grading.RELEASE / lesson)
    strays = [p.name for p in (REPO / grading.RELEASE).iterdir() if p.is_dir() and p.name not in LESSONS]
    problems += [f"lessons/{name} has no source in solutions/" for name in strays]
    assert not problems, "\n".join(problems) + "\nRun `python -m course_lib.grading release` and commit lessons/."


# --------------------------------------------------------------------------- each lesson, autograded once

@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_scores_full_marks(lesson, lesson_report):
    assert lesson_report(lesson).not_full_marks() == []


@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS)
def test_untouched_release_scores_zero(lesson, lesson_report):
    report = lesson_report(lesson)
    if not report.graded_release:
        pytest.skip("COURSE_GRADE_RELEASE=0: the release was not autograded")
    assert report.not_zero_for_release() == []


@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS)
def test_wrong_answers_rejected_and_alternatives_accepted(lesson, lesson_report):
    report = lesson_report(lesson)
    assert report.probe_problems() == [], report.summary()


@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_runs_cleanly_in_this_venv_within_the_timeout(lesson, lesson_report):
    report = lesson_report(lesson)
    assert report.errors(grading.SOLUTION_STUDENT) == []
    assert {p["python"] for p in report.probes} == {sys.executable}  # the kernel is this venv's Python
    assert report.slow_cells(nbgrader_config().Execute.timeout / 2) == []


@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS)
def test_release_fails_only_in_exercise_and_test_cells(lesson, lesson_report):
    report = lesson_report(lesson)
    if not report.graded_release:
        pytest.skip("COURSE_GRADE_RELEASE=0: the release was not autograded")
    assert [(cell, error) for cell, error, graded in report.errors(grading.RELEASE_STUDENT) if not graded] == []


# --------------------------------------------------------------------------- timeouts, regrading, feedback

@pytest.mark.notebooks
def test_timeout_regrading_and_feedback(tmp_path):
    """An infinite loop is cut off (that exercise scores 0, the rest is graded), regrading gives the
    same scores, and feedback HTML is written. On a tiny fixture lesson, with a 5 s timeout."""
    lesson, course = "00_fixture", tmp_path / "course"
    (course / "solutions" / lesson).mkdir(parents=True)
    nbformat.write(fixture_notebook(), grading.notebook_path(course, "solutions", lesson))
    shutil.copy(REPO / "nbgrader_config.py", course)
    grading.release(course)
    released = nbformat.read(grading.notebook_path(course, "lessons", lesson), as_version=4)
    answers = {"loop": {"square": "while True:\n    pass", "total": "def total(xs):\n    return sum(xs)"},
               "partial": {"square": "def square(x):\n    return x ** 2"}}
    for student, cells in answers.items():
        nb = grading.copy_notebook(released)
        for cell in nb.cells:
            cell.source = cells.get(cell.metadata.get("nbgrader", {}).get("grade_id"), cell.source)
        path = grading.notebook_path(course, "submitted", lesson, student)
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)

    def grade():
        grading.nbgrader(["autograde", lesson, "--force", "--Execute.timeout=5"], course)
        return {s: grading.autograded_scores(course, lesson, s) for s in answers}

    first = grade()
    assert first == {"loop": {"square_test": (0.0, 1.0), "total_test": (2.0, 2.0)},
                     "partial": {"square_test": (1.0, 1.0), "total_test": (0.0, 2.0)}}
    graded = nbformat.read(grading.notebook_path(course, "autograded", lesson, "loop"), as_version=4)
    loop_cell = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "square")
    assert any(o.output_type == "error" for o in loop_cell.outputs), "the loop was not interrupted"
    assert grade() == first
    grading.nbgrader(["generate_feedback", lesson, "--force"], course)
    for student in answers:
        html = grading.notebook_path(course, "feedback", lesson, student).with_suffix(".html").read_text()
        assert "square_test" in html and "Score" in html
