# knit — plain GNU make.  `make` builds, `make check` installs what is
# missing and runs every test, `make demo` shows a tunnel working.
#
#   make SAN=1     AddressSanitizer + UndefinedBehaviorSanitizer build
#   make V=1       show the commands

CC      ?= cc
CLANG   ?= clang
# Libraries every program links; a program may add its own with
# PKGS_<program> (e.g. PKGS_knit-control := sqlite3).
PKGS    := libgcrypt libmnl jansson miniupnpc
TESTPKG := cmocka
PKGS_knit-control := sqlite3
PKGS_lab/natprobe :=
PKGS_lab/linkem   := libnetfilter_queue libmnl
PKGS_lab/ctfilter := libnetfilter_conntrack libnftables

ifeq ($(SAN),1)
BUILD   := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT     := -O1
else
BUILD   := build
SANFLAGS :=
OPT     := -O2
endif

CFLAGS  ?= $(OPT) -g
CPPFLAGS += -Isrc -I. -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -MMD -MP \
             $(shell pkg-config --cflags $(PKGS))
# libnatpmp (port mapping) ships no .pc file.
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS)) -lnatpmp -lpthread

ifneq ($(V),1)
Q := @
endif

# Layers (libknit.a): every directory of src/ that is not a program.
# Programs: src/<program>/ and lab/<tool>/ (C helpers of the NAT lab).
LAYERS   := lib crypto wg stun relay control net disco portmap netcheck traversal
LIB_SRCS := $(wildcard $(LAYERS:%=src/%/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBKNIT  := $(BUILD)/libknit.a
PROGRAMS := knit-control knit-relay knitd knit
PROGRAMS := $(foreach p,$(PROGRAMS),$(if $(wildcard src/$(p)/*.c),$(p)))
LAB_TOOLS := $(patsubst %/,%,$(dir $(wildcard lab/*/*.c)))
LAB_TOOLS := $(sort $(LAB_TOOLS))
BINS     := $(PROGRAMS:%=$(BUILD)/%) $(LAB_TOOLS:%=$(BUILD)/%)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 10

# Keep test objects between runs.
.SECONDARY:

.PHONY: all deps check unit fuzz fuzz-smoke system system-san demo bench clean format matrix-full perf
all: $(BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# Lab tools' objects live apart: build/lab/<tool> is the binary itself.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIBKNIT): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# $(1): binary name under $(BUILD), $(2): its source directory,
# $(3): where its objects go.
define program_rule
$$(BUILD)/$(1): $$(patsubst %.c,$(3)/%.o,$$(wildcard $(2)/*.c)) $$(LIBKNIT)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $$(LDLIBS_ALL) \
		$$(if $$(PKGS_$(1)),$$(shell pkg-config --libs $$(PKGS_$(1))))
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p),src/$(p),$$(BUILD))))
$(foreach p,$(LAB_TOOLS),$(eval $(call program_rule,$(p),$(p),$$(BUILD)/obj)))

# A unit test may also test one program's own files: test_<program>_*.c
# links src/<program>/*.o except main.o, and that program's libraries.
unit_prog = $(firstword $(foreach p,$(PROGRAMS),$(if $(filter test_$(subst -,_,$(p))_%,$(1)),$(p))))
unit_objs = $(if $(call unit_prog,$(1)),$(filter-out %/main.o,$(patsubst %.c,$(BUILD)/%.o,$(wildcard src/$(call unit_prog,$(1))/*.c))))
unit_libs = $(if $(PKGS_$(call unit_prog,$(1))),$(shell pkg-config --libs $(PKGS_$(call unit_prog,$(1)))))
.SECONDEXPANSION:
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $$(call unit_objs,$$*) $(LIBKNIT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL) $(call unit_libs,$*) $(shell pkg-config --libs $(TESTPKG))

# Fuzz targets: clang + libFuzzer, built from the library sources directly.
FUZZ_FLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) \
              $(shell pkg-config --cflags $(PKGS))
build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ-LD $@")
	$(Q)$(CLANG) $(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(LDLIBS_ALL)

deps:
	$(Q)scripts/install-deps.sh

unit: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS)

fuzz: $(FUZZ_BINS)

fuzz-smoke: $(FUZZ_BINS)
	$(Q)tests/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

system: $(BINS)
	$(Q)tests/run-system.sh

# Our daemons again, built with ASan + UBSan (LeakSanitizer at exit).
system-san:
	$(Q)$(MAKE) --no-print-directory SAN=1 all
	$(Q)tests/run-system-san.sh

check: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run-check.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# The NAT matrix (tests/system/matrix.sh) in make check asserts each cell's
# expected path (77 of 81 direct) and the time-to-direct budgets;
# MATRIX_EXPECT=relay-only asserts only that every cell connects.

# Every matrix: RFC 4787 9x9 and the special cases, the seed's ADM, RFC 3489,
# and 2.5 % loss with 20 ms delay; writes docs/results/matrix.{json,md}.
matrix-full: all
	$(Q)MATRIX_FULL=1 tests/system/matrix.sh

# The performance suite's full sweeps (docs/perf.md), each compared with
# docs/results/perf-baseline.json (ratios knit / underlay, 25 % tolerance).
perf: all
	$(Q)rc=0; for v in "loss 0,1,2.5,5" "delay 0,10,20,50"; do set -- $$v; \
		lab/knit-lab perf --var $$1 --values $$2 --repeat 3 --out build/results/perf-$$1 --ci || rc=1; \
	done; exit $$rc

# Benchmarks in C: bench/<name>.c -> build/bench/<name>, linked with libknit.
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/crypto.c,$(wildcard bench/*.c)))
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBKNIT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

bench: all $(BENCH_BINS)
	$(Q)bench/throughput.sh
	$(Q)bench/control_scale.sh

format:
	clang-format -i $(wildcard src/*/*.[ch] lab/*/*.[ch] tests/*/*.c)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
