# make test: create .venv when missing, install pedjax with its test extras, run the suite.
# make demo: run the main job (score a real zoo, with and without PED, print the ranking).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pedjax-installed

.PHONY: test demo bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	$(VENV)/bin/pedjax demo

bench: $(STAMP)
	$(PY) experiments/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
