"""The Colab setup cell: silent outside Colab; on a simulated Colab it installs each missing piece
once, never touches torch, enables custom widgets and moves into the lesson folder. And the
tooling that writes the cell into every solution notebook."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import nbformat
import pytest

from course_lib import colab, grading

REPO = grading.REPO
LESSON = "01_music_as_data"
URL = "https://github.com/someone/diffusion-soundtracks"  # a published course's address (made up)
COLAB_TORCH = "2.5.1+cu121"  # what Colab ships: a CUDA build that pip must never replace
COLAB_PACKAGES = {"torch": COLAB_TORCH, "torchvision": "0.20.1+cu121", "torchaudio": "2.5.1+cu121",
                  "numpy": "1.26.4", "matplotlib": "3.8.0", "ipywidgets": "7.7.1", "music21": "9.1.0",
                  "tqdm": "4.66.6"}  # no pretty_midi, pyfluidsynth, course_lib; no FluidSynth library


def _name(distribution):
    return re.sub(r"[-_.]+", "-", distribution).lower()


class SimulatedColab:
    """Colab's state as setup() sees it, and a subprocess.run that records commands and applies their
    effect to that state instead of running them."""

    def __init__(self, root: Path):
        self.root = root
        self.packages = {_name(k): v for k, v in COLAB_PACKAGES.items()}
        self.fluidsynth = None
        self.commands: list[list[str]] = []
        self.constraints: list[list[str]] = []  # the constraints file's lines at each pip install
        self.widget_manager_calls = 0
        self.fail_next_apt_install = False

    def run(self, command, **kwargs):
        command = [str(c) for c in command]
        self.commands.append(command)
        fail = subprocess.CompletedProcess(command, 100, "", "E: Unable to fetch some archives")
        if command[:2] == ["git", "clone"]:
            destination = Path(command[-1])
            (destination / ".git").mkdir(parents=True)
            (destination / "course_lib").mkdir()
            (destination / "lessons" / LESSON).mkdir(parents=True)
        elif command[:2] == ["apt-get", "install"]:
            if self.fail_next_apt_install:
                self.fail_next_apt_install = False
                return fail
            self.fluidsynth = "libfluidsynth.so.3"
        elif command[1:4] == ["-m", "pip", "install"]:
            args = command[4:]
            if "--editable" in args:
                assert "--no-deps" in args, "course_lib must be installed without resolving dependencies"
                self.packages[_name(colab.DISTRIBUTION)] = "0.1.0"
            else:
                pins = Path(args[args.index("--constraint") + 1]).read_text().split()
                self.constraints.append(pins)
                for requirement in (a for a in args if not a.startswith("-") and a not in pins and "/" not in a):
                    name, minimum = requirement.split(">=")
                    self.packages[_name(name)] = minimum
        return subprocess.CompletedProcess(command, 0, "", "")

    def installed_version(self, distribution):
        return self.packages.get(_name(distribution))

    def enable_custom_widget_manager(self):
        self.widget_manager_calls += 1


@pytest.fixture
def simulated_colab(tmp_path, monkeypatch):
    fake = SimulatedColab(tmp_path)
    google = types.ModuleType("google")
    google_colab = types.ModuleType("google.colab")
    google_colab.output = types.SimpleNamespace(enable_custom_widget_manager=fake.enable_custom_widget_manager)
    google.colab = google_colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    monkeypatch.setattr(subprocess, "run", fake.run)
    monkeypatch.setattr(colab, "installed_version", fake.installed_version)
    monkeypatch.setattr(colab, "fluidsynth_library", lambda: fake.fluidsynth)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    for _, module, _ in colab.REQUIREMENTS:  # what Colab lacks cannot have been imported there
        if _name(module) not in fake.packages:
            monkeypatch.delitem(sys.modules, module, raising=False)
    return fake


def run_cell(source):
    exec(compile(source, "<setup cell>", "exec"), {"__name__": "__main__"})


def test_outside_colab_the_cell_does_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a} outside Colab"))
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    run_cell(colab.render_setup_cell(LESSON))
    assert capsys.readouterr() == ("", "")
    assert Path.cwd() == tmp_path and sys.path == path_before


def test_on_colab_it_installs_each_missing_piece_once_and_never_touches_torch(simulated_colab, capsys):
    import torch  # the kernel's torch, imported before the setup cell runs (as on Colab)

    fake = simulated_colab
    cell = colab.render_setup_cell(LESSON, repo_url=URL, root=str(fake.root))
    run_cell(cell)
    first_run = list(fake.commands)
    repo_dir = fake.root / colab.repo_name(URL)
    kinds = [" ".join(c[:2]) if c[0] != sys.executable else "pip " + ("editable" if "--editable" in c else "deps")
             for c in first_run]
    assert kinds == ["git clone", "apt-get install", "pip deps", "pip editable"], first_run
    assert first_run[0][-2:] == [URL, str(repo_dir)]
    assert first_run[1][-1] == "fluidsynth" and "-qq" in first_run[1]
    requirements = [a for a in first_run[2][4:] if not a.startswith("-") and not a.endswith(".txt")]
    assert requirements == ["anywidget>=0.9", "pretty_midi>=0.2.10", "pyfluidsynth>=1.3"]  # only what Colab lacks
    assert fake.constraints == [[f"torch=={COLAB_TORCH}", "torchvision==0.20.1+cu121",
                                 "torchaudio==2.5.1+cu121", "numpy==1.26.4"]]
    assert first_run[3][-3:] == ["--no-deps", "--editable", str(repo_dir)]
    assert Path.cwd() == repo_dir / "lessons" / LESSON and sys.path[0] == str(repo_dir)
    assert fake.widget_manager_calls == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and f"torch {COLAB_TORCH}" in out and "installed fluidsynth" in out

    run_cell(cell)  # again: nothing to install, widgets enabled again, same folder
    assert fake.commands == first_run, "a second run installed something again"
    assert fake.widget_manager_calls == 2 and Path.cwd() == repo_dir / "lessons" / LESSON
    assert "everything was already installed" in capsys.readouterr().out

    assert fake.packages["torch"] == COLAB_TORCH
    for command in fake.commands:
        assert "conda" not in command[0]
        assert not any(re.match(r"torch\b", arg) for arg in command), f"torch named in {command}"
    assert sys.modules["torch"] is torch  # nothing replaced or reloaded it


def test_upgrading_an_imported_package_asks_for_a_restart(simulated_colab, monkeypatch, capsys):
    simulated_colab.packages["music21"] = "8.1.0"  # too old, and already imported in this session
    monkeypatch.setitem(sys.modules, "music21", types.ModuleType("music21"))
    (simulated_colab.root / "repo" / "lessons" / LESSON).mkdir(parents=True)
    installed = colab.setup(LESSON, simulated_colab.root / "repo")
    assert "music21>=9.1" in installed and simulated_colab.packages["music21"] == "9.1"
    assert "Upgraded after being imported: music21. Restart the session" in capsys.readouterr().out


def test_a_failed_apt_install_updates_the_package_lists_and_retries(simulated_colab, capsys):
    simulated_colab.fail_next_apt_install = True
    (simulated_colab.root / "repo" / "lessons" / LESSON).mkdir(parents=True)
    colab.setup(LESSON, simulated_colab.root / "repo")
    apt = [c[:2] for c in simulated_colab.commands if c[0] == "apt-get"]
    assert apt == [["apt-get", "install"], ["apt-get", "update"], ["apt-get", "install"]]
    assert simulated_colab.fluidsynth


def test_a_failed_pip_install_says_what_failed(simulated_colab, monkeypatch):
    def failing_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for pretty_midi")

    simulated_colab.fluidsynth = "libfluidsynth.so.3"
    monkeypatch.setattr(subprocess, "run", failing_run)
    (simulated_colab.root / "repo" / "lessons" / LESSON).mkdir(parents=True)
    with pytest.raises(RuntimeError, match="No matching distribution found for pretty_midi"):
        colab.setup(LESSON, simulated_colab.root / "repo")


def test_a_wrong_lesson_name_says_so(simulated_colab):
    (simulated_colab.root / "repo").mkdir()
    with pytest.raises(FileNotFoundError, match="REPO_URL"):
        colab.setup("99_nowhere", simulated_colab.root / "repo")
    with pytest.raises(ValueError, match="01_music_as_data"):
        colab.render_setup_cell("Lesson 1")


def test_versions_compare_by_release_numbers():
    assert colab.satisfies("2.5.1+cu121", "2.1") and colab.satisfies("9.1.0", "9.1")
    assert not colab.satisfies("7.7.1", "8") and not colab.satisfies(None, "1.0")
    assert colab.satisfies("0.2.10", "0.2.9") and not colab.satisfies("0.2.9", "0.2.10")


def test_the_cell_is_short_and_needs_nothing_installed():
    cell = colab.render_setup_cell(LESSON)
    tree = ast.parse(cell)
    assert len(cell.splitlines()) <= 25  # STYLE: no code cell over ~25 lines
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"course_lib"}
    # course_lib.colab, which the cell imports from the fresh clone, must need only the standard library
    # at import time (nbformat is imported inside the instructor-side functions).
    module = ast.parse(Path(colab.__file__).read_text())
    top = {alias.name.split(".")[0] for node in module.body if isinstance(node, ast.Import) for alias in node.names}
    top |= {node.module.split(".")[0] for node in module.body if isinstance(node, ast.ImportFrom)}
    assert top - set(sys.stdlib_module_names) - {"__future__"} == set()
    init = ast.parse((Path(colab.__file__).parent / "__init__.py").read_text())
    assert all(isinstance(n, (ast.Expr, ast.Assign, ast.ImportFrom)) for n in init.body)
    assert {n.module for n in init.body if isinstance(n, ast.ImportFrom)} <= {"pathlib"}


def test_colab_requirements_follow_pyproject():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml itself")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {}
    for line in project["dependencies"] + sum(project["optional-dependencies"].values(), []):
        name, _, minimum = re.match(r"([A-Za-z0-9_.-]+)\s*(>=\s*([0-9.]+))?", line).groups()
        declared[_name(name)] = minimum
    for dist, _, minimum in colab.REQUIREMENTS:
        assert _name(dist) in declared, f"{dist} is installed on Colab but not declared in pyproject.toml"
        if dist != "ipywidgets":  # Colab keeps its own ipywidgets 7; the widgets support it
            assert minimum == declared[_name(dist)], f"{dist}: Colab wants >={minimum}, pyproject >={declared[_name(dist)]}"
    runtime = {_name(re.match(r"[A-Za-z0-9_.-]+", d).group(0)) for d in project["dependencies"]}
    assert runtime - {_name(d) for d, _, _ in colab.REQUIREMENTS} == {"torch", "nbgrader", "jupyterlab"}


def test_sync_inserts_the_cell_then_keeps_it_equal_to_the_template(tmp_path):
    source = grading.notebook_path(REPO, grading.SOURCE, LESSON)
    copy = tmp_path / "solutions" / LESSON / f"{LESSON}.ipynb"
    copy.parent.mkdir(parents=True)
    shutil.copy(source, copy)
    original = nbformat.read(copy, as_version=4)
    colab.sync_notebook(copy)
    nb = nbformat.read(copy, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == colab.render_setup_cell(LESSON)
    assert code[0].metadata["tags"] == [colab.SETUP_TAG] and "nbgrader" not in code[0].metadata
    originals = [c.source for c in original.cells if c.cell_type == "code" and colab.SETUP_TAG not in c.metadata.get("tags", [])]
    assert [c.source for c in code[1:]] == originals, "sync must not touch the lesson's own cells"
    assert colab.out_of_date(tmp_path) == [] and colab.sync_notebook(copy) is False  # idempotent

    code[0].source = "print('stale')"
    nbformat.write(nb, copy)
    assert colab.out_of_date(tmp_path) == [f"solutions/{LESSON}/{LESSON}.ipynb"]
    assert colab.sync_notebook(copy) is True
    assert [c for c in nbformat.read(copy, as_version=4).cells if c.cell_type == "code"][0].source \
        == colab.render_setup_cell(LESSON)


def test_every_solution_starts_with_the_setup_cell():
    stale = colab.out_of_date(REPO)
    assert stale == [], (f"setup cell missing or different from course_lib/colab.py's template in {stale}: "
                         "run `python -m course_lib.colab sync`, then `python -m course_lib.grading release`")


def test_open_in_colab_links():
    url = colab.colab_url(LESSON, URL + ".git")
    assert url == ("https://colab.research.google.com/github/someone/diffusion-soundtracks/blob/main/"
                   f"lessons/{LESSON}/{LESSON}.ipynb")
    assert colab.colab_url(LESSON, None) is None  # not published: no link to a repository that is not there
    assert colab.colab_url(LESSON, "https://gitlab.com/someone/ds.git") is None  # Colab opens GitHub only


# --------------------------------------------------------------------------- publishing

def course_copy(root: Path, lessons=(LESSON, "08_adaptive_soundtrack")) -> Path:
    """The parts of the course that publish writes: colab.py (the one place), solutions, README."""
    (root / "course_lib").mkdir(parents=True)
    shutil.copy(Path(colab.__file__), root / "course_lib" / "colab.py")
    for lesson in lessons:
        source = grading.notebook_path(REPO, grading.SOURCE, lesson)
        (root / "solutions" / lesson).mkdir(parents=True)
        shutil.copy(source, root / "solutions" / lesson / source.name)
    shutil.copy(REPO / "README.md", root / "README.md")
    return root


def setup_cells(root: Path) -> dict:
    return {p.stem: [c for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code"][0].source
            for p in sorted(root.glob("solutions/*/*.ipynb"))}


def test_publish_names_the_repository_in_every_cell_and_the_readme(tmp_path, monkeypatch):
    root = course_copy(tmp_path)
    released = []
    monkeypatch.setattr(grading, "release", lambda r: released.append(r) or [r / "lessons" / LESSON / "x.ipynb"])
    module_url = colab.REPO_URL
    changed = colab.publish(root, URL, "course", release=True)
    assert colab.repository(root) == (URL, "course") and colab.REPO_URL == module_url  # not this module's file
    assert sorted(changed)[:2] == ["README.md", "course_lib/colab.py"] and released == [root]
    for lesson, cell in setup_cells(root).items():
        assert cell == colab.render_setup_cell(lesson, repo_url=URL, branch="course")
        assert f'"{URL}"' in cell and '"--branch", "course"' in cell
    readme = (root / "README.md").read_text()
    assert readme.count("colab-badge.svg") == 2 and "/blob/course/lessons/08_adaptive_soundtrack/" in readme
    assert colab.out_of_date(root) == [] and colab.publish(root, URL, "course", release=False) == ["course_lib/colab.py"]

    colab.publish(root, "", release=False)  # unpublish: back to the committed state
    assert colab.repository(root) == (None, "main")
    assert (root / "README.md").read_text().count("colab-badge.svg") == 0 and "Not published yet" in \
        (root / "README.md").read_text()
    assert all("REPO_URL, REPO_DIR = None," in cell for cell in setup_cells(root).values())


@pytest.mark.parametrize("url", ["hello", "http://github.com/a/b", "https://github.com/only-owner",
                                 "https://user:secret@github.com/a/b", "/home/me/course", "file:///srv/course.git"])
def test_publish_refuses_what_colab_cannot_clone(tmp_path, url, capsys):
    root = course_copy(tmp_path, lessons=(LESSON,))
    before = (root / "course_lib" / "colab.py").read_text()
    with pytest.raises(ValueError, match="https address"):
        colab.publish(root, url, release=False)
    assert (root / "course_lib" / "colab.py").read_text() == before


def test_publish_defaults_to_a_github_origin(tmp_path):
    root = course_copy(tmp_path, lessons=(LESSON,))
    git = ["git", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    with pytest.raises(ValueError, match="no URL given"):  # no origin at all
        colab.publish(root, release=False)
    subprocess.run([*git, "remote", "add", "origin", "https://gitlab.com/me/ds.git"], check=True)
    with pytest.raises(ValueError, match="not a GitHub address"):
        colab.publish(root, release=False)
    subprocess.run([*git, "remote", "set-url", "origin", "git@github.com:me/ds.git"], check=True)
    colab.publish(root, release=False)
    assert colab.repository(root) == ("https://github.com/me/ds.git", "main")


def test_the_committed_course_names_one_repository_everywhere():
    # (not required to equal origin: a fork's CI checkout has a GitHub origin before anyone publishes)
    assert colab.repository(REPO) == (colab.REPO_URL, colab.BRANCH)
    readme = (REPO / "README.md").read_text()
    assert colab.readme_links(REPO) in readme, "README links out of date: python -m course_lib.colab publish"


def test_unpublished_the_cell_says_so_in_one_line(simulated_colab, capsys):
    run_cell(colab.render_setup_cell(LESSON, repo_url=None, root=str(simulated_colab.root)))
    out = capsys.readouterr().out
    assert simulated_colab.commands == [] and out.count("\n") == 1
    assert "not published yet" in out and f"{simulated_colab.root}/{colab.DISTRIBUTION}" in out and "upload" in out
    uploaded = simulated_colab.root / colab.DISTRIBUTION  # the student uploads the folder, runs the cell again
    (uploaded / "course_lib").mkdir(parents=True)
    (uploaded / "lessons" / LESSON).mkdir(parents=True)
    run_cell(colab.render_setup_cell(LESSON, repo_url=None, root=str(simulated_colab.root)))
    assert [c[:2] for c in simulated_colab.commands][0] == ["apt-get", "install"]  # no clone, then the setup
    assert Path.cwd() == uploaded / "lessons" / LESSON


def test_the_setup_says_whether_a_gpu_is_used(simulated_colab, monkeypatch, capsys):
    import torch

    simulated_colab.fluidsynth = "libfluidsynth.so.3"
    (simulated_colab.root / "repo" / "lessons" / LESSON).mkdir(parents=True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    colab.setup(LESSON, simulated_colab.root / "repo")
    assert "the GPU (Tesla T4) is used" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    colab.setup(LESSON, simulated_colab.root / "repo")
    assert "no GPU in this runtime, so the CPU is used" in capsys.readouterr().out


# --------------------------------------------------------------------------- playing Colab for real

FAKE_COLAB = """\
class _Output:  # google.colab.output, the one function setup() calls
    widget_manager_calls = 0

    def enable_custom_widget_manager(self):
        type(self).widget_manager_calls += 1


output = _Output()
"""
KERNEL = """\
import contextlib, io, json, sys
import google.colab  # Colab's kernel has imported it before the first cell runs
from IPython.core.interactiveshell import InteractiveShell

shell, outputs = InteractiveShell.instance(), []
shell.enable_gui = lambda gui=None: None  # a terminal shell has no event loop; %matplotlib inline needs none
for source in json.load(open(sys.argv[1])):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = shell.run_cell(source)
    outputs.append(out.getvalue())
    if not result.success:
        sys.exit(f"cell failed: {result.error_before_exec or result.error_in_exec!r}\\n{source}\\n{out.getvalue()}")
import course_lib, torch
print(json.dumps({"outputs": outputs, "course_lib": course_lib.__file__, "torch": torch.__file__,
                  "widget_manager_calls": google.colab.output.widget_manager_calls, "cwd": shell.ev("__import__('os').getcwd()")}))
"""


def snapshot_repository(destination: Path) -> Path:
    """A bare git repository whose one commit is the working tree as it is now (tracked and new files):
    what a published repository would hold."""
    source = destination / "working-tree"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-C", str(source)]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *command], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(destination / "course.git")], check=True)
    return destination / "course.git"


def colab_runtime(root: Path) -> tuple[Path, dict]:
    """A fresh virtual environment without pip or course_lib that sees this one's packages (torch and
    the rest: what Colab preinstalls) read-only, plus a fake ``google.colab``; returns its python and
    the environment to run it in (offline: pip may only use what is already here)."""
    preinstalled, fake = root / "preinstalled", root / "fake-colab"
    preinstalled.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("__editable__", "diffusion_soundtracks", "course_lib")) and entry.suffix != ".pth":
            (preinstalled / entry.name).symlink_to(entry)
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "colab" / "__init__.py").write_text(FAKE_COLAB)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "colab-preinstalled.pth").write_text(f"{fake}\n{preinstalled}\n")
    bin_dir = root / "bin"  # apt-get must not run: FluidSynth is expected installed (make system-deps)
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho 'this test runs offline: install fluidsynth first "
                                     "(make system-deps)' >&2\nexit 1\n")
    (bin_dir / "apt-get").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PIP_NO_INDEX": "1",
           "PIP_CONFIG_FILE": os.devnull, "PIP_NO_BUILD_ISOLATION": "0", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    return python, env


def test_a_lesson_opens_on_a_simulated_colab_from_a_clone(tmp_path):
    """The real setup cell in a fresh environment: clone (file://), install course_lib once, never torch,
    then the lesson's first code cells run with course_lib imported from the clone."""
    lesson = LESSON
    notebook = nbformat.read(grading.notebook_path(REPO, grading.RELEASE, lesson), as_version=4)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert code[0] == colab.render_setup_cell(lesson), "the release's setup cell is not the template's"
    url = snapshot_repository(tmp_path).as_uri()  # file:///.../course.git
    content = tmp_path / "content"  # Colab's /content
    content.mkdir()
    python, env = colab_runtime(tmp_path)
    setup = colab.render_setup_cell(lesson, repo_url=url, root=str(content))
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps([setup, setup, *code[1:4]]))  # the setup twice, then the lesson's first cells
    done = subprocess.run([python, "-c", KERNEL, str(cells)], cwd=content, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    clone = content / "course"
    assert Path(result["course_lib"]).resolve().is_relative_to(clone.resolve()), result["course_lib"]
    first, second = result["outputs"][:2]
    assert "installed course_lib (editable, no dependencies)" in first and first.count("\n") == 1, first
    assert "everything was already installed" in second, second  # nothing installed twice
    assert "CPU is used" in first or "GPU" in first
    assert result["widget_manager_calls"] == 2 and result["cwd"] == str(clone / "lessons" / lesson)
    assert "parts: ['Soprano', 'Alto', 'Tenor', 'Bass']" in result["outputs"][3]  # the lesson's own cells ran
    assert Path(result["torch"]).parent.parent == tmp_path / "preinstalled"  # Colab's torch, never reinstalled
    site = Path(result["course_lib"]).parents[1]
    venv_site = next((tmp_path / "venv").glob("lib/python*/site-packages"))
    installed = sorted(p.name for p in venv_site.iterdir() if p.name != "__pycache__")
    assert [n for n in installed if not n.startswith(("__editable__", "diffusion_soundtracks"))] == \
        ["colab-preinstalled.pth"], installed  # only course_lib was installed here: no torch, nothing else
    assert site == clone
