# The two commands: `make run` starts the whole connector locally,
# `make test` runs every test. Both install what they need themselves.

VENV      := .venv
VENV_OK   := $(VENV)/.installed
# moto_server with atomic DynamoDB writes (infra/moto_atomic.py says why).
MOTO      := $(VENV)/bin/moto_atomic
PYTHON    ?= python3
CARGO     ?= cargo

.PHONY: run run-sim test lint fmt token sizes clean-venv bench-quota

$(VENV_OK): infra/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

$(MOTO): $(VENV_OK)
	printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' "$(abspath $(VENV))/bin/python" "$(abspath infra/moto_atomic.py)" > $@
	chmod +x $@

run: $(MOTO)
	CONNECTOR_MOTO_SERVER=$(abspath $(MOTO)) $(CARGO) run -p connector-infra --bin local-stack

# `make run` plus the vendor simulator: real vendors' OAuth, data and
# webhooks, locally, with fake app credentials.
run-sim: $(MOTO)
	CONNECTOR_SIMULATOR=1 CONNECTOR_MOTO_SERVER=$(abspath $(MOTO)) $(CARGO) run -p connector-infra --bin local-stack

test: $(MOTO)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) test --workspace --locked

lint: $(VENV_OK)
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

fmt:
	$(CARGO) fmt --all

# Print a dev JWT: make token SUB=alice
token:
	@$(CARGO) run -q -p connector-infra --bin connector-dev -- token $(or $(SUB),alice)

# Stripped release size of every function binary (what Lambda runs).
sizes:
	$(CARGO) build --release -p providers -p connect -p oauth-callback -p webhook -p sync-worker -p token-refresher -p data -p health-push -p account
	@for f in providers connect oauth-callback webhook sync-worker token-refresher data health-push account; do \
		printf '%-16s %s\n' $$f "$$(du -h target/release/$$f | cut -f1)"; done

clean-venv:
	rm -rf $(VENV)

# Fleet-quota benchmark: 10 workers, a WHOOP backlog, the simulator
# enforcing QUOTA (limit/seconds); prints quota share, 429s, live waits.
bench-quota: $(MOTO)
	QUOTA=$(or $(QUOTA),60/3) SECS=$(or $(SECS),30) $(VENV)/bin/python infra/with_emulator.py $(MOTO) $(CARGO) run -q -p connector-infra --example quota_bench
