// SPDX-License-Identifier: GPL-2.0
/* fuzz.h - helpers shared by kvmwatch's libFuzzer targets. */
#ifndef KW_FUZZ_H
#define KW_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/kw_util.h"

/* The input as a NUL-terminated string (stops at the first NUL byte).
 * free() it. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static void fuzz_quiet_log(int level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
}

/* Library logging off (fuzzers report only crashes). */
static inline void fuzz_init(void)
{
	static int done;

	if (!done) {
		kw_log_set_sink(fuzz_quiet_log, NULL);
		done = 1;
	}
}

#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, \
				__LINE__);                                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

#endif
