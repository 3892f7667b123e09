# Entry points, each doing its whole set-up on a fresh machine:
#   make render      venv + package, then render everything to build/
#   make test        the same, plus promtool/amtool/prometheus/alertmanager from Debian's
#                    packages, then lint, type check and the whole suite, one worker per core
#   make test-fast   the quick loop: no promtool, no servers, no slow tests (under 90 s)
#   make test-engines every scenario on Prometheus (promtool) and VictoriaMetrics (vmalert
#                    replay), side by side in build/engines/report.md (docs/engines.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT ?= build

.PHONY: render test test-fast test-engines check validate tools clean bench

# The deploy package (repository root) and the development tooling (devtools/, with numpy
# and matplotlib); `pulumi up` needs only the first: pip install .
$(STAMP): pyproject.toml devtools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]' -e ./devtools
	touch $@

tools:
	./scripts/install-tools.sh

validate: $(STAMP)
	$(BIN)/reward-obs validate

render: $(STAMP)
	$(BIN)/reward-obs render --out $(OUT)

# Tests of one module that share a server stay on one worker (xdist_group marks).
PYTEST_PARALLEL := -n auto --dist loadgroup

check: $(STAMP)
	$(BIN)/ruff check stack devtools tests policy
	$(BIN)/mypy

test: $(STAMP) tools check
	$(BIN)/pytest $(PYTEST_PARALLEL)

test-fast: $(STAMP)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not promtool and not live and not slow"

# The whole scenario suite on both engines (tens of minutes; make test runs a subset:
# tests/test_engines.py). Fails if either engine misses a claim of a scenario.
test-engines: $(STAMP) tools
	$(BIN)/reward-obs scenarios --out $(OUT)/engines --engine both --fast --no-plots

# Scale benchmark on a real Prometheus at 1,000 and 10,000 pools with 30 days of history (not a
# test; 67 minutes on an idle 2-core machine, 48 of them at 10,000): writes bench/10000-pools/.
# Measured on Prometheus 3.5 LTS (scripts/install-bench-prometheus.sh), not the tests' 2.42.
bench: $(STAMP) tools
	bin=$$(./scripts/install-bench-prometheus.sh) && PATH="$(CURDIR)/$$bin:$$PATH" nice -n 19 $(BIN)/reward-obs bench --scales 1000 10000 --runs 3 --proposed bench/before-rules.yaml bench/proposed-rules.yaml --out bench/10000-pools

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

# `reward-obs trace` on 1,000,000 generated events, with and without --id: wall time,
# CPU time and peak RSS of each run (not a test; numbers in docs/tracing.md).
.PHONY: bench-trace
bench-trace: $(STAMP)
	$(BIN)/reward-obs trace-bench --events 1000000
