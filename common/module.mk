# common/: the collection library, linked by every front end.
#   core/     the collector, its configuration, the VM table, the metric table (rows: *.def)
#   sources/  one file per source (procfs, libvirt, kvmstat, bpf, qmp) filling the tables
#   kvm/      what the sources speak: eBPF loader, event decoders, binary-stats reader, QMP, JSON
#   util/     logging, parsing, privileges
# Headers are included by their folder: #include "core/kw_collector.h".
COMMON_SRCS := $(sort $(wildcard common/*/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(O)/%.o)
LIBKW       := $(O)/libkwcommon.a

$(O)/common/%.o: KW_CFLAGS += $(LIBVIRT_CFLAGS)

$(LIBKW): $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

ALL_TARGETS += $(LIBKW)
