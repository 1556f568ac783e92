# netdata-plugin/: kvmwatch.plugin, the netdata external plugin.
ND_SRCS   := $(sort $(wildcard netdata-plugin/*.c))
ND_OBJS   := $(ND_SRCS:%.c=$(O)/%.o)
ND_PLUGIN := $(O)/kvmwatch.plugin

$(ND_OBJS): KW_CFLAGS += -I$(CURDIR)/netdata-plugin

$(ND_PLUGIN): $(ND_OBJS) $(LIBKW)
	$(CC) $(KW_LDFLAGS) $(LDFLAGS) -o $@ $(ND_OBJS) $(LIBKW) $(COMMON_LIBS)

ALL_TARGETS += $(ND_PLUGIN)
TEST_DEPS   += $(ND_PLUGIN)

# Where netdata looks for plugins and its stock configuration depends on who
# packaged it (NETDATA_FLAVOUR):
#   debian   Debian's and Ubuntu's netdata packages:
#            /usr/lib/netdata/plugins.d, /usr/lib/netdata/conf.d (user: /etc/netdata)
#   netdata  netdata's own .deb/.rpm packages and netdata-installer.sh builds:
#            /usr/libexec/netdata/plugins.d, /usr/lib/netdata/conf.d (user: /etc/netdata)
#   static   netdata's static build (kickstart.sh --static-only) in /opt/netdata:
#            /opt/netdata/usr/libexec/netdata/plugins.d,
#            /opt/netdata/usr/lib/netdata/conf.d (user: /opt/netdata/etc/netdata)
#   auto     (default) static, netdata or debian: the first whose plugins
#            directory exists under NETDATA_DETECT_ROOT (default /); debian if none
# NETDATA_PLUGINS_DIR / NETDATA_STOCK_CONFIG_DIR override a flavour's paths.
NETDATA_FLAVOUR          ?= auto
NETDATA_DETECT_ROOT      ?=
ifeq ($(NETDATA_FLAVOUR),auto)
ND_FLAVOUR := $(shell if [ -d '$(NETDATA_DETECT_ROOT)/opt/netdata/usr/libexec/netdata/plugins.d' ]; then echo static; \
	elif [ -d '$(NETDATA_DETECT_ROOT)/usr/libexec/netdata/plugins.d' ]; then echo netdata; else echo debian; fi)
else
ND_FLAVOUR := $(NETDATA_FLAVOUR)
endif
ifeq ($(ND_FLAVOUR),debian)
NETDATA_PLUGINS_DIR      ?= /usr/lib/netdata/plugins.d
NETDATA_STOCK_CONFIG_DIR ?= /usr/lib/netdata/conf.d
else ifeq ($(ND_FLAVOUR),netdata)
NETDATA_PLUGINS_DIR      ?= /usr/libexec/netdata/plugins.d
NETDATA_STOCK_CONFIG_DIR ?= /usr/lib/netdata/conf.d
else ifeq ($(ND_FLAVOUR),static)
NETDATA_PLUGINS_DIR      ?= /opt/netdata/usr/libexec/netdata/plugins.d
NETDATA_STOCK_CONFIG_DIR ?= /opt/netdata/usr/lib/netdata/conf.d
else
$(error NETDATA_FLAVOUR=$(NETDATA_FLAVOUR): expected auto, debian, netdata or static)
endif
# netdata's stock health directory ([directories] stock health config)
NETDATA_STOCK_HEALTH_DIR ?= $(NETDATA_STOCK_CONFIG_DIR)/health.d
NETDATA_GROUP            ?= netdata
# Least privilege instead of setuid root: read other users' /proc/PID/{fd,io}
# and reach their KVM fds (ptrace), read tracefs/debugfs-protected files
# (dac_read_search), load and read eBPF programs (bpf, perfmon).
NETDATA_PLUGIN_CAPS      ?= cap_dac_read_search,cap_sys_ptrace,cap_bpf,cap_perfmon+ep
SETCAP                   ?= setcap

.PHONY: install-netdata
install: install-netdata
install-netdata: $(ND_PLUGIN) docs/man/kvmwatch.plugin.8
	@echo "kvmwatch.plugin: netdata flavour $(ND_FLAVOUR): $(NETDATA_PLUGINS_DIR), $(NETDATA_STOCK_CONFIG_DIR)"
	install -D -m 0750 $(ND_PLUGIN) $(DESTDIR)$(NETDATA_PLUGINS_DIR)/kvmwatch.plugin
	install -d $(DESTDIR)$(MANDIR)/man8
	sed 's|@VERSION@|$(KW_VERSION)|' docs/man/kvmwatch.plugin.8 > $(DESTDIR)$(MANDIR)/man8/kvmwatch.plugin.8
	install -D -m 0644 netdata-plugin/kvmwatch.conf $(DESTDIR)$(NETDATA_STOCK_CONFIG_DIR)/kvmwatch.conf
	install -D -m 0644 netdata-plugin/health.d/kvmwatch.conf $(DESTDIR)$(NETDATA_STOCK_HEALTH_DIR)/kvmwatch.conf
	@if [ "$$(id -u)" = 0 ] && getent group $(NETDATA_GROUP) >/dev/null; then \
		chown root:$(NETDATA_GROUP) $(DESTDIR)$(NETDATA_PLUGINS_DIR)/kvmwatch.plugin && \
		chmod 0750 $(DESTDIR)$(NETDATA_PLUGINS_DIR)/kvmwatch.plugin; \
	else \
		echo "kvmwatch.plugin: not root or no group '$(NETDATA_GROUP)': run 'chown root:$(NETDATA_GROUP)' on the installed plugin" >&2; \
	fi
	@if command -v $(SETCAP) >/dev/null 2>&1; then \
		$(SETCAP) $(NETDATA_PLUGIN_CAPS) $(DESTDIR)$(NETDATA_PLUGINS_DIR)/kvmwatch.plugin || \
		echo "kvmwatch.plugin: setcap failed: run '$(SETCAP) $(NETDATA_PLUGIN_CAPS)' on the installed plugin as root" >&2; \
	else \
		echo "kvmwatch.plugin: setcap not found (Debian: libcap2-bin): the plugin has no capabilities and sees only VMs of its own user" >&2; \
	fi
