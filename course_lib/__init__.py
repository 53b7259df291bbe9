"""course_lib: the helper library of the Diffusion Soundtracks course.

One module per concept, in lesson order: music, data, audio, viz, schedules, diffusion,
models, train, guidance, metrics, soundtrack, widgets, checks. Import what you need, e.g.
``from course_lib import music``.
"""
from pathlib import Path

__version__ = "0.1.0"

ASSETS = Path(__file__).resolve().parent.parent / "assets"
