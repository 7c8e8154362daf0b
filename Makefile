# libmillis — build, test, demo, install.  `make help` lists the targets.
SHELL := /bin/bash
VERSION   := 0.1.0
SOVERSION := 0
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
PYTHON    ?= python3
SWIFT     ?= swift
BUILD     := $(CURDIR)/build

# Release: Swift runtime linked in statically, only millis_* exported, SONAME set.
RELEASE_FLAGS := -c release -Xswiftc -static-stdlib -Xswiftc -use-ld=lld \
	-Xlinker --version-script=$(CURDIR)/Sources/CMillis/millis.map \
	-Xlinker -soname=libmillis.so.$(SOVERSION)

APT_PACKAGES := gcc g++ libcurl4-openssl-dev pkg-config espeak-ng sox python3 python3-pip \
	libasound2-dev libspeexdsp-dev alsa-utils pulseaudio pulseaudio-utils libasound2-plugins
PIP_PACKAGES := websockets pytest cryptography numpy

.PHONY: help build deps unit-test abi-test c-test python-test test demo devserver clean
help:
	@echo "make demo       build, start the devserver, hold a conversation with the C example"
	@echo "make test       the whole suite: Swift unit tests, C ABI tests, Python tests"
	@echo "make build      build/libmillis.so + build/pkgconfig/millis.pc"
	@echo "make devserver  run the local Millis-compatible server on ws://127.0.0.1:8765/millis"

# Installs what is missing (as root) or says exactly what to install.
deps:
	@$(CURDIR)/.ci/deps.sh $(APT_PACKAGES) -- $(PIP_PACKAGES)

build: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product millis
	@mkdir -p $(BUILD)/pkgconfig $(BUILD)/pkgconfig-install
	@# Replaced by rename, never rewritten in place: a process that has it loaded keeps
	@# its copy instead of crashing on the new bytes.
	cp -f .build/release/libmillis.so $(BUILD)/.libmillis.so.new && mv -f $(BUILD)/.libmillis.so.new $(BUILD)/libmillis.so.$(VERSION)
	ln -sf libmillis.so.$(VERSION) $(BUILD)/libmillis.so.$(SOVERSION)
	ln -sf libmillis.so.$(SOVERSION) $(BUILD)/libmillis.so
	sed -e 's|@PREFIX@|$(CURDIR)|; s|@LIBDIR@|$(BUILD)|; s|@INCLUDEDIR@|$(CURDIR)/include|' \
	    -e 's|@VERSION@|$(VERSION)|; s|@RPATH@|-Wl,-rpath,$${libdir} |' \
	    pkgconfig/millis.pc.in > $(BUILD)/pkgconfig/millis.pc
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|; s|@RPATH@||' \
	    pkgconfig/millis.pc.in > $(BUILD)/pkgconfig-install/millis.pc

# The whole suite. Each part can be run alone.
test: build unit-test abi-test python-test fuzz-smoke sanitize

unit-test: deps
	$(SWIFT) test

abi-test: build
	$(PYTHON) Tests/abi/check_exports.py $(BUILD)/libmillis.so include/millis.h

# The pytest suite also compiles and runs the C programs (Tests/c, bindings/c) through
# pkg-config, against the devserver it starts.
python-test: build
	$(PYTHON) -m pytest -q -ra Tests/python

# A conversation with the C example: against the devserver, or against Millis itself
# when MILLIS_PUBLIC_KEY and MILLIS_AGENT_ID are set.
demo: build
	@PYTHON=$(PYTHON) $(CURDIR)/scripts/demo.sh

devserver: deps
	$(PYTHON) devserver/millis_devserver.py --host 127.0.0.1 --port 8765

clean:
	rm -rf .build $(BUILD)

# Device-audio figures (ERLE, barge-in, capture -> wire) with medians, on the paced
# PulseAudio echo loop (README "Audio").
.PHONY: bench-audio
bench-audio: build
	$(PYTHON) bench/audio/audio_bench.py --runs 5 --json $(BUILD)/bench-audio.json

# ------------------------------------------------------------------------------------
# Fuzzing (libFuzzer + ASan, Fuzz/README.md) and sanitizers (Tests/sanitizers/README.md).
FUZZ_SECONDS ?= 600
FUZZ_RUNS    ?= 100000
.PHONY: fuzz-build fuzz-smoke fuzz sanitize sanitize-asan sanitize-tsan

# build/fuzz/websocket and build/fuzz/server_message (swiftc -sanitize=fuzzer,address).
fuzz-build: deps
	nice $(CURDIR)/Fuzz/build.sh

# Bounded and deterministic (seed 1, FUZZ_RUNS inputs per target) over Fuzz/corpus,
# after replaying Fuzz/regressions; fails on any crash, hang, leak or memory blow-up.
fuzz-smoke: fuzz-build
	FUZZ_RUNS=$(FUZZ_RUNS) $(CURDIR)/Fuzz/run.sh smoke

# FUZZ_SECONDS per target, growing build/fuzz/corpus/<target> (outside git).
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CURDIR)/Fuzz/run.sh long

# The C tests and the Python suite against ASan+UBSan and TSan builds of the library.
sanitize: sanitize-asan sanitize-tsan

sanitize-asan: deps
	$(PYTHON) Tests/sanitizers/sanitize.py asan

sanitize-tsan: deps
	$(PYTHON) Tests/sanitizers/sanitize.py tsan
