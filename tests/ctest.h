// SPDX-License-Identifier: GPL-2.0
/* ctest.h - the one CHECK macro of the project's C unit tests (run from
 * pytest): a failed check is printed with its place and counted, the test
 * goes on; main returns ctest_failures != 0. */
#ifndef KW_CTEST_H
#define KW_CTEST_H

#include <stdio.h>

static int ctest_failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			ctest_failures++;                                                        \
		}                                                                                \
	} while (0)

#endif
