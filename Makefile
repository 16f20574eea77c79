# The README's two commands: `make demo` and `make test`. Each creates .venv if missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.smite-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first when there is no GPU: a plain `torch` would pull a multi-GB CUDA build.
	command -v nvidia-smi >/dev/null 2>&1 || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,farm]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/smite demo --out demo_out

# Lint first: a style error fails in a second, not after the suite. Two workers (tests/conftest.py groups them):
# while one runs the model-heavy tests, the other fills the time its subprocesses spend starting up.
test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 tests

# The whole repo (ruff skips what .gitignore lists, such as the venvs).
lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/learn.py

clean:
	rm -rf $(VENV) demo_out

# --- Blender (issue 11): one venv per real bpy wheel, plus the add-on's wheels, cached for offline tests -----
# bpy 4.x/5.0 are cp311-only and pin numpy<2, bpy 5.1+ is cp313-only: never install bpy into .venv.
PY311 ?= $(firstword $(wildcard /root/.pyenv/versions/3.11*/bin/python3.11) python3.11)
PY313 ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13) python3.13)
BPY_CP311 := 4.5.15 5.0.1
BPY_CP313 := 5.3.0
BPY_STAMPS := $(foreach v,$(BPY_CP311) $(BPY_CP313),.venv-bpy-$(v)/.smite-installed)
BLENDER_WHEELS := .cache/blender-wheels
BLENDER_WHEELS_STAMP := $(BLENDER_WHEELS)/.smite-downloaded

.PHONY: bpy-venvs blender-wheels

bpy-venvs: $(BPY_STAMPS) $(BLENDER_WHEELS_STAMP)

test: bpy-venvs  # tests/blender runs the add-on in real Blender

blender-wheels: $(BLENDER_WHEELS_STAMP)

$(foreach v,$(BPY_CP311),.venv-bpy-$(v)/.smite-installed): PYBIN = $(PY311)
$(foreach v,$(BPY_CP313),.venv-bpy-$(v)/.smite-installed): PYBIN = $(PY313)
.venv-bpy-%/.smite-installed:
	test -x .venv-bpy-$*/bin/python || $(PYBIN) -m venv .venv-bpy-$*
	.venv-bpy-$*/bin/python -m pip install -q --upgrade pip
	.venv-bpy-$*/bin/python -m pip install -q bpy==$* pyzmq msgpack
	touch $@

# The wheels the extension bundles (pyzmq, msgpack for cp311/cp313 on six platforms): `smite
# build-blender-extension --wheels $(BLENDER_WHEELS)` then builds without the network.
$(BLENDER_WHEELS_STAMP): | $(STAMP)
	$(VENV)/bin/smite build-blender-extension --download-only --wheels $(BLENDER_WHEELS)
	touch $@

# --- Nuke (issue 10): pyzmq + msgpack wheels for this Python and OS, cached so the `smite install-nuke` test
# runs offline (`pip download` here, during set-up; the test reads them with --no-index).
NUKE_WHEELS := $(VENV)/nuke-wheels
NUKE_WHEELS_STAMP := $(NUKE_WHEELS)/.smite-downloaded

.PHONY: nuke-wheels
nuke-wheels: $(NUKE_WHEELS_STAMP)
test: $(NUKE_WHEELS_STAMP)

$(NUKE_WHEELS_STAMP): $(STAMP)
	$(PY) -c "import sys; from pathlib import Path; from smite.hosts import nuke_install as n; \
	n.download_wheels(Path('$(NUKE_WHEELS)'), '%d.%d' % sys.version_info[:2], n._this_platform())"
	touch $@
