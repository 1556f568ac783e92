# common/: the collection library, linked by every front end.
COMMON_SRCS := $(sort $(wildcard common/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(O)/%.o)
LIBKW       := $(O)/libkwcommon.a

$(O)/common/%.o: CFLAGS += $(LIBVIRT_CFLAGS)

$(LIBKW): $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

ALL_TARGETS += $(LIBKW)
