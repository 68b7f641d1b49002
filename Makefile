# make demo:     create .venv when missing, install pedjax with what the demo needs (no TensorFlow,
#                no Jupyter), run the main job (score the shipped zoo with and without PED).
# make test:     install pedjax with its test extras, run every test not marked slow on two
#                workers (pytest-xdist; ≤ 5 min on the 2-core machine).
# make test-all: the same install, every test (slow ones too: training chains, the notebook, TFDS),
#                on two workers.
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

# Both test targets guard against XLA:CPU's intermittent failures (docs/design.md, "A stall in
# XLA:CPU"): a test that hangs is stopped by pytest-timeout, which ends its worker, and a
# test whose worker ends (that, or a crash) is run once more in a new worker (pytest-rerunfailures,
# --only-rerun crashed: a test that fails its assertions is never rerun). Rerunning needs a
# scheduler that can hand a test back: load (the default) or worksteal, never loadfile/loadscope.
RERUN := --timeout-method thread --reruns 1 --only-rerun crashed
test: $(TEST_STAMP) data
	$(PY) -m pytest -q -n 2 -m "not slow" --timeout 900 $(RERUN) tests

# two workers, work stealing: a worker takes a contiguous run of tests, so a module fixture that
# builds a zoo's features or a fidelity table is mostly computed once per file, not once per worker;
# a hung test is stopped after 30 min.
test-all: $(TEST_STAMP) data
	$(PY) -m pytest -q -n 2 --dist worksteal --timeout 1800 $(RERUN) tests

# Fashion-MNIST IDX files (Debian package) for pedjax.data, and the font packages of the glyph and
# emoji tasks (pedjax/data/glyphs.py FONT_PACKAGES, emoji.py FONTS; tests/test_data_domains.py checks
# this list against them); best effort, never fails the build: a task whose source is missing skips.
DOMAIN_PKGS := fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-liberation2 fonts-freefont-ttf \
  fonts-urw-base35 fonts-texgyre fonts-lmodern fonts-noto-core fonts-noto-mono fonts-crosextra-carlito \
  fonts-crosextra-caladea fonts-open-sans fonts-cantarell fonts-linuxlibertine fonts-ebgaramond fonts-gfs-didot \
  fonts-paratype fonts-hack fonts-firacode fonts-sil-gentiumplus fonts-sil-charis fonts-sil-andika fonts-sil-doulos \
  fonts-stix fonts-comic-neue fonts-vollkorn fonts-lato fonts-cabin fonts-quicksand fonts-anonymous-pro fonts-go \
  fonts-jura fonts-tuffy fonts-inconsolata fonts-averia-gwf fonts-adf-accanthis fonts-breip fonts-bwht \
  fonts-dkg-handwriting fonts-femkeklaver fonts-humor-sans fonts-kaushanscript fonts-dancingscript fonts-lobster \
  fonts-leckerli-one fonts-rufscript fonts-kristi fonts-okolaks fonts-apropal \
  fonts-noto-color-emoji fonts-symbola
data:
	@if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) >/dev/null 2>&1 \
	    || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will skip"; \
	else echo "note: not root or no apt-get: apt-get install dataset-fashion-mnist for the Fashion-MNIST tests"; fi
	@missing=$$(for p in $(DOMAIN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get install -y -q --no-install-recommends $$missing || (apt-get update -q && apt-get install -y -q --no-install-recommends $$missing) \
	    || for p in $$missing; do apt-get install -y -q --no-install-recommends $$p || echo "note: could not install $$p" >&2; done) >/dev/null 2>&1; \
	  left=$$(for p in $$missing; do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  [ -z "$$left" ] || echo "note: could not install $$left; the glyph/emoji tasks that need them will skip"; \
	else echo "note: not root or no apt-get: apt-get install $$missing for the glyph and emoji tasks"; fi

demo: $(STAMP) data
	$(VENV)/bin/pedjax demo

bench: $(STAMP)
	$(PY) experiments/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
