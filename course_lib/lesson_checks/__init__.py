"""The visible tests of each lesson, one module per lesson (``music_as_data`` is lesson 1, ...).

A lesson's test cell is one short call, e.g. ``checks.check_q_sample(q_sample)`` after
``from course_lib.lesson_checks import forward_diffusion as checks``. The checks hold what a
test cell should not show before a student tries: the reference values, the tables of likely
mistakes and what each one would give. They call the student's function through
``course_lib.checks.call``, so a failure is one short box, not a traceback through this package.
Hidden tests stay in the solution notebooks.
"""

from course_lib import devices as _devices

# Every lesson imports its checks in its first cells: the one place to keep its CPU threads from
# oversubscribing a shared machine (devices.use_lesson_threads; $COURSE_THREADS overrides it).
LESSON_THREADS = _devices.use_lesson_threads()
