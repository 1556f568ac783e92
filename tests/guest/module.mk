# tests/guest/: kvmguest, the CLI around guest/kw_guest.c used by tests.
KVMGUEST := $(O)/tests/kvmguest

$(O)/tests/guest/kvmguest.o: KW_CFLAGS += $(GUEST_CFLAGS)

$(KVMGUEST): $(O)/tests/guest/kvmguest.o $(LIBKWGUEST) $(LIBKW)
	@mkdir -p $(dir $@)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $^ -lpthread

ALL_TARGETS += $(KVMGUEST)
TEST_DEPS   += $(KVMGUEST)
