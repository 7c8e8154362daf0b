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
	libspeexdsp-dev libopus-dev libopusenc-dev libopusfile-dev libogg-dev
# The devserver (make devserver, make demo).
DEVSERVER_APT_PACKAGES := python3 python3-pip
DEVSERVER_PIP_PACKAGES := websockets
# The test bed (make test, the benchmark): speech, a private PulseAudio and ALSA's
# plugins, Ogg tools, tmux for the CLI's terminal tests, pytest and the analysis stack.
TEST_APT_PACKAGES := $(DEVSERVER_APT_PACKAGES) g++ espeak-ng sox alsa-utils pulseaudio \
	pulseaudio-utils libasound2-plugins opus-tools tmux python3-setuptools python3-wheel \
	python3-venv libssl-dev openssl
TEST_PIP_PACKAGES := $(DEVSERVER_PIP_PACKAGES) pytest cryptography numpy scipy matplotlib mypy

.PHONY: help build deps devserver-deps test-deps unit-test abi-test c-test python-test test demo devserver clean \
	install uninstall bench
help:
	@echo "make demo       build, start the devserver, hold a conversation with the C example"
	@echo "make test       the whole suite: Swift unit tests, C ABI tests, Python tests"
	@echo "make build      build/libmillis.so + build/pkgconfig/millis.pc (installs only build dependencies)"
	@echo "make test-deps  the test bed: PulseAudio, espeak-ng, sox, pytest, numpy, ... (make test calls it)"
	@echo "make devserver  run the local Millis-compatible server on ws://127.0.0.1:8765/millis"
	@echo "make bench      the benchmark (bench/README.md): tables, build/bench/results.json, scale.png"
	@echo "                (about 25 min; BENCH_ARGS=--quick for a short check, BENCH_ARGS='--only scale')"
	@echo "make bench-profile  where the CPU goes (perf): libmillis, the floor and the Python peer"
	@echo "make install    install into PREFIX (default /usr/local; also DESTDIR, LIBDIR, BINDIR, PYTHONDIR, ...)"
	@echo "make uninstall  remove what make install installed (same variables)"

# Each installs what is missing (as root) or says exactly what to install.
deps:
	@$(CURDIR)/.ci/deps.sh $(BUILD_APT_PACKAGES) --

devserver-deps:
	@$(CURDIR)/.ci/deps.sh $(DEVSERVER_APT_PACKAGES) -- $(DEVSERVER_PIP_PACKAGES)

test-deps: deps
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

# Device-audio figures (ERLE, barge-in, capture -> wire) with medians, on the paced
# PulseAudio echo loop (README "Audio").
.PHONY: bench-audio
bench-audio: build test-deps
	$(PYTHON) bench/audio/audio_bench.py --runs 5 --json $(BUILD)/bench-audio.json

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
# Install (README "Install"): the library with its SONAME links, millis.h, millis.pc,
# the CLI, the devserver and the Python package, into PREFIX (under DESTDIR when staging
# a package). Every path written, and every directory created, is listed in
# $(DATADIR)/millis/install-manifest.txt (without DESTDIR), which `make uninstall` (same
# variables) reads. INSTALL_CLI=no leaves the CLI out (a tree without tools/millis).
BINDIR        ?= $(PREFIX)/bin
DATADIR       ?= $(PREFIX)/share
PKGCONFIGDIR  ?= $(LIBDIR)/pkgconfig
INSTALL_CLI   ?= yes
LDCONFIG      ?= ldconfig
# The interpreter PYTHONDIR is computed for: Debian's own python3, not a pyenv or venv
# one that comes first on PATH (their sys.path holds no directory of PREFIX).
SYSTEM_PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
# Where the `millis` package goes. With Debian's python3, the directory it searches for
# PREFIX: /usr/local -> /usr/local/lib/python3.X/dist-packages, /usr ->
# /usr/lib/python3/dist-packages, any other PREFIX -> PREFIX/lib/python3.X/dist-packages
# (for PYTHONPATH). With another python3, sysconfig's site-packages of PREFIX.
# Computed once, on first use.
PYTHONDIR_SCRIPT := import sys, sysconfig as sc; p = sys.argv[1].rstrip("/") or "/"; \
	v = "%d.%d" % sys.version_info[:2]; \
	print(("/usr/lib/python3/dist-packages" if p == "/usr" else p + "/lib/python" + v + "/dist-packages") \
	      if "deb_system" in sc.get_scheme_names() \
	      else sc.get_path("purelib", "posix_prefix", vars={"base": p, "platbase": p}))
PYTHONDIR ?= $(eval PYTHONDIR := $(shell $(SYSTEM_PYTHON) -c '$(PYTHONDIR_SCRIPT)' '$(PREFIX)'))$(PYTHONDIR)

MILLIS_DATADIR    = $(DATADIR)/millis
INSTALL_MANIFEST  = $(MILLIS_DATADIR)/install-manifest.txt
INSTALL_STAGE     = $(BUILD)/install
# The CLI relinked for installation, its run path LIBDIR as seen from BINDIR ($ORIGIN/../lib).
CLI_INSTALL       = $(BUILD)/millis-install
CLI_LIBREL        = $(shell realpath -m --relative-to='$(BINDIR)' '$(LIBDIR)')
PY_SOURCES        = $(shell cd bindings/python && find millis -name '*.py' -not -path '*/__pycache__/*' | LC_ALL=C sort)
DEVSERVER_SOURCES = devserver/millis_devserver.py devserver/README.md \
	$(shell find devserver/scripts -maxdepth 1 -type f | LC_ALL=C sort)
INSTALLED_FILES   = $(LIBDIR)/libmillis.so.$(VERSION) $(LIBDIR)/libmillis.so.$(SOVERSION) \
	$(LIBDIR)/libmillis.so $(INCDIR)/millis.h $(PKGCONFIGDIR)/millis.pc \
	$(if $(filter yes,$(INSTALL_CLI)),$(BINDIR)/millis) \
	$(addprefix $(MILLIS_DATADIR)/,$(DEVSERVER_SOURCES)) $(addprefix $(PYTHONDIR)/,$(PY_SOURCES))
INSTALL_DIRS      = $(LIBDIR) $(INCDIR) $(PKGCONFIGDIR) $(if $(filter yes,$(INSTALL_CLI)),$(BINDIR)) \
	$(MILLIS_DATADIR) $(sort $(patsubst %/,%,$(dir $(addprefix $(MILLIS_DATADIR)/,$(DEVSERVER_SOURCES)) \
	$(addprefix $(PYTHONDIR)/,$(PY_SOURCES)))))

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
	@[ -n "$(PYTHONDIR)" ] || { echo "make install: $(SYSTEM_PYTHON) could not compute PYTHONDIR;" \
	    "pass PYTHONDIR=/path/to/site-packages" >&2; exit 1; }
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
	run install -m 644 $(INSTALL_STAGE)/millis.pc $(DESTDIR)$(PKGCONFIGDIR)/millis.pc; \
	$(if $(filter yes,$(INSTALL_CLI)),run install -m 755 $(CLI_INSTALL) $(DESTDIR)$(BINDIR)/millis;) \
	for f in $(DEVSERVER_SOURCES); do \
	  case $$f in *.py) mode=755;; *) mode=644;; esac; \
	  run install -m $$mode $$f $(DESTDIR)$(MILLIS_DATADIR)/$$f; \
	done; \
	for f in $(PY_SOURCES); do run install -m 644 bindings/python/$$f $(DESTDIR)$(PYTHONDIR)/$$f; done; \
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
	  "run programs with LD_LIBRARY_PATH=$(LIBDIR), or add it to /etc/ld.so.conf.d/ and run ldconfig"; fi

# Removes what the manifest lists (or, without one, what make install would install),
# then the directories make install created, and millis' own ones, when empty.
uninstall:
	@[ -n "$(PYTHONDIR)" ] || { echo "make uninstall: $(SYSTEM_PYTHON) could not compute PYTHONDIR;" \
	    "pass the PYTHONDIR given to make install" >&2; exit 1; }
	@set -e; $(loader_check); manifest=$(DESTDIR)$(INSTALL_MANIFEST); \
	if [ -f "$$manifest" ]; then entries=$$(cat "$$manifest"); \
	else echo "no $$manifest: removing what make install would install"; \
	  entries="$(sort $(INSTALLED_FILES) $(BINDIR)/millis)"; fi; \
	for p in $$entries; do case $$p in */) ;; *) \
	  if [ -e "$(DESTDIR)$$p" ] || [ -L "$(DESTDIR)$$p" ]; then echo "rm -f $(DESTDIR)$$p"; rm -f "$(DESTDIR)$$p"; fi;; \
	esac; done; \
	rm -f "$$manifest"; \
	for top in $(DESTDIR)$(PYTHONDIR)/millis $(DESTDIR)$(MILLIS_DATADIR); do \
	  if [ -d "$$top" ]; then \
	    find "$$top" -depth -type d -name __pycache__ -exec rm -rf {} +; \
	    find "$$top" -depth -type d -exec rmdir --ignore-fail-on-non-empty {} +; \
	  fi; \
	done; \
	for p in $$entries; do case $$p in */) \
	  if [ -d "$(DESTDIR)$$p" ]; then rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$p"; fi;; \
	esac; done; \
	$(loader_refresh)
