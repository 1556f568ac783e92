// SPDX-License-Identifier: GPL-2.0
/* The netdata plugin's kvmwatch.conf parser (nd_conf_load reads the input
 * as the file) and its sanitisers (chart type/id, quoted text). */
#include "fuzz.h"
#include "nd_chart.h"
#include "kvm/kw_bpf.h"
#include "nd_conf.h"

#include <sys/mman.h>
#include <unistd.h>

static void check_charset(const char *s, const char *allowed, size_t max)
{
	FUZZ_CHECK(strlen(s) <= max);
	FUZZ_CHECK(strspn(s, allowed) == strlen(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char id_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
	struct nd_conf cf;
	char path[64], *s, out[512];
	size_t i;
	int fd;

	fuzz_init();
	fd = memfd_create("kvmwatch.conf", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nd_conf_defaults(&cf);
	nd_conf_load(&cf, path);
	close(fd);
	FUZZ_CHECK(cf.update_every >= 0 && cf.update_every <= 86400);
	FUZZ_CHECK(memchr(cf.vms, '\0', sizeof(cf.vms)));
	FUZZ_CHECK(memchr(cf.libvirt_uri, '\0', sizeof(cf.libvirt_uri)));
	FUZZ_CHECK(cf.sources < (1u << KW_SRC__N) && cf.bpf_features < (1u << KW_BPF__N));

	s = fuzz_str(data, size);
	nd_sanitize_type(out, sizeof(out), s);
	FUZZ_CHECK(!strncmp(out, "kvm_", 4));
	check_charset(out, "abcdefghijklmnopqrstuvwxyz0123456789_-", sizeof(out) - 1);
	nd_sanitize_id(out, sizeof(out), s, 100);
	check_charset(out, id_chars, 100);
	nd_sanitize_text(out, sizeof(out), s, 200);
	FUZZ_CHECK(strlen(out) <= 200);
	for (i = 0; out[i]; i++)
		FUZZ_CHECK((unsigned char)out[i] >= 0x20 && out[i] != '"' && out[i] != '\\' && out[i] != 0x7f);
	free(s);
	return 0;
}
