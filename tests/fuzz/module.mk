# tests/fuzz/: libFuzzer targets (clang -fsanitize=fuzzer,address,undefined)
# for every /proc, /sys and configuration parser.  The library sources they
# need are rebuilt with clang and the fuzzer's instrumentation under
# $(O)/fuzz/obj (the gcc objects of $(LIBKW) cannot be instrumented).
# tests/system/test_fuzz.py runs each target for a bounded time (part of `make
# test`); `make fuzz` runs them longer (FUZZ_SECONDS per target).
FUZZ_SRCS     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS     := $(FUZZ_SRCS:tests/fuzz/%.c=$(O)/fuzz/%)
FUZZ_LIB_SRCS := $(COMMON_SRCS) collectd-plugin/kwcd.c collectd-plugin/kwcd_virt.c collectd-plugin/kw_ignorelist.c \
		 netdata-plugin/nd_conf.c netdata-plugin/nd_chart.c netdata-plugin/nd_cgroup.c netdata-plugin/kw_pattern.c
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(O)/fuzz/obj/%.o)
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   := -O1 -g $(WARN) -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
		 -I$(CURDIR)/common -I$(CURDIR)/$(O) -I$(CURDIR)/bpf -I$(CURDIR)/$(O)/bpf \
		 -I$(CURDIR)/collectd-plugin -I$(CURDIR)/netdata-plugin -I$(CURDIR)/tests/fuzz $(LIBVIRT_CFLAGS)
FUZZ_SECONDS  ?= 60

$(O)/fuzz/obj/common/kvm/kw_bpf.o: $(BPF_SKELS)

$(O)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(O)/fuzz/%: $(O)/fuzz/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJS)
	$(CLANG) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(COMMON_LIBS)

.SECONDARY: $(FUZZ_LIB_OBJS) $(FUZZ_SRCS:%.c=$(O)/fuzz/obj/%.o)
TEST_DEPS += $(FUZZ_BINS)

.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	KW_BUILD=$(CURDIR)/$(O) KW_FUZZ_SECONDS=$(FUZZ_SECONDS) $(PYTEST) -ra -p no:cacheprovider tests/system/test_fuzz.py
