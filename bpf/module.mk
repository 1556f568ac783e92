# bpf/: kvmwatch's BPF programs (libbpf CO-RE).  vmlinux.h is generated at
# build time from the running kernel's BTF (plus the kvm module's BTF when KVM
# is a module); each bpf/X.bpf.c becomes $(O)/bpf/X.bpf.o and a skeleton
# $(O)/bpf/X.skel.h that common/kvm/kw_bpf.c includes.
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
KVM_BTF     ?= $(wildcard /sys/kernel/btf/kvm)
BPF_ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_SRCS    := $(sort $(wildcard bpf/*.bpf.c))
BPF_OBJS    := $(BPF_SRCS:%.bpf.c=$(O)/%.bpf.o)
BPF_SKELS   := $(BPF_SRCS:%.bpf.c=$(O)/%.skel.h)
BPF_CFLAGS  := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror \
	       -I$(O)/bpf -Ibpf

$(O)/bpf/vmlinux.h:
	@mkdir -p $(dir $@)
	@test -r $(VMLINUX_BTF) || { echo "error: kernel BTF $(VMLINUX_BTF) not readable: kvmwatch's BPF programs need a kernel with CONFIG_DEBUG_INFO_BTF=y (or set VMLINUX_BTF=path)" >&2; exit 1; }
	$(if $(KVM_BTF),$(BPFTOOL) -B $(VMLINUX_BTF) btf dump file $(KVM_BTF) format c > $@.tmp,$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp)
	mv $@.tmp $@

$(O)/bpf/%.bpf.o: bpf/%.bpf.c bpf/kvmwatch.h bpf/kw_helpers.bpf.h $(O)/bpf/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp
	mv $@.tmp $@

# The loader includes the skeletons and bpf/kvmwatch.h; the bpf source and
# the decoders read the BPF ABI (bpf/kvmwatch.h).
$(O)/common/kvm/kw_bpf.o: $(BPF_SKELS)
$(O)/common/kvm/kw_bpf.o: KW_CFLAGS += -I$(CURDIR)/bpf -I$(CURDIR)/$(O)/bpf
$(O)/common/sources/kw_src_bpf.o $(O)/common/kvm/kw_decode.o: KW_CFLAGS += -I$(CURDIR)/bpf

ALL_TARGETS += $(BPF_SKELS)
.SECONDARY: $(BPF_OBJS) $(O)/bpf/vmlinux.h

# The CLI's event modes read the BPF ABI structs.
$(O)/cli/events.o $(O)/cli/ev_%.o: KW_CFLAGS += -I$(CURDIR)/bpf
