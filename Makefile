# kvmwatch top-level Makefile.
# Every directory contributes a module.mk fragment; this file only sets the
# common flags and the top-level targets.  `make SAN=1` builds everything with
# ASan+UBSan into build-san/.
CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?= 0

ifeq ($(SAN),1)
O       ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
O       ?= build
SANFLAGS :=
endif

# Warnings are errors in the development and CI build (WERROR=1, the
# default); packagers build with WERROR=0.  CPPFLAGS, CFLAGS and LDFLAGS
# from the command line or the environment (dpkg-buildflags) come after the
# project's own flags, which they never replace.
WERROR  ?= 1
WARN    := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -Wno-unused-parameter -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
KW_CFLAGS  = $(WARN) -std=gnu11 -D_GNU_SOURCE -fPIC $(SANFLAGS) -I$(CURDIR)/common -I$(CURDIR)/$(O)
KW_LDFLAGS = $(SANFLAGS)

LIBVIRT_CFLAGS := $(shell $(PKG_CONFIG) --cflags libvirt libxml-2.0 2>/dev/null)
LIBVIRT_LIBS   := $(shell $(PKG_CONFIG) --libs libvirt libxml-2.0 2>/dev/null)
BPF_LIBS       := $(shell $(PKG_CONFIG) --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)

# Libraries every front end links besides libkwcommon.a.
COMMON_LIBS = $(BPF_LIBS) $(LIBVIRT_LIBS) -lcap -lpthread -lm

# The version, from one place: VERSION (kvmwatch --version, kvmwatch.plugin -V).
KW_VERSION := $(shell cat $(CURDIR)/VERSION)

ALL_TARGETS :=
TEST_DEPS   :=
CLEAN_FILES :=

.PHONY: all test test-san clean install
all:

# common/ and guest/ first: the other fragments refer to $(LIBKW) and
# $(LIBKWGUEST) in prerequisites.
include common/module.mk guest/module.mk
MODULE_MKS := $(filter-out common/module.mk guest/module.mk,$(sort $(wildcard */module.mk */*/module.mk)))
include $(MODULE_MKS)

all: $(ALL_TARGETS)

$(O)/kw_version.h: VERSION
	@mkdir -p $(dir $@)
	printf '#define KW_VERSION "%s"\n' "$(KW_VERSION)" > $@
$(O)/cli/main.o $(O)/netdata-plugin/nd_main.o: $(O)/kw_version.h

# The test command (README and .ci/run use `make test`).
PYTEST ?= /usr/bin/python3 -m pytest
test: all $(TEST_DEPS)
	KW_BUILD=$(CURDIR)/$(O) $(PYTEST) -ra -p no:cacheprovider tests $(PYTEST_ARGS)

test-san:
	$(MAKE) SAN=1 test

clean:
	rm -rf build build-san

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KW_CFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(O) -name '*.d' 2>/dev/null)
