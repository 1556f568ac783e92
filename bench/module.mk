# bench/: kvmwatch's benchmarks (`make bench`, `make bench-short`).
# kwbench times kw_collector_collect(); fakeqemu is a QEMU look-alike process
# (also used by the soak and hostile-input tests).  bench/run drives them, the
# CLI, the plugins and real KVM guests and prints a table + JSON.
KWBENCH  := $(O)/bench/kwbench
FAKEQEMU := $(O)/bench/fakeqemu
BENCH_JSON ?= $(CURDIR)/$(O)/bench.json

$(KWBENCH): $(O)/bench/kwbench.o $(LIBKW)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $^ $(COMMON_LIBS)

$(FAKEQEMU): $(O)/bench/fakeqemu.o
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $^ -lpthread

ALL_TARGETS += $(KWBENCH) $(FAKEQEMU)
TEST_DEPS   += $(KWBENCH) $(FAKEQEMU)

.PHONY: bench bench-short
bench: all
	KW_BUILD=$(CURDIR)/$(O) /usr/bin/python3 bench/run --json $(BENCH_JSON) $(BENCH_ARGS)

bench-short: all
	KW_BUILD=$(CURDIR)/$(O) /usr/bin/python3 bench/run --short --json $(BENCH_JSON) $(BENCH_ARGS)
