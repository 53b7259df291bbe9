"""Google Colab: the setup cell at the top of every lesson, what it does there, and how it is kept in sync.

Every lesson's first code cell (tagged ``colab-setup``) is ``SETUP_CELL`` filled in for that lesson.
Outside Colab (JupyterLab, VS Code, nbgrader) it does nothing and prints nothing. On Colab it

1. clones the course repository (``REPO_URL``, branch ``BRANCH``) into ``/content/<repo name>``
   unless it is already there, and puts it on ``sys.path``;
2. calls ``setup(lesson, repo_dir)`` from this module (which therefore imports nothing outside
   the standard library: course_lib's dependencies are not installed yet when it runs), which
   - installs the FluidSynth library with apt, quietly, if it is missing;
   - installs with pip only the requirements that are missing or too old (``REQUIREMENTS``),
     with a constraints file pinning the torch (and torchvision, torchaudio, numpy) that Colab
     ships, so its CUDA build of torch is never replaced;
   - installs course_lib itself with ``pip install --no-deps --editable`` (no dependency resolution);
   - enables Colab's custom widget manager, so ipywidgets 8 widgets render too;
   - changes into ``lessons/<lesson>/`` so the notebook's relative paths work.
   Each step checks first, so running the cell again installs nothing twice.

``REPO_URL`` (with ``BRANCH``) below is the one place that names the public repository. It is
``None`` until the course is published; the setup cell then says so in one line, and how to put
the course on Colab by hand (upload its folder, or clone a copy). Publishing is one command:

    python -m course_lib.colab publish [URL] [--branch B]    # or: make publish REPO=URL
      sets REPO_URL and BRANCH in this file, rewrites every solution's setup cell, regenerates the
      releases (python -m course_lib.grading release) and the README's Open-in-Colab links. URL
      defaults to `git remote get-url origin` when that is a GitHub address; a URL that is not a
      git repository address (https://host/owner/repo[.git]) is refused.
    python -m course_lib.colab unpublish                     # back to "not published yet"
    python -m course_lib.colab sync [--check] [LESSON ...]   # write (or check) the setup cells
    python -m course_lib.colab cell LESSON                   # print one lesson's setup cell
    python -m course_lib.colab links                         # README lines with Open-in-Colab badges

On Colab a GPU is used when the runtime has one: the lessons pick their device with
``course_lib.devices.pick_device("auto")`` (CUDA when present), and ``setup`` says which it found.
"""
from __future__ import annotations

import argparse
import ctypes.util
import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_URL = None  # the public course repository (https://github.com/OWNER/REPO); None: not published yet
BRANCH = 'main'
COLAB_ROOT = "/content"  # Colab's working folder, shown in its file browser
SETUP_TAG = "colab-setup"
DISTRIBUTION = "diffusion-soundtracks"  # pyproject.toml's project name
# What the lessons import, as (pip distribution, import name, minimum version): pyproject.toml's
# runtime dependencies without the instructor tools (nbgrader, jupyterlab) and torch, plus the
# FluidSynth bindings. ipywidgets 7.6 (Colab's own) is enough: the widgets work with 7 and 8.
REQUIREMENTS = (("numpy", "numpy", "1.24"), ("matplotlib", "matplotlib", "3.7"),
                ("ipywidgets", "ipywidgets", "7.6"), ("anywidget", "anywidget", "0.9"),
                ("pretty_midi", "pretty_midi", "0.2.10"),
                ("music21", "music21", "9.1"), ("tqdm", "tqdm", "4.66"), ("pyfluidsynth", "fluidsynth", "1.3"))
PROTECTED = ("torch", "torchvision", "torchaudio", "numpy")  # pinned to Colab's builds while installing
TORCH_REQUIREMENT = "torch>=2.1"  # only where no torch is installed at all (never on Colab)
APT_PACKAGE = "fluidsynth"

SETUP_CELL = '''\
# Setup. On Google Colab this fetches the course and installs what is missing (once, about a
# minute); anywhere else (JupyterLab, VS Code, nbgrader) it does nothing. Safe to run again.
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    REPO_URL, REPO_DIR = {repo_url}, {repo_dir}  # REPO_URL None: the course is not published yet
    if REPO_URL and not os.path.isdir(os.path.join(REPO_DIR, "course_lib")):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", {branch},
                        REPO_URL, REPO_DIR], check=True)
    if os.path.isdir(os.path.join(REPO_DIR, "course_lib")):
        if REPO_DIR not in sys.path:
            sys.path.insert(0, REPO_DIR)
        from course_lib import colab  # standard library only: safe before anything is installed
        colab.setup({lesson}, REPO_DIR)
    else:
        print({unpublished})'''
UNPUBLISHED = ("This course is not published yet, so Colab cannot fetch it: upload the course folder as {repo_dir} "
               "(Files pane) or `!git clone` a copy of it there, then run this cell again: it will `pip install` "
               "the course from that folder.")
NO_COURSE = "{repo_dir} has no course_lib folder: is {repo_url} the course's repository (REPO_URL in course_lib/colab.py)?"
GIT_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~-]+){2,}?(\.git)?/?")


_UNSET = object()  # "this module's REPO_URL / BRANCH", read when called (publish changes them)


def repo_name(repo_url: str | None = _UNSET) -> str:
    """The clone's folder name: the repository's last path part, or the distribution's name unpublished."""
    repo_url = REPO_URL if repo_url is _UNSET else repo_url
    if not repo_url:
        return DISTRIBUTION
    return repo_url.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]


def render_setup_cell(lesson: str, *, repo_url: str | None = _UNSET, branch: str | None = None,
                      root: str = COLAB_ROOT) -> str:
    """The setup cell's source for ``lesson`` (e.g. "01_music_as_data"); repo_url None: unpublished."""
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", lesson):
        raise ValueError(f"lesson names look like '01_music_as_data', got {lesson}")
    repo_url = REPO_URL if repo_url is _UNSET else repo_url
    repo_dir = f"{root.rstrip('/')}/{repo_name(repo_url)}"
    values = dict(repo_dir=repo_dir, branch=branch or BRANCH, repo_url=repo_url, lesson=lesson,
                  unpublished=(NO_COURSE if repo_url else UNPUBLISHED).format(repo_dir=repo_dir, repo_url=repo_url))
    return SETUP_CELL.format(**{key: "None" if value is None else json.dumps(value)  # Python literals
                                for key, value in values.items()})


# --------------------------------------------------------------------------- publishing

def check_git_url(url: str) -> str:
    """``url`` as Colab can clone it (https, no credentials), or a ValueError that says what to give.
    git@github.com:owner/repo.git becomes https://github.com/owner/repo.git."""
    url = str(url).strip()
    ssh = re.fullmatch(r"(?:ssh://)?git@([A-Za-z0-9.-]+)[:/](.+)", url)
    if ssh:
        url = f"https://{ssh.group(1)}/{ssh.group(2)}"
    if not GIT_URL.fullmatch(url) or "@" in url:
        raise ValueError(f"{url!r} is not the address of a git repository that Colab can clone: give its https "
                         "address without credentials, e.g. https://github.com/you/diffusion-soundtracks")
    return url


def origin_url(root) -> str | None:
    """``git remote get-url origin`` in ``root`` when it is a GitHub address (https form), else None."""
    done = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root, capture_output=True, text=True)
    url = done.stdout.strip()
    if done.returncode != 0 or "github.com" not in url:
        return None
    try:
        return check_git_url(url)
    except ValueError:
        return None


def repository(root) -> tuple[str | None, str]:
    """(REPO_URL, BRANCH) as written in ``root``'s course_lib/colab.py (what publish sets)."""
    import ast

    values = {}
    for node in ast.parse(Path(root, "course_lib", "colab.py").read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", "") in (
                "REPO_URL", "BRANCH"):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values["REPO_URL"], values["BRANCH"]


def set_repository(root, url: str | None, branch: str = "main") -> None:
    """Write REPO_URL and BRANCH into ``root``'s course_lib/colab.py (this module's own lines)."""
    global REPO_URL, BRANCH
    path = Path(root, "course_lib", "colab.py")
    text = path.read_text()
    for name, value in (("REPO_URL", url), ("BRANCH", branch)):
        text, n = re.subn(rf"^{name} = [^#\n]*?(?=\s*(#|$))", f"{name} = {value!r}", text, count=1, flags=re.M)
        if n != 1:
            raise RuntimeError(f"{path} has no line `{name} = ...` to set")
    path.write_text(text)
    if Path(__file__).resolve() == path.resolve():
        REPO_URL, BRANCH = url, branch


README_START, README_END = "<!-- colab-links -->", "<!-- /colab-links -->"


def update_readme(root) -> bool:
    """Put ``readme_links(root)`` between the README's colab-links markers; returns whether it changed."""
    path = Path(root, "README.md")
    text = path.read_text()
    if README_START not in text:
        raise RuntimeError(f"{path} has no {README_START} marker where the Open-in-Colab links go")
    head, _, rest = text.partition(README_START)
    tail = rest.partition(README_END)[2] if README_END in rest else rest
    new = f"{head}{README_START}\n{readme_links(root)}\n{README_END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


def publish(root, url: str | None = None, branch: str | None = None, *, release: bool = True) -> list[str]:
    """Name the public repository (``url``; None: ``origin_url(root)``) everywhere it is needed:
    this module's REPO_URL/BRANCH, every solution's setup cell, the releases, the README's links.
    Returns what changed (paths relative to ``root``)."""
    if url is None:
        url = origin_url(root)
        if url is None:
            raise ValueError("no URL given and `git remote get-url origin` is not a GitHub address: "
                             "python -m course_lib.colab publish https://github.com/you/diffusion-soundtracks")
    url = check_git_url(url) if url != "" else None
    branch = branch or "main"
    set_repository(root, url, branch)
    changed = ["course_lib/colab.py"]
    changed += [str(p.relative_to(root)) for p in _lessons(Path(root))
                if sync_notebook(p, repo_url=url, branch=branch)]
    if update_readme(root):
        changed.append("README.md")
    if release:
        from . import grading  # instructor side only (nbgrader)

        changed += [str(Path(p).relative_to(root)) for p in grading.release(Path(root))]
    return changed


# --------------------------------------------------------------------------- what is installed (on Colab)

def installed_version(distribution: str) -> str | None:
    """The installed version of a pip distribution, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def fluidsynth_library() -> str | None:
    """The FluidSynth shared library's name if the system has it (what pyfluidsynth loads)."""
    return ctypes.util.find_library("fluidsynth")


def _release(version: str) -> tuple[int, ...]:
    """'2.5.1+cu121' -> (2, 5, 1): the numeric release part, enough to compare with a minimum."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(n) for n in match.group(0).split(".")) if match else ()


def satisfies(version: str | None, minimum: str) -> bool:
    return version is not None and _release(version) >= _release(minimum)


def missing_requirements() -> list[str]:
    """pip requirements ("name>=minimum") for what is absent or older than the lessons need."""
    missing = [f"{dist}>={minimum}" for dist, _, minimum in REQUIREMENTS
               if not satisfies(installed_version(dist), minimum)]
    if installed_version("torch") is None:
        missing.insert(0, TORCH_REQUIREMENT)
    return missing


def constraints(installing: list[str]) -> list[str]:
    """Pins ("torch==2.5.1+cu121") for the protected packages that are installed and not being installed."""
    names = {re.split(r"[<>=!~ ]", requirement)[0] for requirement in installing}
    return [f"{name}=={installed_version(name)}" for name in PROTECTED
            if installed_version(name) is not None and name not in names]


# --------------------------------------------------------------------------- the setup itself

def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run quietly; on failure raise with the end of the command's own error output."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {done.returncode}):\n"
                           + ((done.stderr or "") + (done.stdout or ""))[-2000:])
    return done


def _install_fluidsynth() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", APT_PACKAGE]
    try:
        _run(install, env=env)
    except RuntimeError:  # stale package lists on a fresh VM: update them, then try again
        _run(["apt-get", "update", "-qq"], env=env)
        _run(install, env=env)


def _pip(*args: str) -> None:
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args])


def lesson_folder(repo_dir: Path, lesson: str) -> Path:
    """``lessons/<lesson>`` (the student version), else ``solutions/<lesson>``, in the clone."""
    for step in ("lessons", "solutions"):
        if Path(repo_dir, step, lesson).is_dir():
            return Path(repo_dir, step, lesson)
    raise FileNotFoundError(f"{repo_dir} has no lessons/{lesson} or solutions/{lesson}: is REPO_URL "
                            f"right and the lesson name spelled as in the repository?")


def device_summary() -> str:
    """Which device the lessons' ``devices.pick_device("auto")`` will choose here, in words."""
    import torch  # installed by now: Colab ships it

    if torch.cuda.is_available():
        return f"the GPU ({torch.cuda.get_device_name(0)}) is used"
    return "no GPU in this runtime, so the CPU is used (Runtime > Change runtime type > GPU trains faster)"


def setup(lesson: str, repo_dir) -> list[str]:
    """On Colab: install what is missing, enable custom widgets, ``cd`` into the lesson; returns what
    was installed (empty when everything already was)."""
    repo_dir = Path(repo_dir)
    folder = lesson_folder(repo_dir, lesson)
    done = []
    if fluidsynth_library() is None:
        _install_fluidsynth()
        done.append(f"{APT_PACKAGE} (apt)")
    missing = missing_requirements()
    if missing:
        pins = Path(tempfile.gettempdir(), "course-colab-constraints.txt")
        pins.write_text("".join(line + "\n" for line in constraints(missing)))
        _pip("--constraint", str(pins), *missing)
        done += missing
    if installed_version(DISTRIBUTION) is None:
        _pip("--no-deps", "--editable", str(repo_dir))
        done.append("course_lib (editable, no dependencies)")
    importlib.invalidate_caches()  # let this kernel import what was just installed
    stale = [module for dist, module, _ in REQUIREMENTS
             if module in sys.modules and any(m.startswith(dist + ">=") for m in missing)]
    try:
        from google.colab import output
        output.enable_custom_widget_manager()
    except (ImportError, AttributeError):  # not Colab's frontend (e.g. a local runtime): widgets as usual
        pass
    os.chdir(folder)
    torch = installed_version("torch")
    print(f"Colab setup: {'installed ' + ', '.join(done) if done else 'everything was already installed'}; "
          f"torch {torch} as Colab ships it; {device_summary()}; working folder {folder}")
    if stale:
        print(f"Upgraded after being imported: {', '.join(stale)}. Restart the session "
              "(Runtime > Restart session) and run this cell again.")
    return done


# --------------------------------------------------------------------------- keeping the notebooks in sync

def _lessons(root: Path, names=None) -> list[Path]:
    paths = sorted(p for p in Path(root, "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
    if names:
        unknown = set(names) - {p.stem for p in paths}
        if unknown:
            raise SystemExit(f"no solutions/<lesson>/<lesson>.ipynb for {sorted(unknown)}")
        paths = [p for p in paths if p.stem in names]
    return paths


def sync_notebook(path, *, check: bool = False, repo_url: str | None = _UNSET, branch: str | None = None) -> bool:
    """Make the first code cell of ``path`` the lesson's setup cell: rewrite it if it is tagged
    ``colab-setup``, else insert one before it. Returns whether the notebook changed (or, with
    ``check``, would change; nothing is written then). repo_url, branch: this module's by default."""
    import nbformat  # instructor side only: Colab never runs this

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    source = render_setup_cell(path.stem, repo_url=repo_url, branch=branch)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    tagged = [i for i in code if SETUP_TAG in nb.cells[i].metadata.get("tags", [])]
    if tagged and tagged != code[:1]:
        raise ValueError(f"{path}: the {SETUP_TAG!r} cell must be the first code cell and the only one")
    if tagged:
        cell = nb.cells[tagged[0]]
        if cell.source == source and not cell.outputs and cell.execution_count is None:
            return False
        cell.source, cell.outputs, cell.execution_count = source, [], None
    else:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})
        nb.cells.insert(code[0] if code else len(nb.cells), cell)
    if not check:
        nbformat.write(nb, path)
    return True


def _repository_of(root) -> tuple[str | None, str]:
    """(REPO_URL, BRANCH) of the course at ``root``: its colab.py's, else this module's."""
    return repository(root) if Path(root, "course_lib", "colab.py").is_file() else (REPO_URL, BRANCH)


def out_of_date(root, names=None) -> list[str]:
    """Solution notebooks under ``root`` whose setup cell differs from the template."""
    url, branch = _repository_of(root)
    return [str(p.relative_to(root)) for p in _lessons(Path(root), names)
            if sync_notebook(p, check=True, repo_url=url, branch=branch)]


def colab_url(lesson: str, repo_url: str | None = _UNSET, branch: str | None = None) -> str | None:
    """Colab's address for the student notebook of ``lesson`` in the GitHub repository (None when
    the course is not published on GitHub: Colab opens notebooks from GitHub only)."""
    repo_url = REPO_URL if repo_url is _UNSET else repo_url
    if not repo_url or not repo_url.startswith("https://github.com/"):
        return None
    owner_repo = repo_url.rstrip("/").removesuffix(".git").removeprefix("https://github.com/")
    return (f"https://colab.research.google.com/github/{owner_repo}/blob/{branch or BRANCH}/"
            f"lessons/{lesson}/{lesson}.ipynb")


def readme_links(root) -> str:
    """Markdown lines for the README: each lesson's title with an "Open in Colab" badge (or, before
    the course is published on GitHub, a line that says how to publish it)."""
    import nbformat

    url, branch = _repository_of(root)
    lines = []
    for path in _lessons(Path(root)):
        nb = nbformat.read(path, as_version=4)
        heading = next((line.lstrip("# ").strip() for cell in nb.cells if cell.cell_type == "markdown"
                        for line in cell.source.splitlines() if line.startswith("# ")), path.stem)
        badge = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        link = colab_url(path.stem, url, branch)
        if link is None:
            return ("*Not published yet, so there are no Open-in-Colab links: the course's maintainer runs "
                    "`make publish REPO=https://github.com/OWNER/REPO` once the repository is public.*")
        lines.append(f"- {heading} {badge}({link})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.colab", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="write the setup cell into every solution notebook")
    sync.add_argument("--check", action="store_true", help="only report notebooks that are out of date (exit 1)")
    sync.add_argument("lessons", nargs="*")
    commands.add_parser("cell", help="print one lesson's setup cell").add_argument("lesson")
    commands.add_parser("links", help="print README lines with Open-in-Colab badges")
    pub = commands.add_parser("publish", help="name the public repository everywhere (cells, releases, README)")
    pub.add_argument("url", nargs="?", help="https address of the repository (default: origin, if on GitHub)")
    pub.add_argument("--branch", default="main", help="the branch Colab clones (default: main)")
    pub.add_argument("--no-release", action="store_true", help="leave lessons/ alone (regenerate it later)")
    commands.add_parser("unpublish", help="back to 'not published yet' (cells, releases, README)").add_argument(
        "--no-release", action="store_true", help="leave lessons/ alone (regenerate it later)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    if args.command == "cell":
        print(render_setup_cell(args.lesson, repo_url=repository(root)[0], branch=repository(root)[1]))
    elif args.command == "links":
        print(readme_links(root))
    elif args.command in ("publish", "unpublish"):
        url = "" if args.command == "unpublish" else args.url
        try:
            changed = publish(root, url, getattr(args, "branch", "main"), release=not args.no_release)
        except (ValueError, RuntimeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        where = f"{REPO_URL} (branch {BRANCH})" if REPO_URL else "nowhere: not published yet"
        print(f"the course's repository: {where}; {len(changed)} file(s) written" +
              "".join(f"\n  {c}" for c in changed))
    else:
        changed = [str(p.relative_to(root)) for p in _lessons(root, args.lessons)
                   if sync_notebook(p, check=args.check)]
        verb = "out of date" if args.check else "updated"
        print(f"{len(changed)} notebook(s) {verb}" + "".join(f"\n  {c}" for c in changed))
        if args.check and changed:
            print("run `python -m course_lib.colab sync`, then `python -m course_lib.grading release`")
            return 1
        if changed:
            print("now regenerate the student versions: python -m course_lib.grading release")
    return 0


if __name__ == "__main__":
    sys.exit(main())
