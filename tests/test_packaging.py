"""environment.yml and pyproject.toml describe the same dependencies; the Makefile pins torch first."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r for r in project["dependencies"]}
    for extra in ("dev", "audio"):
        wanted.update({_name(r): r for r in project["optional-dependencies"][extra]})
    pip_lines = [line.strip()[2:].strip() for line in (ROOT / "environment.yml").read_text().splitlines()
                 if line.strip().startswith("- ") and line.startswith("      ")]
    conda = {_name(r): r for r in pip_lines if not r.startswith("-e")}
    assert set(conda) == set(wanted), f"only in environment.yml: {set(conda) - set(wanted)}; " \
                                      f"only in pyproject: {set(wanted) - set(conda)}"
    for name, requirement in wanted.items():
        if name != "torch":  # pinned in the environment, loose in the package (Colab keeps its own)
            assert conda[name].replace(" ", "") == requirement.replace(" ", ""), (name, conda[name], requirement)
    assert conda["torch"] == "torch==2.13.0" and project["dependencies"][0].startswith("torch>=")


def test_makefile_installs_pinned_torch_before_the_package():
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCH  ?= torch==2.13.0" in makefile
    assert makefile.index('pip install --quiet "$(TORCH)"') < makefile.index('pip install --quiet -e ".[dev,audio]"')
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
