// SPDX-License-Identifier: GPL-2.0
/* kw_pattern (netdata simple patterns): the first line is the pattern list,
 * every further line a name matched against it; kw_glob_match too. */
#include "fuzz.h"
#include "kw_pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *nl = strchr(s, '\n'), *save = NULL, *name;
	struct kw_pattern p;
	size_t i;

	fuzz_init();
	if (nl)
		*nl = '\0';
	if (kw_pattern_parse(&p, s) == 0) {
		for (i = 0; i < p.n; i++) {
			FUZZ_CHECK(p.globs[i][0]);
			FUZZ_CHECK(!strpbrk(p.globs[i], " \t"));
			/* a glob matches its own text when it has no '*' */
			if (!strchr(p.globs[i], '*'))
				FUZZ_CHECK(kw_glob_match(p.globs[i], p.globs[i]));
		}
		for (name = nl ? strtok_r(nl + 1, "\n", &save) : NULL; name; name = strtok_r(NULL, "\n", &save)) {
			int m = kw_pattern_match(&p, name);
			FUZZ_CHECK(m == 0 || m == 1);
			FUZZ_CHECK(kw_glob_match("*", name));
		}
		kw_pattern_free(&p);
	}
	free(s);
	return 0;
}
