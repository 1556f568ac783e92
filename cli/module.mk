# cli/: the kvmwatch command.
CLI_SRCS := $(sort $(wildcard cli/*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(O)/%.o)
KVMWATCH := $(O)/kvmwatch

$(O)/cli/demo.o: KW_CFLAGS += $(GUEST_CFLAGS)

# kvmwatch top draws with ncurses (wide characters: sparklines, names).
CURSES_CFLAGS := $(shell $(PKG_CONFIG) --cflags ncursesw 2>/dev/null)
CURSES_LIBS   := $(shell $(PKG_CONFIG) --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
$(O)/cli/top.o $(O)/cli/top_draw.o: KW_CFLAGS += $(CURSES_CFLAGS)
# kvmwatch serve: HTTP through libmicrohttpd.
MHD_CFLAGS := $(shell $(PKG_CONFIG) --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS   := $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
$(O)/cli/serve.o: KW_CFLAGS += $(MHD_CFLAGS)
$(O)/cli/prom.o: $(O)/kw_version.h

$(KVMWATCH): $(CLI_OBJS) $(LIBKWGUEST) $(LIBKW)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIBKWGUEST) $(LIBKW) $(COMMON_LIBS) $(CURSES_LIBS) $(MHD_LIBS)

ALL_TARGETS += $(KVMWATCH)
TEST_DEPS += $(KVMWATCH)

# Where `make install` puts the man page and the systemd unit of `serve`
# (PREFIX=/usr gives Debian's /lib/systemd/system).
MANDIR          ?= $(PREFIX)/share/man
SYSTEMD_UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)

install: install-cli
install-cli: $(KVMWATCH) docs/man/kvmwatch.8 contrib/kvmwatch-serve.service contrib/kvmwatch.bash-completion
	install -D -m 0755 $(KVMWATCH) $(DESTDIR)$(PREFIX)/bin/kvmwatch
	install -D -m 0644 contrib/kvmwatch.bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/kvmwatch
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMD_UNITDIR)
	sed 's|@VERSION@|$(KW_VERSION)|' docs/man/kvmwatch.8 > $(DESTDIR)$(MANDIR)/man8/kvmwatch.8
	sed 's|@BINDIR@|$(PREFIX)/bin|' contrib/kvmwatch-serve.service > $(DESTDIR)$(SYSTEMD_UNITDIR)/kvmwatch-serve.service
