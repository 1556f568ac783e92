// SPDX-License-Identifier: GPL-2.0
/* The collectd plugin's configuration model (kwcd_config_set, as the glue
 * feeds it from a <Plugin kvmwatch> block) and its identifiers.
 *
 * Input: one option per line, "Key<TAB>value<TAB>value..."; a value "true"
 * or "false" is a boolean, one strtod reads whole is a number, anything
 * else a string.  The last line is also used as a VM name (plugin_instance
 * and host formatting) and every line goes through kwcd_sanitize, whose
 * output must be a valid collectd identifier part. */
#include "fuzz.h"
#include "kwcd.h"

#include <errno.h>

static void check_ident(const char *s, size_t maxlen)
{
	const unsigned char *p = (const unsigned char *)s;

	FUZZ_CHECK(strlen(s) <= maxlen);
	for (; *p; p++) {
		FUZZ_CHECK(*p > 0x20 && *p != 0x7f && *p != '/' && *p != '"' && *p != '\'' && *p != '\\');
		if (*p >= 0x80) { /* a whole UTF-8 sequence of U+00A0 or above */
			size_t n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
			size_t i;

			FUZZ_CHECK(n);
			for (i = 1; i < n; i++)
				FUZZ_CHECK((p[i] & 0xc0) == 0x80);
			p += n - 1;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *line, *save = NULL, *last = NULL, err[512], out[KWCD_NAME_MAX];
	struct kwcd *k;

	fuzz_init();
	k = kwcd_new();
	FUZZ_CHECK(k);
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct kwcd_value v[16];
		char *tok, *tsave = NULL, *key = strtok_r(line, "\t", &tsave);
		int nv = 0, r;

		if (!key)
			continue;
		while (nv < 16 && (tok = strtok_r(NULL, "\t", &tsave))) {
			char *end;
			double d = strtod(tok, &end);

			memset(&v[nv], 0, sizeof(v[nv]));
			if (!strcmp(tok, "true") || !strcmp(tok, "false")) {
				v[nv].type = KWCD_V_BOOLEAN;
				v[nv].b = tok[0] == 't';
			} else if (*tok && !*end) {
				v[nv].type = KWCD_V_NUMBER;
				v[nv].n = d;
			} else {
				v[nv].type = KWCD_V_STRING;
				v[nv].s = tok;
			}
			nv++;
		}
		err[0] = '\0';
		r = kwcd_config_set(k, key, v, nv, err, sizeof(err));
		FUZZ_CHECK(r == 0 || (r < 0 && err[0]));
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)));
		kwcd_sanitize(out, KWCD_IDENT_MAX, key, "host");
		check_ident(out, KWCD_IDENT_MAX);
		kwcd_sanitize(out, KWCD_NAME_MAX - 1, key, NULL);
		check_ident(out, KWCD_NAME_MAX - 1);
		last = key;
	}
	if (last) {
		struct kwcd_vmid id = { last, "", -1 };

		kwcd_vm_plugin_instance(k, &id, out);
		check_ident(out, KWCD_IDENT_MAX);
		kwcd_vm_host(k, &id, out);
		FUZZ_CHECK(strlen(out) < KWCD_NAME_MAX);
	}
	kwcd_free(k);
	free(s);
	return 0;
}
