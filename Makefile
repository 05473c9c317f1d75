# sgd — smart-metering gateway. See README.md.
#   make            build build/sgd, build/sgctl, build/sgsim
#   make demo       install missing packages, build, run the demo
#   make check      install missing packages, build, run every test (+ASan/UBSan run)
#   make bench      benchmarks (figures as ratios against a reference run)
#   make fuzz       run each libFuzzer harness of tests/fuzz for FUZZ_TIME s (clang)
#   make clean

BUILD ?= build
SAN ?= 0

PKGS := libmodbus jansson sqlite3 libsystemd libmicrohttpd libmosquitto openssl
CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_BASE := -std=gnu11 -O2 -g $(WARN) -Iinclude $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
	-D_GNU_SOURCE -fstack-protector-strong -fPIE
LDFLAGS_BASE := -pie -Wl,-z,relro,-z,now
ifeq ($(FUZZ),1)
CFLAGS_BASE += -fsanitize=fuzzer-no-link
endif
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -O1
LDFLAGS_BASE += -fsanitize=address,undefined
else
CFLAGS_BASE += -D_FORTIFY_SOURCE=2
endif
CFLAGS := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

# Everything except the programs' main files goes into one static library; each
# program and unit test links only the objects it pulls from it.
LIB_SRC := $(wildcard src/core/*.c src/ops/*.c src/bus/*.c src/dev/*.c src/ctl/*.c src/api/*.c src/mqtt/*.c src/modbus/*.c src/hist/*.c)
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
SGD_SRC := $(wildcard src/sgd/*.c)
SGCTL_SRC := $(wildcard src/sgctl/*.c)
SIM_SRC := $(wildcard tests/sim/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

all: $(BUILD)/sgd $(BUILD)/sgctl $(BUILD)/sgsim

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libsg.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sgd: $(patsubst %.c,$(BUILD)/obj/%.o,$(SGD_SRC)) $(BUILD)/libsg.a
	$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS)

$(BUILD)/sgctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(SGCTL_SRC)) $(BUILD)/libsg.a
	$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS)

$(BUILD)/sgsim: $(patsubst %.c,$(BUILD)/obj/%.o,$(SIM_SRC)) $(BUILD)/libsg.a
	$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS) -lutil

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libsg.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS) -lcmocka

unit: $(UNIT_BIN)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libsg.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS)

bench-bin: $(BENCH_BIN)

deps:
	@./tools/install-deps

demo: deps
	$(MAKE) all
	./tools/demo

# The whole suite, then again under ASan/UBSan in a separate build tree.
check: deps
	$(MAKE) format-check all unit
	./tests/run-all $(BUILD)
	$(MAKE) BUILD=build-asan SAN=1 all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		./tests/run-all build-asan --sanitized

bench:
	@./tools/install-deps bench
	$(MAKE) all bench-bin
	./bench/run-all $(BUILD)

# ---- fuzzing (tests/fuzz, README "Fuzzing") ----
# Each tests/fuzz/fuzz_<name>.c is a libFuzzer harness. make check builds each
# with the ordinary compiler and replay.c as build/tests/fuzz_<name>, which
# tests/run-all runs over the committed seeds tests/fuzz/corpus/<name>/ (under
# ASan/UBSan in build-asan). make fuzz builds them with clang and libFuzzer in
# build-fuzz and runs each for FUZZ_TIME seconds, growing a working corpus in
# FUZZ_DIR (outside git).
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_REPLAY := $(patsubst %,$(BUILD)/tests/fuzz_%,$(FUZZ_NAMES))
# src/sgd/modules.c: the daemon's start-up order, shared with tests/fuzz/app.c.
FUZZ_HELP := $(BUILD)/obj/tests/fuzz/app.o $(BUILD)/obj/tests/fuzz/util.o \
	$(BUILD)/obj/src/sgd/modules.o
FUZZ_TIME ?= 60
FUZZ_DIR ?= .fuzz

$(BUILD)/fuzzhelp.a: $(FUZZ_HELP)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o \
		$(BUILD)/fuzzhelp.a $(BUILD)/libsg.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS)

unit: $(FUZZ_REPLAY)

# libFuzzer binaries (BUILD=build-fuzz FUZZ=1 SAN=1 CC=clang, from make fuzz).
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/fuzzhelp.a $(BUILD)/libsg.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-bin: $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))

fuzz:
	@./tests/fuzz/have-clang
	$(MAKE) BUILD=build-fuzz SAN=1 FUZZ=1 CC=clang fuzz-bin
	./tests/fuzz/run build-fuzz $(FUZZ_TIME) $(FUZZ_DIR) $(FUZZ_NAMES)

# find, not git ls-files: make check runs from a tarball or a root without git.
FORMAT_SRC = $(shell find src include tests bench -name '*.[ch]')

format:
	clang-format -i $(FORMAT_SRC)

# The style gate of make check: every C file as clang-format writes it
# (.clang-format; Debian 12's clang-format 14).
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) </dev/null && echo "format-check: ok"

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all unit bench-bin deps demo check bench clean format format-check fuzz fuzz-bin
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
