// SPDX-License-Identifier: GPL-2.0
/* kw_ignorelist: every line but the last is an entry (literal or /regex/),
 * the last line a name; the first byte's low bit is ignore_selected. */
#include "fuzz.h"
#include "kw_ignorelist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_ignorelist *il;
	char *s, *line, *save = NULL, *last = NULL, err[256];
	int r;

	if (size < 1 || size > 4096) /* regcomp of long inputs only measures glibc */
		return 0;
	fuzz_init();
	il = kw_ignorelist_create(data[0] & 1);
	FUZZ_CHECK(il);
	s = fuzz_str(data + 1, size - 1);
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (last) {
			err[0] = '\0';
			r = kw_ignorelist_add(il, last, err, sizeof(err));
			FUZZ_CHECK(r == 0 || (r == -22 && err[0]) || r == -12);
		}
		last = line;
	}
	if (last) {
		r = kw_ignorelist_ignored(il, last, NULL);
		FUZZ_CHECK(r == 0 || r == 1);
		if (kw_ignorelist_count(il) == 0)
			FUZZ_CHECK(r == 0);
		kw_ignorelist_ignored(il, last, "vm:x");
	}
	kw_ignorelist_free(il);
	free(s);
	return 0;
}
