# shoal - one non-recursive Makefile.
#
#   make                 build/shoal, build/libshoal.a, build/libshoal.so
#   make install         PREFIX=/usr/local DESTDIR= : shoal, libshoal
#                        (static, and shared with a versioned soname),
#                        shoal.h, shoal.pc for pkg-config
#   make python-ext      the Python extension's objects (setup.py links them)
#   make run             build and start the store on default settings
#   make test            install what tests need, build, run every test
#   make bench           build and run the C benchmark suite
#   make bench-python    shoal next to Parquet, Feather, Redis, pickle, Ray
#   make bench-dash      the example Dash app with shoal, FileSystemCache, Redis
#   make bench-refresh   100 refreshes of a 409 MiB frame read by a 4-worker app
#   make bench-cache     what TTLs, evictable names and prefixes cost
#   make bench-tier      the Redis tier against redis-py's own SET and GET
#   make test-tier       the tier's tests on a 3-master Redis cluster, 600 MB
#   make attack          the hostile-client attacks, timed (build/attack)
#   make stress          test_stress at a larger scale (SCALE=10)
#   make fuzz            the libFuzzer targets (their corpora run in make test)
#   make SANITIZE=address,undefined   the same in build/san/
#   make WERROR=1 OPT=-O0              variants as variables
#
# Each variant builds in its own folder so they never mix objects.

CC ?= cc
OPT ?= -O2
SANITIZE ?=
WERROR ?=
DEBUG ?=

# DEBUG=1 (and every SANITIZE= build) compiles in the internal invariant
# checks (SHOAL_ASSERT, src/common/debug.h); `make test` runs those builds.
ifeq ($(SANITIZE),)
ifeq ($(DEBUG),)
BUILD ?= build
else
BUILD ?= build/debug
endif
else
BUILD ?= build/san
DEBUG := 1
endif

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Wshadow \
	-Wstrict-prototypes -Wno-missing-field-initializers -fPIC \
	-fvisibility=hidden -Iinclude -Isrc/common -Isrc/daemon -Isrc/client
ifneq ($(WERROR),)
CFLAGS_BASE += -Werror
endif
ifneq ($(DEBUG),)
CFLAGS_BASE += -DSHOAL_DEBUG
endif
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS_SAN := -fsanitize=$(SANITIZE)
endif
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)
ALL_LDFLAGS := $(LDFLAGS_SAN) $(LDFLAGS)
LIBS := -lpthread

COMMON_SRC := $(sort $(wildcard src/common/*.c))
CLIENT_SRC := $(sort $(wildcard src/client/*.c))
DAEMON_SRC := $(sort $(wildcard src/daemon/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
DAEMON_OBJ := $(call obj,$(DAEMON_SRC))
CLI_OBJ := $(call obj,$(CLI_SRC))

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_SRC := $(sort $(wildcard tests/integration/test_*.c))
INTEG_BIN := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEG_SRC))
TEST_SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJ := $(call obj,$(TEST_SUPPORT_SRC))

# The library's version, from include/shoal.h (shoal_version() returns it at
# run time). The soname carries SOVERSION, SHOAL_ABI_VERSION in the header,
# raised on every ABI break.
VERSION := $(shell sed -n 's/^\#define SHOAL_VERSION_STRING "\(.*\)"/\1/p' include/shoal.h)
SOVERSION := $(shell sed -n 's/^\#define SHOAL_ABI_VERSION \([0-9]*\)/\1/p' include/shoal.h)
SONAME := libshoal.so.$(SOVERSION)

.PHONY: all run test tests-c bench bench-python clean format deps stress test-valgrind \
	install uninstall python-ext print-python-ext-objects
all: $(BUILD)/shoal $(BUILD)/libshoal.a $(BUILD)/libshoal.so $(BUILD)/$(SONAME)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libshoal.a: $(COMMON_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libshoal.so.$(VERSION): $(COMMON_OBJ) $(CLIENT_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/$(SONAME) $(BUILD)/libshoal.so: $(BUILD)/libshoal.so.$(VERSION)
	ln -sf libshoal.so.$(VERSION) $@

# Installation: `make install PREFIX=/usr DESTDIR=/tmp/pkg`. shoal.pc is
# written with the final paths (without DESTDIR).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

install: $(BUILD)/shoal $(BUILD)/libshoal.a $(BUILD)/libshoal.so.$(VERSION)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(BUILD)/shoal $(DESTDIR)$(BINDIR)/shoal
	install -m 644 $(BUILD)/libshoal.a $(DESTDIR)$(LIBDIR)/libshoal.a
	install -m 755 $(BUILD)/libshoal.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libshoal.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libshoal.so
	install -m 644 include/shoal.h $(DESTDIR)$(INCLUDEDIR)/shoal.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		shoal.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/shoal.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/shoal $(DESTDIR)$(LIBDIR)/libshoal.a \
		$(DESTDIR)$(LIBDIR)/libshoal.so.$(VERSION) \
		$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libshoal.so \
		$(DESTDIR)$(INCLUDEDIR)/shoal.h $(DESTDIR)$(PKGCONFIGDIR)/shoal.pc

# The Python extension, compiled here with the same flags as everything
# else (setup.py only links): objects per interpreter ABI, against the
# headers of $(PYTHON). CPython's method signatures take arguments some
# methods do not use: those are marked Py_UNUSED in the sources.
PYTHON ?= python3
ifneq ($(filter python-ext print-python-ext-objects,$(MAKECMDGOALS)),)
PY_ABI := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("SOABI"))')
PY_INCLUDE := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
endif
PYEXT_SRC := $(sort $(wildcard python/shoal/_shoal*.c))
PYEXT_OBJ := $(patsubst %.c,$(BUILD)/py-$(PY_ABI)/%.o,$(PYEXT_SRC))

# The extension is a client: it sees no daemon headers.
PYEXT_CFLAGS := $(filter-out -Isrc/daemon,$(ALL_CFLAGS))

$(PYEXT_OBJ): $(BUILD)/py-$(PY_ABI)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(PYEXT_CFLAGS) -I$(PY_INCLUDE) -MMD -MP -c $< -o $@

python-ext: $(PYEXT_OBJ) $(BUILD)/libshoal.a $(BUILD)/shoal

print-python-ext-objects:
	@echo $(PYEXT_OBJ) $(BUILD)/libshoal.a

$(BUILD)/shoal: $(CLI_OBJ) $(DAEMON_OBJ) $(BUILD)/libshoal.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(DAEMON_OBJ) $(BUILD)/libshoal.a $(LIBS)

# Unit tests link the daemon's objects (without its entry point) directly.
$(BUILD)/tests/%: tests/unit/%.c $(DAEMON_OBJ) $(BUILD)/libshoal.a $(TEST_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/support -o $@ $< $(DAEMON_OBJ) \
		$(TEST_SUPPORT_OBJ) $(BUILD)/libshoal.a $(ALL_LDFLAGS) -lcmocka $(LIBS)

$(BUILD)/tests/%: tests/integration/%.c $(BUILD)/libshoal.a $(TEST_SUPPORT_OBJ) $(BUILD)/shoal
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/support -o $@ $< $(TEST_SUPPORT_OBJ) \
		$(BUILD)/libshoal.a $(ALL_LDFLAGS) -lcmocka $(LIBS)

tests-c: $(UNIT_BIN) $(INTEG_BIN)

run: all
	$(BUILD)/shoal serve

deps:
	@tests/deps.sh

test: deps
	@tests/run.sh

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(BUILD) -path '$(BUILD)/py-*' -name '*.d' 2>/dev/null)

# Benchmarks: build/shoal-bench prints a table and writes build/bench.json.
BENCH_SRC := $(sort $(wildcard bench/*.c))
$(BUILD)/shoal-bench: $(BENCH_SRC) $(BUILD)/libshoal.a $(BUILD)/shoal
	$(CC) $(ALL_CFLAGS) -O2 -o $@ $(BENCH_SRC) $(BUILD)/libshoal.a $(ALL_LDFLAGS) $(LIBS)

bench: $(BUILD)/shoal-bench
	$(BUILD)/shoal-bench --shoal $(BUILD)/shoal --json $(BUILD)/bench.json

# The Python side-by-side benchmark (bench/python/bench_python.py): writes
# build/bench-python.json and build/bench-python.png. Its own extra packages
# are installed here, not by make test; a system whose software is missing
# (e.g. no redis-server) is skipped with a message. BENCH_PY_ARGS passes
# options, e.g. BENCH_PY_ARGS="--rows 1000000 --repeat 3".
BENCH_PY_DEPS := ray redis matplotlib
bench-python: all deps
	.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation . >/dev/null
	.venv/bin/pip install -q --disable-pip-version-check $(BENCH_PY_DEPS) || \
		echo "bench-python: could not install $(BENCH_PY_DEPS): those parts are skipped"
	SHOAL_BIN=$(CURDIR)/$(BUILD)/shoal .venv/bin/python bench/python/bench_python.py \
		--json $(BUILD)/bench-python.json --chart $(BUILD)/bench-python.png $(BENCH_PY_ARGS)

# What names with a ttl, evictable names and prefixes cost (bench/cache/).
$(BUILD)/shoal-bench-cache: bench/cache/bench_cache.c $(BUILD)/libshoal.a $(BUILD)/shoal
	$(CC) $(ALL_CFLAGS) -O2 -o $@ $< $(BUILD)/libshoal.a $(ALL_LDFLAGS) $(LIBS)

.PHONY: bench-cache
bench-cache: $(BUILD)/shoal-bench-cache
	$(BUILD)/shoal-bench-cache $(BUILD)/shoal $${REPS:-5}

# The example Dash app under gunicorn -w 4 with shoal, FileSystemCache and
# Redis: callback latency and the workers' PSS (docs/benchmarks.md).
.PHONY: bench-dash
bench-dash: deps all
	.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
	SHOAL_BIN=$(CURDIR)/$(BUILD)/shoal .venv/bin/python bench/python/bench_dash.py $(BENCH_DASH_ARGS)

# 100 refreshes of one ~409 MiB frame under one name in the daemon that
# shoal.connect() starts, read by the example app under gunicorn -w 4:
# put time against recycled memory, backed/used bytes, the workers' RSS and
# PSS (docs/benchmarks.md). BENCH_REFRESH_ARGS="--readers workers --mib 100".
.PHONY: bench-refresh
bench-refresh: deps all
	.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
	SHOAL_BIN=$(CURDIR)/$(BUILD)/shoal .venv/bin/python bench/python/bench_refresh.py \
		--json $(BUILD)/bench-refresh.json $(BENCH_REFRESH_ARGS)

# shoal-tier (python/shoal/tier.py): `make test` runs its standalone-Redis
# tests; test-tier adds the 3-master cluster and the 600 MB object;
# bench-tier measures propagation against redis-py's own SET/GET.
.PHONY: test-tier bench-tier
test-tier: deps all
	.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
	SHOAL_BIN=$(CURDIR)/$(BUILD)/shoal SHOAL_TIER_FULL=1 timeout 1800 .venv/bin/python -m pytest \
		-q -p no:cacheprovider tests/python/test_tier.py

bench-tier: deps all
	.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
	SHOAL_BIN=$(CURDIR)/$(BUILD)/shoal .venv/bin/python bench/python/bench_tier.py \
		--json $(BUILD)/bench-tier.json

# A long crash storm and load run, and a long SIGKILL storm of a --persist
# daemon.
stress: tests-c
	SHOAL_TEST_TIMEOUT=3600 SHOAL_BIN=$(BUILD)/shoal SHOAL_STRESS_SCALE=$${SCALE:-10} $(BUILD)/tests/test_stress
	SHOAL_TEST_TIMEOUT=3600 SHOAL_BIN=$(BUILD)/shoal SHOAL_STRESS_SCALE=$${SCALE:-10} $(BUILD)/tests/test_persist

# The integration suite with both the tests and the daemon under valgrind's
# memcheck; fails on any error or definite leak.
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite
test-valgrind: tests-c
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind
	set -e; for t in $(BUILD)/tests/test_daemon $(BUILD)/tests/test_events \
		$(BUILD)/tests/test_store; do \
		SHOAL_TEST_INPROC=1 SHOAL_BIN=$(BUILD)/shoal SHOAL_WRAP="$(VALGRIND)" \
		SHOAL_STRESS_SCALE=0.2 $(VALGRIND) $$t; done

# Fuzzing with clang's libFuzzer (tests/fuzz/): `make fuzz FUZZ_TIME=60`
# builds every tests/fuzz/fuzz_*.c harness into build/fuzz/ with ASan and
# UBSan and runs each for FUZZ_TIME seconds on a copy of its corpus; crashers
# are added to tests/fuzz/corpus/<harness>/, which `make test` replays with
# the normal compiler (tests/unit/test_fuzz_replay.c).
FUZZ_TIME ?= 60
FUZZ_CC ?= clang
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Iinclude -Isrc/common -Isrc/daemon -Isrc/client
FUZZ_LIB_SRC := $(COMMON_SRC) $(DAEMON_SRC) $(CLIENT_SRC)

.PHONY: fuzz fuzz-build fuzz-deps
fuzz-build: $(FUZZ_BIN)

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) $(wildcard src/*/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) $(LIBS)

fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; }

fuzz: fuzz-deps
	$(MAKE) fuzz-build
	tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_BIN)

# The corpus replay includes the harnesses' sources.
$(BUILD)/tests/test_fuzz_replay: $(FUZZ_SRC)

# The hostile-client attacks of issue 9 with another client's latency
# measured (a tool, not a test): build/attack BIN N [SECONDS].
$(BUILD)/attack: tests/attack/attack.c $(BUILD)/libshoal.a $(TEST_SUPPORT_OBJ)
	$(CC) $(ALL_CFLAGS) -Itests/support -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/libshoal.a $(ALL_LDFLAGS) $(LIBS)

.PHONY: attack
attack: $(BUILD)/attack $(BUILD)/shoal
