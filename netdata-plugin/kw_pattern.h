// SPDX-License-Identifier: GPL-2.0
/* kw_pattern.h - netdata-style "simple patterns": a space-separated list of
 * globs where '*' matches any run of characters and a leading '!' negates.
 * The first pattern that matches decides; no match means "not wanted".
 * Example: "!*-test web* db?" (the '?' is literal, as in netdata). */
#ifndef KW_PATTERN_H
#define KW_PATTERN_H

#include <stddef.h>

struct kw_pattern {
	char **globs;    /* without the '!' */
	int *negate;
	size_t n;
};

/* Parse a pattern list.  Returns 0 or -ENOMEM.  An empty list matches nothing. */
int kw_pattern_parse(struct kw_pattern *p, const char *list);
void kw_pattern_free(struct kw_pattern *p);
/* 1 if s is wanted, 0 if not (negative match or no match). */
int kw_pattern_match(const struct kw_pattern *p, const char *s);
/* One glob, '*' only. */
int kw_glob_match(const char *glob, const char *s);

#endif
