# ibc: `make` builds bin/ibc; `make test` installs dependencies, builds and runs every test.
BUILD   ?= build
BIN     ?= bin/ibc
CC      := mpicc
PKGS    := jansson libpcre2-8 libutf8proc inih hdf5-openmpi zlib libzstd liblzma
# OpenBLAS's OpenMP build, pinned by rpath whatever the system's BLAS alternative is: inside
# ibc's own OpenMP regions its sgemm runs on the calling thread instead of oversubscribing.
# -fno-plt: calls into shared libraries (expf in every softmax and activation) go through the
# GOT directly instead of a PLT stub.
BLASDIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  := $(OPT) $(SAN) -std=c17 -D_GNU_SOURCE -fopenmp -fno-plt -Wall -Wextra -Werror -Iinclude \
           -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS := $(SAN)
# The revision results record (version.h): HEAD, "-dirty" when tracked files differ from it,
# "unknown" outside a git checkout. It goes into $(BUILD)/ibc_rev.h, rewritten only when it
# changes, so the objects that print it rebuild after a commit and no others do.
GIT_REV := $(shell r=$$(git rev-parse --short HEAD 2>/dev/null) || r=unknown; \
             [ $$r = unknown ] || git diff --quiet HEAD -- 2>/dev/null || r=$$r-dirty; echo $$r)
CFLAGS  += -I$(BUILD)
# GSL without its own CBLAS: OpenBLAS provides cblas_* for both.
LDLIBS  := -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lgsl -lcsv -lmvec -lm
TESTLIBS := -lcmocka

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/%.o)
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

.PHONY: all deps test asan bench fuzz demo clean FORCE
all: $(BIN)

deps:
	@bash scripts/install-deps.sh

$(BUILD)/%.o: src/%.c $(wildcard include/ibc/*.h) $(wildcard src/*.h) | $(BUILD)
	@echo "CC $<"; $(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/ibc_rev.h: FORCE | $(BUILD)
	@echo '#define IBC_GIT_REV "$(GIT_REV)"' >$@.new; if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
$(BUILD)/main.o $(BUILD)/manifest.o $(BUILD)/results.o: $(BUILD)/ibc_rev.h

$(BUILD)/libibc.a: $(LIB_OBJ)
	@rm -f $@ && ar rcs $@ $^ # from scratch: a deleted source leaves no stale member

$(BIN): $(BUILD)/main.o $(BUILD)/libibc.a
	@mkdir -p $(dir $(BIN))
	@echo "LD $@"; $(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libibc.a
	@mkdir -p $(BUILD)/tests
	@echo "CC $<"; $(CC) $(CFLAGS) $< $(BUILD)/libibc.a -o $@ $(LDFLAGS) $(LDLIBS) $(TESTLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libibc.a
	@mkdir -p $(BUILD)/bench
	@echo "CC $<"; $(CC) $(CFLAGS) $< $(BUILD)/libibc.a -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD):
	@mkdir -p $(BUILD)

# The README's test command: fresh Debian 12 -> dependencies, build, every test.
test: deps
	@$(MAKE) --no-print-directory all tests
	@BUILD=$(BUILD) IBC_BIN=$(BIN) bash scripts/run-tests.sh

tests: $(BIN) $(TESTS)

# AddressSanitizer + UndefinedBehaviorSanitizer build of everything, then the whole test run;
# any report stops the program (-fno-sanitize-recover=all), so the test that ran it fails.
# failure.sh's 30 s bound per run is the release build's; an instrumented 3-rank job on a
# 2-core machine needs longer, so it gets FAILURE_TIMEOUT (a run that hits it still fails).
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/ibc \
	  OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all tests
	@BUILD=build-asan IBC_BIN=build-asan/ibc ASAN_OPTIONS=detect_leaks=0 FAILURE_TIMEOUT=$${FAILURE_TIMEOUT:-180} \
	  bash scripts/run-tests.sh

bench: all $(BENCHES)
	@bash bench/run.sh

fuzz: deps
	@bash fuzz/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz bin
