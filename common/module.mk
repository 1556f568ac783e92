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

# Every exit code the kernel's uapi headers define (common/kvm/exit_defines.sh):
# kw_decode.c names the ones VMX_EXIT_REASONS/SVM_EXIT_REASONS leave out.  The
# .d file written with it lists the headers, so an update regenerates it.
$(O)/kw_exit_defines.h: common/kvm/exit_defines.sh
	@mkdir -p $(dir $@)
	CC="$(CC)" CPPFLAGS="$(CPPFLAGS)" DEPS=$@.d TARGET=$@ sh common/kvm/exit_defines.sh > $@.tmp
	mv $@.tmp $@
$(O)/common/kvm/kw_decode.o: $(O)/kw_exit_defines.h
