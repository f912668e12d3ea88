# tests/fuzz/fuzz.mk - build the libFuzzer targets (called by run.sh).
#
# Not an automake file: the fuzz build uses clang and its own sanitizer
# flags, separate from the gcc build in build/. Every filter/*.c and
# filter/util/*.c except main.c and milter.c (and the main file of any
# other program, found by its main()) is compiled with clang into
# $(OUT)/libauthgate-fuzz.a, so a new module is picked up without editing
# this file. Each tests/fuzz/fuzz_<name>.c becomes $(OUT)/fuzz_<name>.
# util/arena.c is replaced by tests/fuzz/arena_malloc.c (one malloc per
# allocation, so ASan sees overflows between arena allocations) unless
# FUZZ_ARENA=real.
# Dependencies come from -MMD, so a second `run.sh build` only rebuilds
# what changed.
#
#   make -f tests/fuzz/fuzz.mk TOP=/path/to/repo OUT=/path/to/build-fuzz \
#       AG_INCLUDE=/dir/with/autoconf.h DEP_CFLAGS=... DEP_LIBS=...
#
# DEP_CFLAGS and DEP_LIBS are the third-party flags configure found
# (AG_DEP_CFLAGS, AG_DEP_LIBS of the configured filter/Makefile; run.sh
# reads them), so a module that needs a new library builds here as soon
# as configure knows it. The defaults serve a tree never configured.

TOP ?= .
OUT ?= $(TOP)/build-fuzz
AG_INCLUDE ?= $(TOP)/build
FUZZ_ARENA ?= malloc
DEP_CFLAGS ?= -I/usr/include/libmilter -I/usr/include/opendkim \
	-I/usr/include/postgresql
DEP_LIBS ?=

CC := clang
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
OPT := -g -O1 -fno-omit-frame-pointer
WARN := -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
# -D_FORTIFY_SOURCE is left out on purpose: it hides accesses from ASan.
CPPFLAGS := -D_GNU_SOURCE -U_FORTIFY_SOURCE -I$(TOP)/filter -I$(AG_INCLUDE) \
	$(DEP_CFLAGS)
CFLAGS := -std=gnu11 $(OPT) $(WARN) $(FUZZ_EXTRA_CFLAGS)

# Not the daemon's main.c and milter.c, nor the main file of another
# program (a file that defines main(), such as reports.c).
LPAREN := (
MAIN_SRCS := $(shell grep -l '^main *[$(LPAREN)]' $(TOP)/filter/*.c 2>/dev/null)
LIB_SRCS := $(filter-out $(TOP)/filter/main.c $(TOP)/filter/milter.c \
	$(MAIN_SRCS), \
	$(wildcard $(TOP)/filter/*.c) $(wildcard $(TOP)/filter/util/*.c))
ifneq ($(FUZZ_ARENA),real)
LIB_SRCS := $(filter-out $(TOP)/filter/util/arena.c,$(LIB_SRCS))
endif
LIB_OBJS := $(patsubst $(TOP)/filter/%.c,$(OUT)/obj/filter/%.o,$(LIB_SRCS))
# The built-in rule set, generated as the automake build does, from the
# files its BUILTIN_RULES list names.
BUILTIN_RULES := $(subst $$(top_srcdir),$(TOP),$(shell awk \
	'/^BUILTIN_RULES *=/ { on = 1; sub(/^BUILTIN_RULES *=/, "") } \
	on { c = sub(/\\$$/, ""); print; if (!c) exit }' \
	$(TOP)/filter/Makefile.am))
LIB_OBJS += $(OUT)/obj/gen/rules_builtin.o
ifneq ($(FUZZ_ARENA),real)
LIB_OBJS += $(OUT)/obj/fuzz/arena_malloc.o
endif
FUZZ_SRCS := $(wildcard $(TOP)/tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst $(TOP)/tests/fuzz/%.c,$(OUT)/%,$(FUZZ_SRCS))
LIB := $(OUT)/libauthgate-fuzz.a
LIBS_TXT := $(OUT)/libs.txt

# Other flags or another FUZZ_ARENA must rebuild everything: they are
# written to a file that changes only when they do, and every object
# depends on it.
MODE := $(OUT)/build-flags
$(shell mkdir -p $(OUT); \
	echo '$(FUZZ_ARENA) $(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) $(DEP_LIBS)' | \
	cmp -s - $(MODE) || \
	echo '$(FUZZ_ARENA) $(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) $(DEP_LIBS)' \
	>$(MODE))

all: $(FUZZ_BINS)

$(OUT)/obj/filter/%.o: $(TOP)/filter/%.c $(MODE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -fsanitize=fuzzer-no-link \
	    -MMD -MP -c -o $@ $<

$(OUT)/gen/rules_builtin.c: $(BUILTIN_RULES) $(TOP)/filter/gen-builtin-rules.sh
	@mkdir -p $(dir $@)
	sh $(TOP)/filter/gen-builtin-rules.sh $(BUILTIN_RULES) >$@.tmp && \
	    mv $@.tmp $@

$(OUT)/obj/gen/rules_builtin.o: $(OUT)/gen/rules_builtin.c $(MODE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -fsanitize=fuzzer-no-link \
	    -MMD -MP -c -o $@ $<

$(OUT)/obj/fuzz/%.o: $(TOP)/tests/fuzz/%.c $(MODE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -fsanitize=fuzzer-no-link \
	    -I$(TOP)/tests/fuzz -MMD -MP -c -o $@ $<

# The archive is rebuilt from scratch so a deleted source leaves nothing.
$(LIB): $(LIB_OBJS) $(MODE)
	@rm -f $@
	ar rcs $@ $(filter %.o,$^)

# Link only the libraries the pulled-in objects really need: what is
# undefined in the archive, mapped from symbol prefix to library, and
# --as-needed drops those a given target does not use after all.
$(LIBS_TXT): $(LIB) $(TOP)/tests/fuzz/needed-libs.sh
	sh $(TOP)/tests/fuzz/needed-libs.sh $(LIB) >$@.tmp && mv $@.tmp $@

$(OUT)/fuzz_%: $(OUT)/obj/fuzz/fuzz_%.o $(LIB) $(LIBS_TXT)
	$(CC) $(SAN) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(LIB) \
	    $(FUZZ_LDFLAGS) -Wl,--as-needed $$(cat $(LIBS_TXT)) $(DEP_LIBS) \
	    -lpthread

# fuzz_tables loads its two key files once (see __wrap_keys_load there).
$(OUT)/fuzz_tables: FUZZ_LDFLAGS = -Wl,--wrap=keys_load

# fuzz_pipeline answers DNS with the unit tests' fake server.
$(OUT)/obj/unit/fakedns.o: $(TOP)/tests/unit/fakedns.c $(MODE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -MMD -MP -c -o $@ $<

$(OUT)/fuzz_pipeline: $(OUT)/obj/unit/fakedns.o
$(OUT)/obj/fuzz/fuzz_pipeline.o: CPPFLAGS += -I$(TOP)/tests/unit

.PHONY: all
.SECONDARY:

-include $(LIB_OBJS:.o=.d) $(patsubst $(OUT)/%,$(OUT)/obj/fuzz/%.d,$(FUZZ_BINS)) \
	$(OUT)/obj/unit/fakedns.d
