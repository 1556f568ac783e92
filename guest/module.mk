# guest/: the project's own KVM guest (a real VM through /dev/kvm with
# known exits, faults, MMIO, dirty pages, interrupts), for the CLI's demo and
# the tests.  Not part of libkwcommon.a: the plugins do not link it.
GUEST_SRCS := $(sort $(wildcard guest/*.c))
GUEST_OBJS := $(GUEST_SRCS:%.c=$(O)/%.o)
LIBKWGUEST := $(O)/libkwguest.a
GUEST_CFLAGS := -I$(CURDIR)/guest

$(LIBKWGUEST): $(GUEST_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

ALL_TARGETS += $(LIBKWGUEST)
