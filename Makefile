# butte -- build, test and run a small Mesos-style cluster manager.
#
#   make            the five binaries and the fuzz targets into build/
#   make deps       install the Debian packages that are missing (needs root)
#   make test       deps, build, unit and integration tests
#   make sanitize   the whole suite again under ASan and UBSan (build-san/)
#   make demo       deps, build, start a local cluster and deploy an example
#   make bench      every benchmark; rewrites docs/benchmarks.md (QUICK=1: < 2 min)
#   make fuzz       build the fuzz targets; for real fuzzing with clang's libFuzzer:
#                   make BUILD=build-fuzz FUZZER=libfuzzer fuzz
#                   build-fuzz/fuzz/fuzz_resources tests/fuzz/corpus/fuzz_resources
#   make clean
#
# BUILD selects the output folder; SAN=1 builds with the sanitizers and with the
# consistency checks of -DBUTTE_CHECKS (kept counts recounted the long way).

BUILD    ?= build
SAN      ?=
CC       ?= cc
PYTHON   ?= /usr/bin/python3
PYTEST_ARGS ?=

PKGS     := libevent libevent_pthreads jansson libcurl libprotobuf-c sqlite3 libseccomp
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -MMD -MP \
             -Icommon -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
ifeq ($(FUZZER),libfuzzer)
CC       := clang
ALL_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif
ifeq ($(SAN),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1 \
              -DBUTTE_CHECKS
LDFLAGS  += -fsanitize=address,undefined
endif

# Every program linked with libbutte frees through __wrap_free (common/keep.c),
# which tells the blocks of the long-lived objects' arena apart.
KEEP_LDFLAGS := -Wl,--wrap=free

# the sanitizers' run-times are shared libraries: then butte-supervise is only bound at start
SUPERVISE_LDFLAGS := -Wl,-z,now -Wl,-z,relro $(if $(SAN)$(FUZZER),,-static)

PROTOS      := $(wildcard proto/*.proto)
GEN_C       := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H       := $(GEN_C:.c=.h)
COMMON_SRC  := $(wildcard common/*.c)
MASTER_SRC  := $(wildcard master/*.c)
AGENT_SRC   := $(filter-out agent/supervise.c,$(wildcard agent/*.c))
RELAY_SRC   := $(wildcard framework/relay/*.c)
CLI_SRC     := $(wildcard framework/cli/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC   := $(wildcard tests/bench/bench_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB         := $(BUILD)/libbutte.a
BINS        := $(BUILD)/butte-master $(BUILD)/butte-agent $(BUILD)/butte-supervise \
               $(BUILD)/butte-relay $(BUILD)/butte
UNITS       := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZERS     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
BENCHES     := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all deps test check unit integration sanitize fuzz demo clean bench
.SECONDARY:

all: $(BINS) $(FUZZERS) $(UNITS) $(BENCHES)

# --- generated protobuf-c code (never committed) ---
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto $(PROTOS)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c $< -o $@

$(LIB): $(call obj,$(COMMON_SRC)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/butte-master: $(call obj,$(MASTER_SRC)) $(LIB)
	$(CC) $(LDFLAGS) $(KEEP_LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/butte-agent: $(call obj,$(AGENT_SRC)) $(LIB)
	$(CC) $(LDFLAGS) $(KEEP_LDFLAGS) -o $@ $^ $(LDLIBS)
# The agent's per-task supervisor needs nothing but the C library. The
# launcher forks one per task, so it is linked static and bound at start:
# a fork then copies a few mappings and no child resolves a symbol (each
# lazy binding would write, and so copy, a page of the launcher's).
$(BUILD)/butte-supervise: $(call obj,agent/supervise.c common/child.c)
	$(CC) $(LDFLAGS) $(SUPERVISE_LDFLAGS) -o $@ $^
$(BUILD)/butte-relay: $(call obj,$(RELAY_SRC)) $(LIB)
	$(CC) $(LDFLAGS) $(KEEP_LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/butte: $(call obj,$(CLI_SRC)) $(LIB)
	$(CC) $(LDFLAGS) $(KEEP_LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: one cmocka program per module; a test may #include the .c it tests.
$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(KEEP_LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

# Fuzz targets: built by every make with a standalone driver that replays files;
# FUZZER=libfuzzer builds them for real fuzzing with clang.
ifeq ($(FUZZER),libfuzzer)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(KEEP_LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) $(LDLIBS)
else
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/obj/tests/fuzz/driver.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(KEEP_LDFLAGS) -o $@ $< $(BUILD)/obj/tests/fuzz/driver.o $(LIB) $(LDLIBS)
endif

fuzz: $(FUZZERS)

# Benchmark programs (in-process measurements); tests/bench/run.py drives them
# and the real daemons. Like unit tests they may #include the .c they measure.
$(BUILD)/bench/%: tests/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(KEEP_LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# --- dependencies: Debian packages, installed only when missing ---
DEB_PKGS := build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libevent-dev \
            libjansson-dev libcurl4-gnutls-dev libsqlite3-dev libseccomp-dev libcmocka-dev \
            python3 python3-pytest python3-pytest-timeout python3-requests python3-marathon busybox-static \
            procps iproute2 curl openssl gnuplot-nox docker.io qemu-user-static binfmt-support \
            gcc-powerpc64le-linux-gnu

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install packages" >&2; exit 1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all Debian packages present"; fi

# --- tests ---
unit: $(UNITS) $(FUZZERS)
	@fail=0; for t in $(UNITS); do echo "== $$t"; $$t || fail=1; done; \
	for f in $(FUZZERS); do n=$$(basename $$f); \
	    if [ -d tests/fuzz/corpus/$$n ]; then $$f tests/fuzz/corpus/$$n >/dev/null || fail=1; fi; done; \
	exit $$fail

integration: $(BINS)
	BUTTE_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider --timeout=300 tests/integration $(PYTEST_ARGS)

check: all
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration

test: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory test-ppc64le
	$(MAKE) --no-print-directory check

sanitize: deps
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(MAKE) --no-print-directory BUILD=build-san SAN=1 check

bench: deps
	$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/run.py --build $(abspath $(BUILD)) $(if $(QUICK),--quick)

demo: deps
	$(MAKE) --no-print-directory all
	@sh docs/examples/demo.sh $(BUILD)

clean:
	rm -rf build build-san

# Cross builds and other optional parts live in mk/.
-include $(wildcard mk/*.mk)

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
