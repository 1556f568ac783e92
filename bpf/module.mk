# bpf/: kvmwatch's BPF programs (libbpf CO-RE).  Each bpf/X.bpf.c becomes
# $(O)/bpf/X.bpf.o and a skeleton $(O)/bpf/X.skel.h that
# common/kvm/kw_bpf.c includes.
#
# vmlinux.h: the one shipped for the architecture (bpf/vmlinux/, dumped once
# from a kernel with BTF and KVM, as libbpf-tools ships theirs), so a build
# depends neither on the build host's kernel nor on its BTF; CO-RE relocates
# against the running kernel's BTF at load time.  VMLINUX_BTF=path builds
# from that BTF instead (plus KVM_BTF, the kvm module's, when KVM is a
# module); `make refresh-vmlinux` re-dumps the shipped header from this host.
BPF_ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
SHIPPED_VMLINUX := bpf/vmlinux/vmlinux_$(BPF_ARCH).h
ifeq ($(origin VMLINUX_BTF),undefined)
VMLINUX_SHIPPED := $(wildcard $(SHIPPED_VMLINUX))
endif
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
KVM_BTF     ?= $(wildcard /sys/kernel/btf/kvm)
BPF_SRCS    := $(sort $(wildcard bpf/*.bpf.c))
BPF_OBJS    := $(BPF_SRCS:%.bpf.c=$(O)/%.bpf.o)
BPF_SKELS   := $(BPF_SRCS:%.bpf.c=$(O)/%.skel.h)
BPF_CFLAGS  := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror \
	       -I$(O)/bpf -Ibpf

define dump_vmlinux
	@test -r $(VMLINUX_BTF) || { echo "error: kernel BTF $(VMLINUX_BTF) not readable: kvmwatch's BPF programs need a kernel with CONFIG_DEBUG_INFO_BTF=y (or set VMLINUX_BTF=path)" >&2; exit 1; }
	$(if $(KVM_BTF),$(BPFTOOL) -B $(VMLINUX_BTF) btf dump file $(KVM_BTF) format c > $(1).tmp,$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $(1).tmp)
	mv $(1).tmp $(1)
endef

ifneq ($(VMLINUX_SHIPPED),)
$(O)/bpf/vmlinux.h: $(VMLINUX_SHIPPED)
	@mkdir -p $(dir $@)
	cp $< $@
else
$(O)/bpf/vmlinux.h:
	@mkdir -p $(dir $@)
	$(call dump_vmlinux,$@)
endif

.PHONY: refresh-vmlinux
refresh-vmlinux:
	@mkdir -p bpf/vmlinux
	$(call dump_vmlinux,$(SHIPPED_VMLINUX))

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
