"""Shared fixtures.

- Every test session keeps Jupyter, IPython and matplotlib state in temporary folders (set before
  anything starts a kernel), uses the Agg backend, and one BLAS/OpenMP thread per process (CI has
  two cores and grades two lessons at a time).
- ``released_course``: one throw-away course with every lesson released by nbgrader.
- ``lesson_report(lesson)``: the ``course_lib.grading.LessonReport`` of a lesson, autograded once
  per session. All lessons selected for the session are graded together, two at a time, on first
  use; their timings are printed in the terminal summary. ``COURSE_GRADING_JOBS`` (default 2)
  sets how many at a time; ``COURSE_GRADE_RELEASE=0`` skips autograding the untouched releases
  (half the notebook time; the probed solution run still checks stubs and independence).
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch or numpy start their thread pools
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["MPLBACKEND"] = "Agg"

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import pytest  # noqa: E402

from course_lib import grading  # noqa: E402

GRADING_JOBS = int(os.environ.get("COURSE_GRADING_JOBS", "2"))
GRADE_RELEASE = os.environ.get("COURSE_GRADE_RELEASE", "1") != "0"
_reports: dict = {}  # lesson -> Future[LessonReport | Exception], for the terminal summary


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """Jupyter/IPython/matplotlib config, data and runtime folders in a temporary directory."""
    env = grading.isolated_environment(tmp_path_factory.mktemp("home"))
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def released_course(tmp_path_factory):
    """A temporary course directory with every lesson's source, release and gradebook."""
    return grading.prepare_course(grading.REPO, tmp_path_factory.mktemp("course"), grading.find_lessons())


def _selected_lessons(session) -> list[str]:
    """Lessons that some selected notebook test needs, in order."""
    lessons = {item.callspec.params["lesson"] for item in session.items
               if hasattr(item, "callspec") and "lesson" in item.callspec.params
               and item.get_closest_marker("notebooks")}
    return sorted(lessons)


@pytest.fixture(scope="session")
def lesson_report(request, released_course, tmp_path_factory):
    """``lesson_report(lesson)`` -> LessonReport; raises if the lesson could not be graded at all."""
    workdir = tmp_path_factory.mktemp("graded")
    pool = ThreadPoolExecutor(max_workers=GRADING_JOBS)

    def start(lesson):
        if lesson not in _reports:
            _reports[lesson] = pool.submit(grading.verify_lesson, lesson, grading.REPO, workdir,
                                           released_course, GRADE_RELEASE)

    for lesson in _selected_lessons(request.session):
        start(lesson)

    def get(lesson):
        start(lesson)
        return _reports[lesson].result()

    yield get
    pool.shutdown(wait=True)


def pytest_terminal_summary(terminalreporter):
    if not _reports:
        return
    terminalreporter.section("autograding (course_lib.grading.verify_lesson)")
    for lesson, future in sorted(_reports.items()):
        if future.done() and future.exception() is None:
            terminalreporter.write_line(future.result().summary())
        else:
            terminalreporter.write_line(f"{lesson}: not graded ({future.exception() if future.done() else 'cancelled'})")
