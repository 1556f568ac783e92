// SPDX-License-Identifier: GPL-2.0
/* kw_ignorelist.c - literal and /regex/ name lists (collectd ignorelist semantics). */
#include "kw_ignorelist.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kw_il_item {
	char *literal;  /* NULL for a regex */
	regex_t re;
};

struct kw_ignorelist {
	struct kw_il_item *items;
	size_t n;
	int ignore_selected;
};

struct kw_ignorelist *kw_ignorelist_create(int ignore_selected)
{
	struct kw_ignorelist *il = calloc(1, sizeof(*il));

	if (il)
		il->ignore_selected = !!ignore_selected;
	return il;
}

void kw_ignorelist_free(struct kw_ignorelist *il)
{
	size_t i;

	if (!il)
		return;
	for (i = 0; i < il->n; i++) {
		if (il->items[i].literal)
			free(il->items[i].literal);
		else
			regfree(&il->items[i].re);
	}
	free(il->items);
	free(il);
}

void kw_ignorelist_set_ignore_selected(struct kw_ignorelist *il, int ignore_selected)
{
	il->ignore_selected = !!ignore_selected;
}

size_t kw_ignorelist_count(const struct kw_ignorelist *il)
{
	return il ? il->n : 0;
}

/* glibc's regcomp expands repetitions into copies of their operand: "x+"
 * is "xx*", "x{2,50}" holds 50 copies, and nested or stacked ones multiply
 * ("v++++..." or "((x{9}){9}){9}" take gigabytes and minutes).  Estimate
 * the expanded size of an ERE (atoms times the repetitions around them, a
 * repetition doubling at least) and refuse patterns above KW_RE_MAX_STATES
 * or with two repetition operators in a row (undefined in POSIX EREs)
 * before compiling them. */
#define KW_RE_MAX_STATES 20000.0

static double re_alt(const char **p, int depth);

static double re_atom(const char **pp, int depth)
{
	const char *p = *pp;
	double n = 1;

	if (*p == '(') {
		p++;
		n = re_alt(&p, depth + 1);
		if (*p == ')')
			p++;
	} else if (*p == '[') {
		p++;
		if (*p == '^')
			p++;
		if (*p == ']')
			p++;
		while (*p && *p != ']') {
			if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
				char t = p[1];

				p += 2;
				while (*p && !(*p == t && p[1] == ']'))
					p++;
				if (*p)
					p += 2;
				continue;
			}
			p++;
		}
		if (*p)
			p++;
	} else if (*p == '\\' && p[1]) {
		p += 2;
	} else if (*p) {
		p++;
	}
	*pp = p;
	return n;
}

/* {m}, {m,}, {m,n}: the number of copies regcomp makes, or 0 if p is not a
 * counted repetition (a literal '{'). */
static double re_count(const char **pp)
{
	const char *p = *pp + 1;
	double m = 0, n;

	if (!isdigit((unsigned char)*p))
		return 0;
	while (isdigit((unsigned char)*p))
		m = m * 10 + (*p++ - '0');
	n = m;
	if (*p == ',') {
		p++;
		if (isdigit((unsigned char)*p)) {
			n = 0;
			while (isdigit((unsigned char)*p))
				n = n * 10 + (*p++ - '0');
		} else {
			n = m + 1; /* m copies and a star */
		}
	}
	if (*p != '}')
		return 0;
	*pp = p + 1;
	return n > 1 ? n : 1;
}

static double re_branch(const char **pp, int depth)
{
	const char *p = *pp;
	double total = 0;

	while (*p && *p != '|' && !(*p == ')' && depth > 0)) {
		double n = re_atom(&p, depth), c;
		int ops = 0;

		for (;; ops++) {
			if (*p == '*' || *p == '?' || *p == '+') {
				n *= 2;
				p++;
			} else if (*p == '{' && (c = re_count(&p)) > 0) {
				n *= c + 1;
			} else {
				break;
			}
			/* "x+*", "x??": undefined in POSIX EREs, glibc doubles each */
			if (ops > 0 || n > KW_RE_MAX_STATES) {
				n = KW_RE_MAX_STATES + 1;
				break;
			}
		}
		total += n;
		if (total > KW_RE_MAX_STATES)
			break;
	}
	*pp = p;
	return total;
}

static double re_alt(const char **pp, int depth)
{
	double total = re_branch(pp, depth);

	while (**pp == '|' && total <= KW_RE_MAX_STATES) {
		(*pp)++;
		total += re_branch(pp, depth);
	}
	return total;
}

/* Estimated size of the compiled ERE (stops counting above the limit). */
static double re_states(const char *re)
{
	double total = 0;

	while (*re && total <= KW_RE_MAX_STATES) {
		total += re_alt(&re, 0);
		if (*re == ')') /* unbalanced: regcomp reports it */
			re++;
	}
	return total;
}

int kw_ignorelist_add(struct kw_ignorelist *il, const char *entry, char *err, size_t errlen)
{
	struct kw_il_item *items, *it;
	size_t len = entry ? strlen(entry) : 0;

	if (len == 0) {
		snprintf(err, errlen, "empty entry");
		return -EINVAL;
	}
	items = realloc(il->items, (il->n + 1) * sizeof(*items));
	if (!items) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	il->items = items;
	it = &items[il->n];
	memset(it, 0, sizeof(*it));
	if (len > 2 && entry[0] == '/' && entry[len - 1] == '/') {
		char *pat = strndup(entry + 1, len - 2);
		int r;

		if (!pat) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		if (re_states(pat) > KW_RE_MAX_STATES) {
			snprintf(err, errlen, "regular expression \"%.200s\" too complex (its repetitions expand to "
				 "more than %.0f states, or two repetition operators follow each other)", pat, KW_RE_MAX_STATES);
			free(pat);
			return -EINVAL;
		}
		r = regcomp(&it->re, pat, REG_EXTENDED | REG_NOSUB);
		if (r) {
			char msg[128];

			regerror(r, &it->re, msg, sizeof(msg));
			snprintf(err, errlen, "bad regular expression \"%s\": %s", pat, msg);
			free(pat);
			return -EINVAL;
		}
		free(pat);
	} else if (!(it->literal = strdup(entry))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	il->n++;
	return 0;
}

static int item_matches(const struct kw_il_item *it, const char *s)
{
	if (!s)
		return 0;
	if (it->literal)
		return strcmp(it->literal, s) == 0;
	return regexec(&it->re, s, 0, NULL, 0) == 0;
}

int kw_ignorelist_ignored(const struct kw_ignorelist *il, const char *name, const char *alt)
{
	size_t i;

	if (!il || il->n == 0)
		return 0;
	for (i = 0; i < il->n; i++)
		if (item_matches(&il->items[i], name) || item_matches(&il->items[i], alt))
			return il->ignore_selected;
	return !il->ignore_selected;
}
