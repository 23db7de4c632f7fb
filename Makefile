# A thin layer over the project's own commands; CI runs `make test` (see .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LINTBENCH_INSTALLED := $(VENV)/.installed-lintbench
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: bench bench-quick bench-harness bench-soak test lint bench-lint docs clean knowledge

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[bench,dev]'
	touch $@

$(LINTBENCH_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[bench,dev,lintbench]'
	touch $@

# The main job: every flaw of the sample apps, flawed then fixed, measured and profiled (under 10 minutes on 2 cores).
bench: $(INSTALLED)
	$(BIN)/asyncguard bench --suite sample_apps --out reports/$$(date +%Y%m%d-%H%M%S)

# A first look in under two minutes: each flaw against its first fix, short runs, no profiles.
bench-quick: $(INSTALLED)
	$(BIN)/asyncguard bench --suite sample_apps --first-fix-only --warmup 0.5 --duration 2.5 --no-profile \
		--out reports/quick-$$(date +%Y%m%d-%H%M%S)

# The report's browser test needs Debian's chromium; installed here when it is missing.
test: $(INSTALLED)
	command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null)
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/asyncguard check --python $(BIN)/python asyncguard/

# The harness against wrk on a trivial endpoint (installs Debian's wrk when it is missing), its latency under a
# constant rate against the computed one on a loop that stalls (coordinated omission), which line held the loop on a
# quiet and a CPU-hogged machine, and what measuring the loop costs the app.
bench-harness: $(INSTALLED)
	command -v wrk >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk)
	$(BIN)/python -m asyncguard.bench.calibration --out reports/harness-bench.json --readme README.md
	$(BIN)/python -m asyncguard.bench.omission --out reports/omission-bench.json --readme README.md
	$(BIN)/python -m asyncguard.bench.contention --out reports/contention-bench.json --readme README.md
	$(BIN)/python -m asyncguard.bench.overhead --out reports/overhead-bench.json --readme README.md

# The harness's memory over a 10-minute run at the highest rate this machine drives (a README table).
bench-soak: $(INSTALLED)
	$(BIN)/python -m asyncguard.bench.soak --out reports/soak-bench.json --readme README.md

# Timed as installed from a wheel, with bytecode (an editable install has none, and PYTHONDONTWRITEBYTECODE may
# keep it from being written).
bench-lint: $(LINTBENCH_INSTALLED)
	$(BIN)/python -m compileall -q asyncguard
	$(BIN)/python -m asyncguard.lint.measure.benchmark --out reports/lint-bench.json --readme README.md \
		$(if $(MIRROR),--mirror $(MIRROR))

docs: $(INSTALLED)
	$(BIN)/python -m asyncguard.lint.interface.docs README.md

clean:
	rm -rf $(VENV) .asyncguard_cache .pytest_cache

# The generated knowledge: what the most used libraries' calls do, learned from their sources (downloads from PyPI
# into ~/.cache/asyncguard/learn); older major versions whose APIs differ are learned beside the newest.
OLDER_MAJORS := weaviate-client==3.26.7 elasticsearch==8.15.1 elasticsearch==7.17.12 openai==0.28.1 \
	pinecone-client==2.2.4 pymongo==3.13.0 redis==4.6.0 langchain==0.0.354
# Libraries the 2026-12-02 to 2026-12-04 measurements found services calling that the census did not rank.
SEEN_IN_SERVICES := docker oss2 vercel-blob gspread youtube-transcript-api deep-translator tavily-python \
	python-on-whales pymilvus dlt nltk broadlink langchain-postgres peewee nba_api geoip2 clerk-backend-api ipinfo \
	garminconnect fints openmeteo-requests requests-cache nylas watchdog tinydb dadata xhtml2pdf kafka-python \
	firebase-admin razorpay pywebpush resend imagekitio
knowledge: $(INSTALLED)
	$(BIN)/python -m asyncguard.lint.knowledge.learn --from asyncguard/lint/knowledge/learned/distributions.json \
		$(OLDER_MAJORS) $(SEEN_IN_SERVICES) --report reports/learn-report.json --readme README.md
