# collectd-plugin/: kvmwatch.so, a collectd 5.x read plugin publishing the
# metric table.  kvmwatch.c is the only file built against collectd's headers
# (its config.h defines hundreds of macros); kwcd.c holds the logic and builds
# like the rest of the tree.
COLLECTD_INCLUDE ?= /usr/include/collectd
COLLECTD_CFLAGS  := -DHAVE_CONFIG_H -I$(COLLECTD_INCLUDE)
# Where `make install` puts the plugin and its example configuration.
# PREFIX=/usr gives Debian's paths (/usr/lib/collectd, /etc/collectd/collectd.conf.d).
COLLECTD_PLUGINDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/collectd,$(PREFIX)/lib/collectd)
COLLECTD_CONFDIR   ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)/collectd/collectd.conf.d

CD_SO        := $(O)/collectd-plugin/kvmwatch.so
CD_GLUE_OBJ  := $(O)/collectd-plugin/kvmwatch.o
CD_LOGIC_OBJ := $(O)/collectd-plugin/kwcd.o $(O)/collectd-plugin/kwcd_virt.o $(O)/collectd-plugin/kw_ignorelist.o
CD_TEST_KWCD := $(O)/collectd-plugin/tests/test_kwcd
CD_TEST_GLUE := $(O)/collectd-plugin/tests/test_glue

$(CD_GLUE_OBJ) $(O)/collectd-plugin/tests/mock_plugin.o: KW_CFLAGS += $(COLLECTD_CFLAGS)
$(CD_LOGIC_OBJ) $(O)/collectd-plugin/tests/%.o: KW_CFLAGS += -I$(CURDIR)/collectd-plugin
$(O)/collectd-plugin/tests/%.o: KW_CFLAGS += -I$(CURDIR)/tests

# Only module_register is exported: the library inside stays private to the
# plugin (no clash with collectd or other plugins).
CD_MAP := collectd-plugin/kvmwatch.map

$(CD_SO): $(CD_GLUE_OBJ) $(CD_LOGIC_OBJ) $(LIBKW) $(CD_MAP)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -shared -Wl,--version-script=$(CD_MAP) \
		-o $@ $(CD_GLUE_OBJ) $(CD_LOGIC_OBJ) $(LIBKW) $(COMMON_LIBS)

$(CD_TEST_KWCD): $(O)/collectd-plugin/tests/test_kwcd.o $(CD_LOGIC_OBJ) $(LIBKW)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $^ $(COMMON_LIBS)

$(CD_TEST_GLUE): $(O)/collectd-plugin/tests/mock_plugin.o $(CD_GLUE_OBJ) $(CD_LOGIC_OBJ) $(LIBKW)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $^ $(COMMON_LIBS)

# docs/collectd-metrics.md is generated from the tables (a test compares).
CD_DOC := $(O)/collectd-plugin/kwcd_doc
$(O)/collectd-plugin/kwcd_doc.o: KW_CFLAGS += -I$(CURDIR)/collectd-plugin
$(CD_DOC): $(O)/collectd-plugin/kwcd_doc.o $(CD_LOGIC_OBJ) $(LIBKW)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $^ $(COMMON_LIBS)
.PHONY: collectd-doc
collectd-doc: $(CD_DOC)
	$(CD_DOC) /usr/share/collectd/types.db > docs/collectd-metrics.md

ALL_TARGETS += $(CD_SO)
TEST_DEPS   += $(CD_SO) $(CD_TEST_KWCD) $(CD_TEST_GLUE) $(CD_DOC)

.PHONY: install-collectd
install: install-collectd
COLLECTD_DOCDIR ?= $(PREFIX)/share/doc/collectd-kvmwatch
install-collectd: $(CD_SO) collectd-plugin/kvmwatch.conf docs/man/collectd-kvmwatch.5
	install -D -m 0644 $(CD_SO) $(DESTDIR)$(COLLECTD_PLUGINDIR)/kvmwatch.so
	install -D -m 0644 docs/collectd-metrics.md $(DESTDIR)$(COLLECTD_DOCDIR)/collectd-metrics.md
	install -d $(DESTDIR)$(MANDIR)/man5
	sed 's|@VERSION@|$(KW_VERSION)|' docs/man/collectd-kvmwatch.5 > $(DESTDIR)$(MANDIR)/man5/collectd-kvmwatch.5
	install -D -m 0644 collectd-plugin/kvmwatch.conf $(DESTDIR)$(COLLECTD_CONFDIR)/kvmwatch.conf
