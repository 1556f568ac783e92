// SPDX-License-Identifier: GPL-2.0
/* The libvirt source's readers of what a domain's owner writes: the domain
 * XML (interfaces with a target: name, MAC, number) and a metadata element
 * with an XPath into it (HostnameFormat metadata).
 *
 * Input: "XPATH\nXML"; the XML is read both as a domain and as metadata.
 * Every value must be NUL-terminated within its field, numbers 1-based and
 * increasing. */
#include "fuzz.h"
#include "sources/kw_src_libvirt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *nl = strchr(s, '\n'), out[128];
	const char *xpath = "", *xml = s;
	struct kw_lv_iface ifs[KW_LV_IFACES_MAX];
	int n, i;

	if (nl) {
		*nl = '\0';
		xpath = s;
		xml = nl + 1;
	}
	n = kw_libvirt_xml_ifaces(xml, ifs, KW_LV_IFACES_MAX);
	FUZZ_CHECK(n <= KW_LV_IFACES_MAX);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(memchr(ifs[i].name, '\0', sizeof(ifs[i].name)) && ifs[i].name[0]);
		FUZZ_CHECK(memchr(ifs[i].mac, '\0', sizeof(ifs[i].mac)));
		FUZZ_CHECK(ifs[i].number >= 1 && (i == 0 || ifs[i].number > ifs[i - 1].number));
	}
	if (kw_libvirt_meta_value(xml, xpath, out, sizeof(out)) == 0)
		FUZZ_CHECK(strlen(out) < sizeof(out));
	else
		FUZZ_CHECK(out[0] == '\0');
	free(s);
	return 0;
}
