# Diffusion Soundtracks: one command per job. Each target sets up .venv first if needed.
#   make demo   set up, then generate music from the bundled checkpoint into out/demo
#   make test   set up (Python and system packages), then run the whole test suite
#   make lab    set up, then open JupyterLab on lessons/
#   make release  regenerate lessons/ from solutions/ with nbgrader (instructors)
#   make publish REPO=https://github.com/OWNER/REPO [BRANCH=main]  name the public repository in every
#                 lesson's Colab setup cell, the releases and the README's Open-in-Colab links
#   make bench  print the speed and quality figures (sampling, model quality, control, guided tasks,
#               soundtrack, long-form pieces)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The CPU build of torch, installed first and pinned: a looser requirement makes pip fetch the
# newest CUDA build (several GB). The package itself keeps a loose torch requirement (Colab).
TORCH  ?= torch==2.13.0

.PHONY: setup system-deps demo test test-fast lab release publish data bench train clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,audio]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	@touch $(STAMP)

# FluidSynth (audio) and Chromium (browser test) from Debian; skipped when already there.
system-deps:
	@bash scripts/system-deps.sh

demo: setup
	$(PY) -m course_lib demo --out out/demo

test: setup system-deps
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not notebooks and not browser"

lab: setup
	$(PY) -m jupyter lab lessons/

release: setup
	$(PY) -m course_lib.grading release

# REPO left out: `git remote get-url origin`, when that is a GitHub address.
publish: setup
	$(PY) -m course_lib.colab publish $(REPO) --branch $(or $(BRANCH),main)

data: setup
	$(PY) -m course_lib prepare-data

bench: setup
	$(PY) -m course_lib bench --threads 1
	$(PY) benchmarks/model_quality.py --old-from-git
	$(PY) benchmarks/control.py
	$(PY) benchmarks/guided_tasks.py
	$(PY) benchmarks/soundtrack.py
	$(PY) benchmarks/longform.py

clean:
	rm -rf out submitted autograded feedback gradebook.db test-artifacts
