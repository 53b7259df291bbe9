"""The library's layers (issue 19): the maths at the bottom imports nothing above it, and guidance
and the samplers no longer import each other. Read from the source (every import statement, also
those inside functions), so a call-time import that hides a cycle is seen too."""
import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "course_lib"


def imports_of(module: str) -> set[str]:
    """The course_lib modules that course_lib/MODULE.py imports, anywhere in the file."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.module and node.module.startswith("course_lib."):
                found.add(node.module.split(".")[1])
            elif node.module == "course_lib" or (node.level == 1 and node.module is None):
                found.update(alias.name for alias in node.names)
            elif node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("course_lib."))
    return found - {module}


def test_the_reader_sees_call_time_imports(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    (tmp_path / "a.py").write_text("from course_lib import b\ndef f():\n    from .c import x\n    from course_lib.d import y\n")
    assert imports_of("a") == {"b", "c", "d"}


@pytest.mark.parametrize("module, allowed", [("process", {"schedules"}), ("schedules", set())])
def test_the_maths_at_the_bottom_imports_nothing_above_it(module, allowed):
    assert imports_of(module) <= allowed, f"{module} imports {sorted(imports_of(module) - allowed)}"


def test_guidance_and_the_samplers_do_not_import_each_other():
    assert "diffusion" not in imports_of("guidance"), "guidance takes what it needs from process"
    assert "process" in imports_of("diffusion") and "process" in imports_of("guidance")


def test_diffusion_still_offers_what_the_lessons_call():
    from course_lib import diffusion, process
    for name in ("q_sample", "q_posterior", "renoise", "predict_x0_from_eps", "predict_eps_from_x0", "velocity",
                 "predict_x0_from_v", "predict_eps_from_v", "eps_and_x0_from_output", "prediction_type", "randn"):
        assert getattr(diffusion, name) is getattr(process, name), name
