# The two commands: `make run` starts the whole connector locally,
# `make test` runs every test. Both install what they need themselves.

VENV      := .venv
VENV_OK   := $(VENV)/.installed
# moto_server with atomic DynamoDB writes (infra/moto_atomic.py says why).
MOTO      := $(VENV)/bin/moto_atomic
PYTHON    ?= python3
CARGO     ?= cargo

.PHONY: run run-sim test browser vendor-check vendor-update bench-init bench-memory bench-calls bench-cost lint fmt token openapi sizes sam-build clean-venv bench-quota bench-erase fuzz fuzz-smoke fuzz-lint

comma := ,

# cargo fuzz, installed into the project. It needs nightly compiler flags
# (coverage instrumentation); RUSTC_BOOTSTRAP lets the stable toolchain
# take them, so no nightly is installed.
CARGO_FUZZ   := .tools/bin/cargo-fuzz
FUZZ         := RUSTC_BOOTSTRAP=1 $(abspath $(CARGO_FUZZ))
FUZZ_TARGETS := $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
# Inputs each target runs in `make test` (seeds first, then mutations).
FUZZ_RUNS    ?= 10000
# A debug build without a sanitizer: the AWS SDK under coverage
# instrumentation builds in ~4.5 min that way, ~14 in release with the address
# sanitizer (FUZZ_BUILD="-s address").
FUZZ_BUILD   ?= --dev -s none

# SAM's own check of the template (its transform, then cfn-lint): offline,
# with no AWS credentials or telemetry.
SAM_VALIDATE := SAM_CLI_TELEMETRY=0 AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= $(VENV)/bin/sam validate --lint --template template.yaml --region us-east-1

$(VENV_OK): infra/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

$(MOTO): $(VENV_OK)
	printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' "$(abspath $(VENV))/bin/python" "$(abspath infra/moto_atomic.py)" > $@
	chmod +x $@

# Headless Chromium for the browser tests: Debian's packages, installed
# once (as root, or through sudo) when the machine has none.
CHROMIUM  ?= /usr/bin/chromium
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "no $(CHROMIUM): install Chromium and ChromeDriver, or set CHROMIUM to one"; exit 1; }
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

browser: $(CHROMIUM)

run: $(MOTO)
	CONNECTOR_MOTO_SERVER=$(abspath $(MOTO)) $(CARGO) run -p connector-infra --bin local-stack

# `make run` plus the vendor simulator: real vendors' OAuth, data and
# webhooks, locally, with fake app credentials.
run-sim: $(MOTO)
	CONNECTOR_SIMULATOR=1 CONNECTOR_MOTO_SERVER=$(abspath $(MOTO)) $(CARGO) run -p connector-infra --bin local-stack

test: $(MOTO) $(CHROMIUM)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p connector-core --no-deps --features http --locked
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_VALIDATE)
	@[ -d "$${CONNECTOR_VENDOR_SPECS:-../shared/vendor-specs}" ] || echo "vendor conformance will not run: no ../shared/vendor-specs nor CONNECTOR_VENDOR_SPECS (the vendors' published API descriptions; sources in README, Vendor conformance)"
	CONNECTOR_CHROMIUM=$(CHROMIUM) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) test --workspace --locked
	$(MAKE) fuzz-lint fuzz-smoke

lint: $(VENV_OK)
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_VALIDATE)

fmt:
	$(CARGO) fmt --all

# Print a dev JWT: make token SUB=alice
token:
	@$(CARGO) run -q -p connector-infra --bin connector-dev -- token $(or $(SUB),alice)

# The API's OpenAPI description, generated from the handlers' annotations
# into the file the api-docs function serves (a test fails when they differ).
openapi:
	$(CARGO) run -q -p connector-infra --bin connector-dev -- openapi > docs/openapi.json.new
	mv docs/openapi.json.new docs/openapi.json

# Stripped release size of every function binary (what Lambda runs).
FUNCTIONS := providers connect oauth-callback webhook sync-worker token-refresher data health-push account api-docs status app-events pages
sizes:
	$(CARGO) build --release $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do \
		printf '%-16s %s\n' $$f "$$(du -h target/release/$$f | cut -f1)"; done

# `sam build` as a deploy runs it (rust-cargolambda: cargo-lambda with zig,
# arm64, release), then each function's bootstrap size. Not part of
# `make test`: thirteen LTO release builds take long on two cores.
SAM_BUILD_OK := $(VENV)/.sam-build-installed
$(SAM_BUILD_OK): $(VENV_OK) infra/requirements-build.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-build.txt
	touch $@

sam-build: $(SAM_BUILD_OK)
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(abspath $(VENV))/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= $(VENV)/bin/sam build --template template.yaml
	@for f in .aws-sam/build/*/bootstrap; do \
		printf '%-26s %s bytes, %s\n' "$$(basename $$(dirname $$f))" "$$(stat -c %s $$f)" "$$(file -b $$f | cut -d, -f1-2)"; done

# The pages' charting library, vendored from npm (functions/pages/assets/vendor):
# vendor-check compares the files with the registry's package, vendor-update
# copies them from it.
UPLOT        := uplot@1.6.32
UPLOT_VENDOR := $(abspath functions/pages/assets/vendor)
UPLOT_FILES  := uPlot.iife.min.js uPlot.min.css
vendor-check vendor-update:
	@set -e; tmp=$$(mktemp -d); cd $$tmp; npm pack --silent $(UPLOT) >/dev/null; tar xzf *.tgz; \
	for f in $(UPLOT_FILES); do \
		if [ $@ = vendor-update ]; then cp package/dist/$$f $(UPLOT_VENDOR)/$$f; cp package/LICENSE $(UPLOT_VENDOR)/LICENSE-uPlot; fi; \
		cmp package/dist/$$f $(UPLOT_VENDOR)/$$f; sha256sum $(UPLOT_VENDOR)/$$f | sed "s|$(UPLOT_VENDOR)/||"; \
	done; rm -rf $$tmp; echo "vendored files are $(UPLOT)'s"

clean-venv:
	rm -rf $(VENV)

# Start-up benchmark: every function binary and two references (a lambda_http
# hello-world, and one that also builds the AWS SDK clients at init), built
# in one release build; ROUNDS interleaved cold starts each under the local
# Runtime API; prints size, init, ratios, peak memory and first request.
# ONLY=webhook,data measures (and builds) those functions alone;
# BASELINE=dir runs the binaries in dir too (another commit's release build).
bench-init: $(MOTO)
	$(CARGO) build --release --locked $(addprefix -p ,$(or $(subst $(comma), ,$(ONLY)),$(FUNCTIONS))) -p init-references
	ONLY=$(ONLY) BASELINE=$(BASELINE) ROUNDS=$(or $(ROUNDS),9) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) run -q -p connector-infra --example init_bench

# Memory sizes (issue 19, goal 5): the functions' release binaries serve
# the connect, webhook, sync, push, read and erasure paths; prints each
# one's warm duration and CPU time, its estimated duration at 128 and 256
# MB, and the size that follows (ROUNDS=, CPU_SCALE=, LATENCY_MS= to vary it).
bench-memory: $(MOTO)
	$(CARGO) build --release --locked $(addprefix -p ,$(FUNCTIONS))
	CONNECTOR_BINARY_PROFILE=release ROUNDS=$(or $(ROUNDS),10) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) run -q -p connector-infra --example memory_bench

# Erasure benchmark: a user with SAMPLES (default 200,000) samples deleted
# through DELETE /v1/me and the worker steps; prints times against the
# functions' limits and peak memory.
bench-erase: $(MOTO)
	SAMPLES=$(or $(SAMPLES),200000) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) run -q -p connector-infra --example erase_bench

# Fleet-quota benchmark: 10 workers, a WHOOP backlog, the simulator
# enforcing QUOTA (limit/seconds); prints quota share, 429s, live waits.
bench-quota: $(MOTO)
	QUOTA=$(or $(QUOTA),60/3) SECS=$(or $(SECS),30) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) run -q -p connector-infra --example quota_bench

# AWS calls benchmark: each function's SDK clients counted on the local
# stack and the simulator; prints the calls per webhook, notice, sync job
# and request, by operation, averaged over ROUNDS.
bench-calls: $(MOTO)
	ROUNDS=$(or $(ROUNDS),10) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) run -q -p connector-infra --example calls_bench

# Cost per million webhooks, syncs, pushes and API reads at AWS list
# prices (PRICE_*=, VENDOR_MS=, USERS= and the other scenario figures
# to vary them).
bench-cost: $(MOTO)
	ROUNDS=$(or $(ROUNDS),10) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) run -q -p connector-infra --example cost_bench

$(CARGO_FUZZ):
	$(CARGO) install --locked --quiet --root .tools cargo-fuzz --version 0.13.2

# The fuzz crate is outside the workspace: lint it on the workspace's
# target dir (same lock versions, so nothing is built twice).
fuzz-lint:
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check
	CARGO_TARGET_DIR=$(abspath target) $(CARGO) clippy --manifest-path fuzz/Cargo.toml --bins --locked -- -D warnings

# Every fuzz target on its seeds plus FUZZ_RUNS mutations, with a fixed
# seed and a fresh corpus: the same inputs on every machine.
fuzz-smoke: $(CARGO_FUZZ)
	$(FUZZ) build --fuzz-dir fuzz $(FUZZ_BUILD) || { df -h . /tmp; free -m; exit 1; }
	@set -e; for t in $(FUZZ_TARGETS); do \
		corpus=$$(mktemp -d); \
		$(FUZZ) run --fuzz-dir fuzz $(FUZZ_BUILD) $$t $$corpus fuzz/seeds/$$t -- \
			-runs=$(FUZZ_RUNS) -seed=1 -timeout=10 > $$corpus.log 2>&1 \
			|| { tail -60 $$corpus.log; echo "fuzz target $$t failed (input in fuzz/artifacts/$$t)"; exit 1; }; \
		printf '%-18s %s\n' $$t "$$(grep -E '^#[0-9]+.*(DONE|pulse|INITED)' $$corpus.log | tail -1)"; \
		rm -rf $$corpus $$corpus.log; \
	done

# The long run of one target, growing its corpus in fuzz/corpus/TARGET:
# make fuzz TARGET=webhook_whoop SECS=600
fuzz: $(CARGO_FUZZ)
	mkdir -p fuzz/corpus/$(TARGET)
	$(FUZZ) run --fuzz-dir fuzz $(FUZZ_BUILD) $(TARGET) fuzz/corpus/$(TARGET) fuzz/seeds/$(TARGET) -- \
		-max_total_time=$(or $(SECS),600) -timeout=10 -print_final_stats=1
