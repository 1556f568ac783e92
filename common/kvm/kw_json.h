// SPDX-License-Identifier: GPL-2.0
/* kw_json.h - a small, strict JSON reader (RFC 8259) for QMP replies.
 *
 * One value is parsed into a flat array of tokens (root = token 0; a
 * container's children follow it, each token knows where its subtree ends),
 * without copying the text: strings are decoded on access.  Strict: the
 * grammar exactly (no trailing commas, comments, single quotes, NaN,
 * leading zeros or control characters in strings), valid UTF-8, escapes
 * checked (\u surrogates must pair).  Bounded: a token limit and a nesting
 * limit chosen by the caller, so hostile input costs bounded memory and stack.
 * Works on a stream: a value the buffer ends inside of is "incomplete"
 * (-EAGAIN), not malformed, so a reader can wait for more bytes. */
#ifndef KW_JSON_H
#define KW_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum kw_json_type {
	KW_JSON_NULL,
	KW_JSON_FALSE,
	KW_JSON_TRUE,
	KW_JSON_NUMBER,
	KW_JSON_STRING,
	KW_JSON_ARRAY,
	KW_JSON_OBJECT,
};

struct kw_json_tok {
	uint32_t start, len;  /* text: a string's contents between the quotes (still escaped),
			       * a number's or literal's characters, a container's whole text */
	uint32_t size;        /* array elements, object members (key/value pairs) */
	uint32_t end;         /* index of the token after this one's subtree */
	uint8_t type;         /* enum kw_json_type */
};

struct kw_json {
	const char *text;             /* the parsed buffer (not owned) */
	struct kw_json_tok *t;
	size_t n, cap;
	size_t max_tokens;
	unsigned max_depth;
	char err[128];                /* why parsing failed, with the byte offset */
};

/* Limits: at most max_tokens tokens, containers nested at most max_depth deep. */
void kw_json_init(struct kw_json *j, size_t max_tokens, unsigned max_depth);
void kw_json_free(struct kw_json *j);

/* Parse one value at the start of buf (leading whitespace skipped).  Returns
 * the bytes consumed (> 0, the value and whitespace after it), -EAGAIN when buf
 * ends before the value does (more input may complete it; at end of input:
 * truncated), -EINVAL when malformed, -E2BIG past a limit, -ENOMEM.  j->err
 * says why.  The tokens point into buf: keep it until done with them. */
ssize_t kw_json_parse(struct kw_json *j, const char *buf, size_t len);
/* A whole document: one value, then only whitespace; a truncated document is
 * -EINVAL ("truncated"). */
int kw_json_parse_all(struct kw_json *j, const char *buf, size_t len);

/* Navigation (token indexes; -1 = none). */
static inline int kw_json_type(const struct kw_json *j, int tok)
{
	return tok >= 0 && (size_t)tok < j->n ? j->t[tok].type : -1;
}
/* Value of key in an object (first match), -1 if absent or tok is no object. */
int kw_json_get(const struct kw_json *j, int obj, const char *key);
/* Same, and only if the value has the type. */
int kw_json_get_type(const struct kw_json *j, int obj, const char *key, int type);
/* First element of an array (or first key of an object), -1 when empty. */
int kw_json_first(const struct kw_json *j, int tok);
/* The element after tok in its array (objects: step twice, key then value). */
static inline int kw_json_next(const struct kw_json *j, int tok) { return (int)j->t[tok].end; }

/* Values.  Return 0, or -EINVAL when the token is not of that kind, -ERANGE
 * when the number does not fit. */
int kw_json_u64(const struct kw_json *j, int tok, uint64_t *out);  /* integer >= 0, no fraction/exponent */
int kw_json_i64(const struct kw_json *j, int tok, int64_t *out);   /* integer, no fraction/exponent */
int kw_json_bool(const struct kw_json *j, int tok, int *out);
/* Decode a string into out (NUL-terminated).  Returns its length, -EINVAL if
 * not a string or it holds U+0000, -E2BIG if it does not fit. */
ssize_t kw_json_strcpy(const struct kw_json *j, int tok, char *out, size_t len);
/* Is tok a string equal to s (after decoding)? */
int kw_json_streq(const struct kw_json *j, int tok, const char *s);

#endif
