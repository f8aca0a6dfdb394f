# vcops: `make demo` and `make test` each do all their own set-up on a fresh
# Debian 12 machine, as root, idempotently (apt packages, the virtualenv, the lab image).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := debootstrap systemd-container openssh-client iproute2 nftables git ca-certificates python3-venv postgresql redis-server chromium chromium-driver poppler-utils
STAMP := $(VENV)/.vcops-installed

.PHONY: help demo test lint typecheck unit integration molecule apt venv lab-image clean

help:
	@echo "make demo   - lab up, inventory check, an SSH round to every lab host and switch, lab down"
	@echo "make test   - ruff, mypy --strict, unit and integration tests in two lanes (the lab needs root)"

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make: need root to install$$missing (sudo make ...)"; exit 2; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | apt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# fake-switches pins an old Twisted that no longer builds: install it without its pins.
	$(BIN)/python -m pip install -q --no-deps 'fake-switches==1.5.0'
	touch $@

venv: $(STAMP)

lab-image: venv
	$(BIN)/vcops lab image

lint: venv
	$(BIN)/ruff check src tests plugins deploys bench
	$(BIN)/ruff format --check src tests plugins deploys bench
	$(BIN)/ansible-lint --offline --profile production roles deploys/site.yml molecule

typecheck: venv
	$(BIN)/mypy src

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv lab-image
	$(BIN)/pytest -q tests/integration

# Stand-alone Molecule run: its own lab, so it takes the machine-wide lab lock for the
# whole sequence (`make test` runs the scenario on the session lab instead).
molecule: venv lab-image
	flock /run/vcops-lab-tests.lock env PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule test

# Two lanes at once (scripts/test.sh): lint, mypy and the tests without the lab beside
# the lab's own tests; the lab lifecycle module runs alone before the shared lab.
test: venv lab-image
	./scripts/test.sh

demo: venv lab-image
	./scripts/demo.sh

clean:
	-$(BIN)/vcops lab down
	rm -rf $(VENV) .vcops .pytest_cache .mypy_cache .ruff_cache inventory/lab
