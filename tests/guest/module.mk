# tests/guest/: kvmguest, the CLI around common/kw_guest.c used by tests.
KVMGUEST := $(O)/tests/kvmguest

$(KVMGUEST): $(O)/tests/guest/kvmguest.o $(LIBKW)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread

ALL_TARGETS += $(KVMGUEST)
TEST_DEPS   += $(KVMGUEST)
