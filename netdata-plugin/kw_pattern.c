// SPDX-License-Identifier: GPL-2.0
/* kw_pattern.c - netdata-style simple patterns (see kw_pattern.h). */
#include "kw_pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kw_glob_match(const char *g, const char *s)
{
	const char *star = NULL, *retry = NULL;

	while (*s) {
		if (*g == '*') {
			star = ++g;
			retry = s;
		} else if (*g == *s) {
			g++;
			s++;
		} else if (star) {
			g = star;
			s = ++retry;
		} else {
			return 0;
		}
	}
	while (*g == '*')
		g++;
	return *g == '\0';
}

void kw_pattern_free(struct kw_pattern *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->globs[i]);
	free(p->globs);
	free(p->negate);
	memset(p, 0, sizeof(*p));
}

int kw_pattern_parse(struct kw_pattern *p, const char *list)
{
	const char *s = list;

	memset(p, 0, sizeof(*p));
	while (*s) {
		size_t len;
		int neg = 0;
		char **g;
		int *n;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		if (*s == '!') {
			neg = 1;
			s++;
		}
		len = strcspn(s, " \t");
		if (len == 0)
			continue; /* a lone '!' */
		g = realloc(p->globs, (p->n + 1) * sizeof(*g));
		if (!g)
			goto nomem;
		p->globs = g;
		n = realloc(p->negate, (p->n + 1) * sizeof(*n));
		if (!n)
			goto nomem;
		p->negate = n;
		if (!(p->globs[p->n] = strndup(s, len)))
			goto nomem;
		p->negate[p->n++] = neg;
		s += len;
	}
	return 0;
nomem:
	kw_pattern_free(p);
	return -ENOMEM;
}

int kw_pattern_match(const struct kw_pattern *p, const char *s)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (kw_glob_match(p->globs[i], s))
			return !p->negate[i];
	return 0;
}
