/* kw_ignorelist.c - literal and /regex/ name lists (collectd ignorelist semantics). */
#include "kw_ignorelist.h"

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
