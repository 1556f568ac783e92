// SPDX-License-Identifier: GPL-2.0
/* kw_json.c - a small, strict JSON reader (see kw_json.h). */
#include "kvm/kw_json.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_TEXT 0x7fffffffu /* token offsets are 32-bit */

struct pstate {
	struct kw_json *j;
	const char *s, *p, *e; /* buffer start, cursor, end */
	int final;             /* no more input after e */
};

static int fail(struct pstate *ps, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct pstate *ps, int err, const char *fmt, ...)
{
	char what[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(ps->j->err, sizeof(ps->j->err), "%s at byte %zu", what, (size_t)(ps->p - ps->s));
	return err;
}

static int incomplete(struct pstate *ps) { return fail(ps, -EAGAIN, "input ends inside a value"); }

void kw_json_init(struct kw_json *j, size_t max_tokens, unsigned max_depth)
{
	memset(j, 0, sizeof(*j));
	j->max_tokens = max_tokens;
	j->max_depth = max_depth;
}

void kw_json_free(struct kw_json *j)
{
	free(j->t);
	j->t = NULL;
	j->n = j->cap = 0;
}

static int new_tok(struct pstate *ps, int type)
{
	struct kw_json *j = ps->j;
	struct kw_json_tok *t;

	if (j->n >= j->max_tokens)
		return fail(ps, -E2BIG, "more than %zu values", j->max_tokens);
	if (kw_grow((void **)&j->t, &j->cap, j->n, sizeof(*j->t)))
		return fail(ps, -ENOMEM, "out of memory");
	t = &j->t[j->n];
	memset(t, 0, sizeof(*t));
	t->type = (uint8_t)type;
	t->start = (uint32_t)(ps->p - ps->s);
	return (int)j->n++;
}

static void skip_ws(struct pstate *ps)
{
	while (ps->p < ps->e && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at q: the value, -1 malformed, -2 the input ends first. */
static long hex4(const char *q, const char *e)
{
	long v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		int h;

		if (q + i >= e)
			return -2;
		if ((h = hexval(q[i])) < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* A UTF-8 sequence at q: its length, 0 if invalid (overlong, surrogate,
 * beyond U+10FFFF), -1 if the input ends inside it. */
static int utf8_seq(const unsigned char *q, const unsigned char *e)
{
	unsigned char c = q[0], lo = 0x80, hi = 0xbf;
	int n, i;

	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		n = 2;
	else if (c < 0xf0)
		n = 3;
	else if (c < 0xf5)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (i = 1; i < n; i++) {
		if (q + i >= e)
			return -1;
		if (q[i] < lo || q[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

static int parse_string(struct pstate *ps)
{
	const char *q, *start;
	int idx = new_tok(ps, KW_JSON_STRING);

	if (idx < 0)
		return idx;
	ps->j->t[idx].start++; /* the contents, after the quote */
	q = start = ++ps->p;
	for (;;) {
		unsigned char c;

		if (q >= ps->e) {
			ps->p = q;
			return incomplete(ps);
		}
		c = (unsigned char)*q;
		if (c == '"')
			break;
		if (c < 0x20) {
			ps->p = q;
			return fail(ps, -EINVAL, "control character 0x%02x in a string", c);
		}
		if (c == '\\') {
			long cp;

			if (q + 1 >= ps->e) {
				ps->p = q;
				return incomplete(ps);
			}
			if (q[1] && strchr("\"\\/bfnrt", q[1])) {
				q += 2;
				continue;
			}
			ps->p = q;
			if (q[1] != 'u')
				return fail(ps, -EINVAL, "invalid escape");
			cp = hex4(q + 2, ps->e);
			if (cp == -2)
				return incomplete(ps);
			if (cp < 0)
				return fail(ps, -EINVAL, "invalid \\u escape");
			q += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(ps, -EINVAL, "unpaired low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				long lo;

				if (q >= ps->e || (q[0] == '\\' && q + 1 >= ps->e))
					return incomplete(ps);
				if (q[0] != '\\' || q[1] != 'u')
					return fail(ps, -EINVAL, "unpaired high surrogate");
				lo = hex4(q + 2, ps->e);
				if (lo == -2)
					return incomplete(ps);
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(ps, -EINVAL, "unpaired high surrogate");
				q += 6;
			}
			continue;
		}
		if (c < 0x80) {
			q++;
			continue;
		}
		{
			int n = utf8_seq((const unsigned char *)q, (const unsigned char *)ps->e);

			if (n < 0) {
				ps->p = q;
				return incomplete(ps);
			}
			if (n == 0) {
				ps->p = q;
				return fail(ps, -EINVAL, "invalid UTF-8");
			}
			q += n;
		}
	}
	ps->j->t[idx].len = (uint32_t)(q - start);
	ps->j->t[idx].end = (uint32_t)ps->j->n;
	ps->p = q + 1;
	return 0;
}

/* Digits; at the end of the input a number may go on (-EAGAIN) unless final. */
static int digits(struct pstate *ps)
{
	if (ps->p >= ps->e)
		return incomplete(ps);
	if (!is_digit(*ps->p))
		return fail(ps, -EINVAL, "invalid number");
	while (ps->p < ps->e && is_digit(*ps->p))
		ps->p++;
	return ps->p < ps->e || ps->final ? 0 : incomplete(ps);
}

static int parse_number(struct pstate *ps)
{
	const char *start = ps->p;
	int idx = new_tok(ps, KW_JSON_NUMBER), r;

	if (idx < 0)
		return idx;
	if (*ps->p == '-')
		ps->p++;
	if (ps->p >= ps->e)
		return incomplete(ps);
	if (*ps->p == '0') {
		ps->p++;
		if (ps->p >= ps->e && !ps->final)
			return incomplete(ps);
	} else if ((r = digits(ps))) {
		return r;
	}
	if (ps->p < ps->e && *ps->p == '.') {
		ps->p++;
		if ((r = digits(ps)))
			return r;
	}
	if (ps->p < ps->e && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->e && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if ((r = digits(ps)))
			return r;
	}
	ps->j->t[idx].len = (uint32_t)(ps->p - start);
	ps->j->t[idx].end = (uint32_t)ps->j->n;
	return 0;
}

static int parse_literal(struct pstate *ps)
{
	static const struct { const char *word; int type; } lit[] = {
		{ "true", KW_JSON_TRUE }, { "false", KW_JSON_FALSE }, { "null", KW_JSON_NULL } };
	size_t i, k, n;
	int idx;

	for (i = 0; i < KW_ARRAY_SIZE(lit); i++)
		if (*ps->p == lit[i].word[0])
			break;
	if (i == KW_ARRAY_SIZE(lit))
		return fail(ps, -EINVAL, "unexpected character 0x%02x", (unsigned char)*ps->p);
	n = strlen(lit[i].word);
	for (k = 0; k < n; k++) {
		if (ps->p + k >= ps->e)
			return incomplete(ps);
		if (ps->p[k] != lit[i].word[k])
			return fail(ps, -EINVAL, "invalid literal");
	}
	if ((idx = new_tok(ps, lit[i].type)) < 0)
		return idx;
	ps->j->t[idx].len = (uint32_t)n;
	ps->j->t[idx].end = (uint32_t)ps->j->n;
	ps->p += n;
	return 0;
}

static int parse_value(struct pstate *ps, unsigned depth);

static int parse_container(struct pstate *ps, unsigned depth)
{
	int obj = *ps->p == '{';
	char close = obj ? '}' : ']';
	const char *start = ps->p;
	uint32_t size = 0;
	int idx, r;

	if (depth >= ps->j->max_depth)
		return fail(ps, -E2BIG, "nested deeper than %u", ps->j->max_depth);
	if ((idx = new_tok(ps, obj ? KW_JSON_OBJECT : KW_JSON_ARRAY)) < 0)
		return idx;
	ps->p++;
	skip_ws(ps);
	if (ps->p >= ps->e)
		return incomplete(ps);
	if (*ps->p == close) {
		ps->p++;
	} else {
		for (;;) {
			skip_ws(ps);
			if (obj) {
				if (ps->p >= ps->e)
					return incomplete(ps);
				if (*ps->p != '"')
					return fail(ps, -EINVAL, "expected a string key");
				if ((r = parse_string(ps)))
					return r;
				skip_ws(ps);
				if (ps->p >= ps->e)
					return incomplete(ps);
				if (*ps->p != ':')
					return fail(ps, -EINVAL, "expected ':'");
				ps->p++;
			}
			if ((r = parse_value(ps, depth + 1)))
				return r;
			size++;
			skip_ws(ps);
			if (ps->p >= ps->e)
				return incomplete(ps);
			if (*ps->p == ',') {
				ps->p++;
				continue;
			}
			if (*ps->p == close) {
				ps->p++;
				break;
			}
			return fail(ps, -EINVAL, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	ps->j->t[idx].len = (uint32_t)(ps->p - start);
	ps->j->t[idx].size = size;
	ps->j->t[idx].end = (uint32_t)ps->j->n;
	return 0;
}

static int parse_value(struct pstate *ps, unsigned depth)
{
	skip_ws(ps);
	if (ps->p >= ps->e)
		return incomplete(ps);
	switch (*ps->p) {
	case '{':
	case '[':
		return parse_container(ps, depth);
	case '"':
		return parse_string(ps);
	case '-':
	case '0' ... '9':
		return parse_number(ps);
	default:
		return parse_literal(ps);
	}
}

static ssize_t parse(struct kw_json *j, const char *buf, size_t len, int final)
{
	struct pstate ps = { j, buf, buf, buf + len, final };
	int r;

	j->n = 0;
	j->text = buf;
	j->err[0] = '\0';
	if (len > JSON_MAX_TEXT)
		return fail(&ps, -E2BIG, "input larger than %u bytes", JSON_MAX_TEXT);
	r = parse_value(&ps, 0);
	if (r) {
		j->n = 0;
		return r;
	}
	skip_ws(&ps);
	return ps.p - buf;
}

ssize_t kw_json_parse(struct kw_json *j, const char *buf, size_t len)
{
	return parse(j, buf, len, 0);
}

int kw_json_parse_all(struct kw_json *j, const char *buf, size_t len)
{
	ssize_t r = parse(j, buf, len, 1);

	if (r == -EAGAIN) {
		char at[64];

		kw_strlcpy(at, j->err, sizeof(at));
		snprintf(j->err, sizeof(j->err), "truncated: %s", at);
		return -EINVAL;
	}
	if (r < 0)
		return (int)r;
	if ((size_t)r != len) {
		snprintf(j->err, sizeof(j->err), "unexpected data after the value at byte %zd", r);
		j->n = 0;
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------ access */

/* Decode one character of a validated string at *p: up to 4 UTF-8 bytes
 * into out; returns how many. */
static int decode_one(const char **p, char out[4])
{
	const char *q = *p;
	long cp;

	if (*q != '\\') {
		out[0] = *q;
		*p = q + 1;
		return 1;
	}
	switch (q[1]) {
	case 'b': out[0] = '\b'; break;
	case 'f': out[0] = '\f'; break;
	case 'n': out[0] = '\n'; break;
	case 'r': out[0] = '\r'; break;
	case 't': out[0] = '\t'; break;
	case 'u':
		cp = hex4(q + 2, q + 6);
		q += 6;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(q + 2, q + 6) - 0xdc00);
			q += 6;
		}
		*p = q;
		if (cp < 0x80) {
			out[0] = (char)cp;
			return 1;
		}
		if (cp < 0x800) {
			out[0] = (char)(0xc0 | (cp >> 6));
			out[1] = (char)(0x80 | (cp & 0x3f));
			return 2;
		}
		if (cp < 0x10000) {
			out[0] = (char)(0xe0 | (cp >> 12));
			out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[2] = (char)(0x80 | (cp & 0x3f));
			return 3;
		}
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		return 4;
	default: out[0] = q[1]; break; /* " \ / */
	}
	*p = q + 2;
	return 1;
}

ssize_t kw_json_strcpy(const struct kw_json *j, int tok, char *out, size_t len)
{
	const char *p, *e;
	size_t o = 0;

	if (kw_json_type(j, tok) != KW_JSON_STRING || len == 0)
		return -EINVAL;
	p = j->text + j->t[tok].start;
	e = p + j->t[tok].len;
	while (p < e) {
		char c[4];
		int n = decode_one(&p, c), i;

		if (o + (size_t)n >= len) {
			out[0] = '\0';
			return -E2BIG;
		}
		for (i = 0; i < n; i++) {
			if (c[i] == '\0') {
				out[0] = '\0';
				return -EINVAL;
			}
			out[o++] = c[i];
		}
	}
	out[o] = '\0';
	return (ssize_t)o;
}

int kw_json_streq(const struct kw_json *j, int tok, const char *s)
{
	const char *p, *e;

	if (kw_json_type(j, tok) != KW_JSON_STRING)
		return 0;
	p = j->text + j->t[tok].start;
	e = p + j->t[tok].len;
	while (p < e) {
		char c[4];
		int n = decode_one(&p, c), i;

		for (i = 0; i < n; i++)
			if (*s == '\0' || c[i] != *s++)
				return 0;
	}
	return *s == '\0';
}

int kw_json_first(const struct kw_json *j, int tok)
{
	int t = kw_json_type(j, tok);

	if ((t != KW_JSON_ARRAY && t != KW_JSON_OBJECT) || j->t[tok].size == 0)
		return -1;
	return tok + 1;
}

int kw_json_get(const struct kw_json *j, int obj, const char *key)
{
	uint32_t k;
	int i;

	if (kw_json_type(j, obj) != KW_JSON_OBJECT)
		return -1;
	for (i = obj + 1, k = 0; k < j->t[obj].size; k++) {
		if (kw_json_streq(j, i, key))
			return i + 1;
		i = (int)j->t[i + 1].end;
	}
	return -1;
}

int kw_json_get_type(const struct kw_json *j, int obj, const char *key, int type)
{
	int v = kw_json_get(j, obj, key);

	return kw_json_type(j, v) == type ? v : -1;
}

/* Digits of an integer token (no fraction or exponent); sets *neg. */
static int int_text(const struct kw_json *j, int tok, const char **p, const char **e, int *neg)
{
	const char *q;

	if (kw_json_type(j, tok) != KW_JSON_NUMBER)
		return -EINVAL;
	*p = j->text + j->t[tok].start;
	*e = *p + j->t[tok].len;
	*neg = **p == '-';
	if (*neg)
		(*p)++;
	for (q = *p; q < *e; q++)
		if (!is_digit(*q))
			return -EINVAL; /* fraction or exponent */
	return 0;
}

static int accumulate(const char *p, const char *e, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	for (; p < e; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int kw_json_u64(const struct kw_json *j, int tok, uint64_t *out)
{
	const char *p, *e;
	int neg, r;

	if ((r = int_text(j, tok, &p, &e, &neg)))
		return r;
	if (neg)
		return -ERANGE;
	return accumulate(p, e, UINT64_MAX, out);
}

int kw_json_i64(const struct kw_json *j, int tok, int64_t *out)
{
	const char *p, *e;
	uint64_t v;
	int neg, r;

	if ((r = int_text(j, tok, &p, &e, &neg)))
		return r;
	if ((r = accumulate(p, e, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v)))
		return r;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

int kw_json_bool(const struct kw_json *j, int tok, int *out)
{
	int t = kw_json_type(j, tok);

	if (t != KW_JSON_TRUE && t != KW_JSON_FALSE)
		return -EINVAL;
	*out = t == KW_JSON_TRUE;
	return 0;
}
