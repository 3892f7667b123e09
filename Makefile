# Two entry points, each doing its whole set-up on a fresh machine:
#   make render   venv + package, then render everything to build/
#   make test     the same, plus promtool/amtool from Debian's packages, then pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT ?= build

.PHONY: render test validate tools clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

tools:
	./scripts/install-tools.sh

validate: $(STAMP)
	$(BIN)/reward-obs validate

render: $(STAMP)
	$(BIN)/reward-obs render --out $(OUT)

test: $(STAMP) tools
	$(BIN)/pytest

# Scale benchmark on a real Prometheus (minutes; not a test): writes bench/RESULTS.md.
bench: $(STAMP) tools
	$(BIN)/reward-obs bench --out bench

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

# `reward-obs trace` on 1,000,000 generated events, with and without --id: wall time,
# CPU time and peak RSS of each run (not a test; numbers in docs/tracing.md).
.PHONY: bench-trace
bench-trace: $(STAMP)
	$(BIN)/reward-obs trace bench --events 1000000
