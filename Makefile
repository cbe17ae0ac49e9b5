# SPDX-License-Identifier: Apache-2.0
#
# zmesh build: everything generated goes under build/ (vmlinux.h, BPF objects and skeletons,
# objects, binaries, test programs). Files are picked up by convention, so adding a source
# file never needs an edit here:
#   bpf/*.bpf.c                -> build/bpf/<x>.bpf.o and build/bpf/<x>.skel.h
#   userspace/lib/<dir>/*.c    -> build/libzmesh.a
#   userspace/lib/xds/proto/**/*.proto -> build/proto/**/*.pb-c.[ch] (protoc-c), into libzmesh.a
#   userspace/<bin>/*.c        -> build/bin/<bin>   (ztunnel, waypoint, zmeshctl, zmesh-ca, zmesh-cni)
#   tests/unit/test_*.c        -> build/tests/unit/test_*
#   tests/bpf/test_*.c         -> build/tests/bpf/test_*
#   tests/tools/*.c            -> build/tests/tools/*
#   tests/fuzz/fuzz_*.c        -> build/fuzz/fuzz_*   (make fuzz, clang + libFuzzer)
#
# make [all] | test | bench | soak | demo | lint | fuzz | image | clean     V=1 for full commands
# make test-samples ISTIO_SAMPLES=DIR [ZTUNNEL_EXAMPLES=DIR]   the acceptance corpus (Istio's
#                                       published samples/ tree), tests/run.sh samples
# make test-conformance ISTIO_CONFORMANCE=DIR   Istio's own L7 cases with their expected
#                                       outcomes, through the harness (tests/conformance/)
# make SANITIZE=1 ...  builds into build-san/ with ASan+UBSan (tests run the same way)
# make image: OCI archives build/images/zmesh-{node,waypoint,ca}.tar (buildah, FROM scratch)

.DEFAULT_GOAL := all
ZMESH_VERSION := 0.1.0
.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

ifeq ($(SANITIZE),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

ifeq ($(V),1)
Q :=
msg := @true
else
Q := @
msg = @printf '  %-8s %s\n'
endif

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE $(SANFLAGS) $(EXTRA_CFLAGS)
CPPFLAGS := -Iinclude -Iuserspace/lib -I$(BUILD)/bpf -I$(BUILD) -I$(BUILD)/proto -Itests/lib
LDFLAGS := $(SANFLAGS)
LDLIBS := -lbpf -lelf -lz -lssl -lcrypto -lnghttp2 -lyaml -ljson-c -lmnl -lpcre2-8 -lprotobuf-c -lpthread -lm
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(BUILD) -Iinclude -Ibpf

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_NAMES := $(patsubst bpf/%.bpf.c,%,$(BPF_SRCS))
BPF_OBJS := $(BPF_NAMES:%=$(BUILD)/bpf/%.bpf.o)
SKELS := $(BPF_NAMES:%=$(BUILD)/bpf/%.skel.h)

LIB_SRCS := $(wildcard userspace/lib/*/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)

# The xDS and Istio protos (ours, wire-compatible with Istio's and Envoy's): C code generated
# by protoc-c into $(BUILD)/proto, never committed.
PROTO_DIR := userspace/lib/xds/proto
PROTOS := $(patsubst $(PROTO_DIR)/%,%,$(shell find $(PROTO_DIR) -name '*.proto' | sort))
PB_SRCS := $(PROTOS:%.proto=$(BUILD)/proto/%.pb-c.c)
PB_HDRS := $(PROTOS:%.proto=$(BUILD)/proto/%.pb-c.h)
PB_OBJS := $(PROTOS:%.proto=$(BUILD)/obj/proto/%.pb-c.o)
LIB_OBJS += $(PB_OBJS)
LIB := $(BUILD)/libzmesh.a

BINS := ztunnel waypoint zmeshctl zmesh-ca zmesh-cni
BIN_PATHS := $(BINS:%=$(BUILD)/bin/%)

# BPF objects used only by tests (stand-ins for other parties' programs).
TEST_BPF_SRCS := $(wildcard tests/bpf/*.bpf.c)
TEST_BPF_OBJS := $(TEST_BPF_SRCS:tests/bpf/%.bpf.c=$(BUILD)/tests/bpf/%.bpf.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)
UNIT_BINS := $(UNIT_SRCS:tests/%.c=$(BUILD)/tests/%)
BPFT_BINS := $(BPFT_SRCS:tests/%.c=$(BUILD)/tests/%)
TOOL_BINS := $(TOOL_SRCS:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

ALL_OBJS := $(LIB_OBJS) $(foreach b,$(BINS),$(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard userspace/$(b)/*.c))) \
	$(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(BPFT_SRCS:%.c=$(BUILD)/obj/%.o) $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: all prereqs test test-unit test-bpf test-integration test-samples samples-check \
	test-conformance bench soak demo lint fuzz image clean help FORCE
all: prereqs $(SKELS) $(BIN_PATHS) $(UNIT_BINS) $(BPFT_BINS) $(TOOL_BINS) $(TEST_BPF_OBJS)

# Missing build prerequisites stop here with what to install, not deep inside a recipe.
prereqs:
	$(Q)scripts/check-prereqs.sh build

# vmlinux.h comes from the running kernel's BTF and is replaced only when it changes, so a
# rebuild on the same kernel recompiles nothing.
$(BUILD)/vmlinux.h: FORCE | $(BUILD)/.dir
	$(msg) GEN $@
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:

# The source revision baked into every binary (common/version.c): a stamp file rewritten only
# when `git describe` changes, so an unchanged tree recompiles and relinks nothing.
$(BUILD)/zm-revision: FORCE | $(BUILD)/.dir
	$(Q)echo "$$(git describe --always --dirty 2>/dev/null || echo unknown)" > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/userspace/lib/common/version.o: userspace/lib/common/version.c $(BUILD)/zm-revision
	$(msg) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -DZM_GIT_REVISION="\"$$(cat $(BUILD)/zm-revision)\"" $(CFLAGS) \
		-MMD -MP -c $< -o $@

$(BUILD)/bpf/%.tmp.o: bpf/%.bpf.c $(BUILD)/vmlinux.h
	$(msg) BPF $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/bpf/%.bpf.o: tests/bpf/%.bpf.c $(BUILD)/vmlinux.h
	$(msg) BPF $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.bpf.o: $(BUILD)/bpf/%.tmp.o
	$(msg) LINK $@
	$(Q)$(BPFTOOL) gen object $@ $<

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(msg) SKEL $@
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(BUILD)/obj/%.o: %.c | $(SKELS) $(PB_HDRS)
	$(msg) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# One protoc-c run makes both files of a proto (a grouped pattern rule).
$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: $(PROTO_DIR)/%.proto
	$(msg) PROTOC $<
	$(Q)mkdir -p $(BUILD)/proto
	$(Q)protoc-c --proto_path=$(PROTO_DIR) --c_out=$(BUILD)/proto $*.proto

$(BUILD)/obj/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c | $(PB_HDRS)
	$(msg) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(msg) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

define bin_rule
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard userspace/$(1)/*.c)) $(LIB)
	$$(msg) LD $$@
	$$(Q)mkdir -p $$(@D)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach b,$(BINS),$(eval $(call bin_rule,$(b))))

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIB)
	$(msg) LD $@
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/.dir:
	$(Q)mkdir -p $(BUILD)/bpf $(BUILD)/bin && touch $@

# Fuzz targets: clang + libFuzzer + ASan/UBSan over the library sources.
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-Iinclude -Iuserspace/lib -I$(BUILD)/bpf -I$(BUILD) -I$(BUILD)/proto
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(PB_SRCS) | $(SKELS) $(PB_HDRS)
	$(msg) FUZZ $@
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRCS) $(PB_SRCS) $(LDLIBS)
fuzz: $(FUZZ_BINS)
	$(Q)scripts/fuzz.sh $(FUZZ_BINS)

test: all
	$(Q)BUILD=$(BUILD) tests/run.sh
test-unit: all
	$(Q)BUILD=$(BUILD) tests/run.sh unit
test-bpf: all
	$(Q)BUILD=$(BUILD) tests/run.sh bpf
test-integration: all
	$(Q)BUILD=$(BUILD) tests/run.sh integration

image: all
	$(Q)BUILD=$(BUILD) scripts/image.sh

bench: all
	$(Q)BUILD=$(BUILD) scripts/bench.sh

# About ten minutes of mixed traffic while ztunnels are upgraded and killed, the CA restarted,
# policies and configs churned; per fault what was lost, then "N passed, N failed".
soak: all
	$(Q)BUILD=$(BUILD) scripts/soak.sh

# ISTIO_SAMPLES=DIR: the bookinfo scene (and test-samples) on Istio's published samples/ tree
# instead of the project's own tests/data/samples; ZTUNNEL_EXAMPLES=DIR adds the reference
# ztunnel's local-config examples to test-samples. Checked before anything runs.
samples-check:
	$(Q)ISTIO_SAMPLES="$(ISTIO_SAMPLES)" tests/lib/samples.sh check >/dev/null

demo: all samples-check
	$(Q)BUILD=$(BUILD) scripts/demo.sh
	$(Q)BUILD=$(BUILD) ISTIO_SAMPLES="$(ISTIO_SAMPLES)" scripts/demo-waypoint.sh

test-samples: all
	$(Q)BUILD=$(BUILD) ISTIO_SAMPLES="$(ISTIO_SAMPLES)" ZTUNNEL_EXAMPLES="$(ZTUNNEL_EXAMPLES)" \
		tests/run.sh samples

# ISTIO_CONFORMANCE=DIR: Istio's own routing and authorization cases, read by path; a
# missing or wrong DIR is one line naming the path and the file expected, and exit 2.
test-conformance: all
	$(Q)ISTIO_CONFORMANCE="$(ISTIO_CONFORMANCE)" tests/lib/conformance.sh check >/dev/null
	$(Q)BUILD=$(BUILD) ISTIO_CONFORMANCE="$(ISTIO_CONFORMANCE)" tests/run.sh conformance

lint:
	$(Q)scripts/lint.sh

clean:
	$(msg) CLEAN build
	$(Q)rm -rf build build-san

help:
	@sed -n '3,/^[^#]/{/^#/p}' Makefile | sed 's/^# \{0,1\}//'

# Unknown targets get a list of the real ones instead of make's terse message.
.DEFAULT:
	@echo "make: unknown target '$@'. Targets: all test test-unit test-bpf test-integration test-samples test-conformance bench soak demo lint fuzz image clean help (SANITIZE=1, V=1)" >&2
	@exit 2

-include $(wildcard $(ALL_OBJS:.o=.d) $(BPF_NAMES:%=$(BUILD)/bpf/%.tmp.d))
