# tests/qmp/: kwqmptest, a driver for the JSON reader, the QMP socket part of
# the QEMU command-line parser and the QMP client (tests/test_qmp.py).
KWQMPTEST := $(O)/tests/kwqmptest

$(KWQMPTEST): $(O)/tests/qmp/kwqmptest.o $(LIBKW)
	@mkdir -p $(dir $@)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $^ $(COMMON_LIBS)

ALL_TARGETS += $(KWQMPTEST)
TEST_DEPS   += $(KWQMPTEST)
