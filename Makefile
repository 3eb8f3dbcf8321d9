# Tabula: one entry point for set-up, build, tests, demo and benchmarks.
# Everything here runs as root on a Debian 12 host (libvirt, netns, nftables).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
BUILD ?= $(CURDIR)/build
export TABULA_BUILD := $(BUILD)

.PHONY: setup host-packages build lint typecheck test test-unit test-integration demo bench daemons daemons-down golden clean images image-host image-test bench-images flash

## setup: install what is missing (apt packages, npm packages, the test golden image); fast when all is there
setup: host-packages node_modules/.installed golden build

host-packages:
	@bash ci/setup-host.sh

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

golden:
	@bash image/test-golden/build.sh

SOURCES := $(shell find supervisor/src -name '*.ts') supervisor/tsconfig.json $(wildcard supervisor/admin-web/*)
AGENT_SOURCES := $(shell find kiosk-overlay/agent/src -name '*.ts') kiosk-overlay/agent/tsconfig.json

build: supervisor/dist/.built kiosk-overlay/agent/dist/.built

supervisor/dist/.built: node_modules/.installed $(SOURCES)
	npx tsc -p supervisor/tsconfig.json
	@# The admin page's files travel with the compiled code (the server image copies dist/).
	rm -rf supervisor/dist/admin-web && cp -r supervisor/admin-web supervisor/dist/admin-web
	@touch $@

kiosk-overlay/agent/dist/.built: node_modules/.installed $(AGENT_SOURCES)
	npx tsc -p kiosk-overlay/agent/tsconfig.json
	@touch $@

daemons:
	@bash ci/daemons.sh up

daemons-down:
	@bash ci/daemons.sh down

typecheck: node_modules/.installed
	npx tsc -p supervisor/test/tsconfig.json --noEmit
	npx tsc -p kiosk-overlay/agent/test/tsconfig.json --noEmit

lint: node_modules/.installed typecheck
	npx eslint supervisor kiosk-overlay/agent

## test: unit + integration tiers against the real daemons
test: setup lint daemons
	@bash ci/run-tests.sh unit integration

test-unit: node_modules/.installed
	@bash ci/run-tests.sh unit

test-integration: setup daemons
	@bash ci/run-tests.sh integration

## demo: a pool of 2 on the test golden image, until Ctrl-C
demo: setup daemons
	@bash ci/demo.sh

## bench: clone-to-clean and recycle times, supervisor memory, station hand-off latency
bench: setup daemons
	@node supervisor/dist/bench/pool-bench.js
	@node supervisor/dist/bench/handoff-bench.js

## images: the kiosk SD card and the server USB stick images (build/images/tabula-{kiosk,server}.img, .sha256, .manifest); docs/images.md
image-host:
	@bash image/setup-build-host.sh

images: image-host build
	@bash image/kiosk/build.sh
	@bash image/server/build.sh

## image-test: boots the images in QEMU (the kiosk also on a supervisor's station LAN), checks make flash, and that two clean builds are identical (long)
image-test: images daemons golden
	@bash image/kiosk/boot-test.sh
	@bash image/kiosk/lan-test.sh
	@bash image/server/boot-test.sh
	@bash image/flash-test.sh
	@bash image/repro-check.sh kiosk
	@bash image/repro-check.sh server

## bench-images: image sizes and build times
bench-images: image-host build
	@bash image/bench.sh

## flash: make flash DEV=/dev/sdX IMAGE=build/images/tabula-kiosk.img
flash:
	@bash image/flash.sh "$(DEV)" "$(IMAGE)"

clean:
	rm -rf supervisor/dist kiosk-overlay/agent/dist $(BUILD)
