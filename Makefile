# make demo:     create .venv when missing, install pedjax with what the demo needs (no TensorFlow,
#                no Jupyter), run the main job (score the shipped zoo with and without PED).
# make test:     install pedjax with its test extras, run every test not marked slow on two
#                workers (pytest-xdist; ≤ 5 min on the 2-core machine).
# make test-all: the same install, every test (slow ones too: training chains, the notebook, TFDS).
# make lint:     ruff and mypy over pedjax/ (pyproject.toml), zero findings.
# make docs:     the documentation site (docs/*.md + the API reference from the docstrings) in strict
#                mode: a broken link or reference fails it. Output in site/.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pedjax-installed
TEST_STAMP := $(VENV)/.pedjax-test-installed

DOCS_STAMP := $(VENV)/.pedjax-docs-installed
LINT_STAMP := $(VENV)/.pedjax-lint-installed

.PHONY: test test-all demo bench install install-test clean data docs lint

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

$(LINT_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[lint]'
	touch $(LINT_STAMP)

# ruff (lint + import order) and mypy (basic) over pedjax/, configured in pyproject.toml: zero findings
lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check pedjax
	$(VENV)/bin/mypy

docs: $(DOCS_STAMP)
	$(VENV)/bin/mkdocs build --strict

install: $(STAMP)

install-test: $(TEST_STAMP)

test: $(TEST_STAMP) data
	$(PY) -m pytest -q -n 2 -m "not slow" tests

test-all: $(TEST_STAMP) data
	$(PY) -m pytest -q tests

# Fashion-MNIST IDX files (Debian package) for pedjax.data; best effort, never fails the build.
data:
	@if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) >/dev/null 2>&1 \
	    || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will skip"; \
	else echo "note: not root or no apt-get: apt-get install dataset-fashion-mnist for the Fashion-MNIST tests"; fi

demo: $(STAMP) data
	$(VENV)/bin/pedjax demo

bench: $(STAMP)
	$(PY) experiments/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
