# cli/: the kvmwatch command.
CLI_SRCS := $(sort $(wildcard cli/*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(O)/%.o)
KVMWATCH := $(O)/kvmwatch

$(O)/cli/demo.o: CFLAGS += $(GUEST_CFLAGS)

# kvmwatch top draws with ncurses (wide characters: sparklines, names).
CURSES_CFLAGS := $(shell $(PKG_CONFIG) --cflags ncursesw 2>/dev/null)
CURSES_LIBS   := $(shell $(PKG_CONFIG) --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
$(O)/cli/top.o $(O)/cli/top_draw.o: CFLAGS += $(CURSES_CFLAGS)

$(KVMWATCH): $(CLI_OBJS) $(LIBKWGUEST) $(LIBKW)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIBKWGUEST) $(LIBKW) $(COMMON_LIBS) $(CURSES_LIBS)

ALL_TARGETS += $(KVMWATCH)
TEST_DEPS += $(KVMWATCH)

install: install-cli
install-cli: $(KVMWATCH)
	install -D -m 0755 $(KVMWATCH) $(DESTDIR)$(PREFIX)/bin/kvmwatch
