// SPDX-License-Identifier: GPL-2.0
/* kw_json, the strict bounded JSON reader of QMP replies: the input is a
 * byte stream from a QEMU monitor (or anything listening there).  Parsing
 * never reads past the buffer, tokens stay inside it and nest properly, and
 * decoding every string / number of a parsed document is safe. */
#include <errno.h>

#include "fuzz.h"
#include "kvm/kw_json.h"

static void walk(const struct kw_json *j, size_t len)
{
	size_t i;

	for (i = 0; i < j->n; i++) {
		const struct kw_json_tok *t = &j->t[i];
		char buf[64];
		uint64_t u;
		int64_t v;
		int b;

		FUZZ_CHECK((size_t)t->start + t->len <= len);
		FUZZ_CHECK(t->end > i && t->end <= j->n);
		switch (t->type) {
		case KW_JSON_STRING: {
			ssize_t r = kw_json_strcpy(j, (int)i, buf, sizeof(buf));

			/* decoded, or refused: too long for buf or holding U+0000 */
			FUZZ_CHECK(r == -E2BIG || r == -EINVAL || (r >= 0 && (size_t)r == strlen(buf)));
			break;
		}
		case KW_JSON_NUMBER:
			(void)kw_json_u64(j, (int)i, &u);
			(void)kw_json_i64(j, (int)i, &v);
			break;
		case KW_JSON_TRUE:
		case KW_JSON_FALSE:
			FUZZ_CHECK(kw_json_bool(j, (int)i, &b) == 0 && b == (t->type == KW_JSON_TRUE));
			break;
		case KW_JSON_OBJECT:
			(void)kw_json_get(j, (int)i, "return");
			break;
		default:
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so reading one byte too far is an ASan error */
	char *buf = malloc(size ? size : 1);
	struct kw_json j;
	size_t off = 0;

	fuzz_init();
	if (!buf)
		abort();
	memcpy(buf, data, size);
	kw_json_init(&j, 4096, 64);
	/* a stream of values, as read from a monitor socket */
	while (off < size) {
		ssize_t r = kw_json_parse(&j, buf + off, size - off);

		if (r <= 0)
			break;
		FUZZ_CHECK((size_t)r <= size - off);
		walk(&j, size - off);
		off += (size_t)r;
	}
	if (kw_json_parse_all(&j, buf, size) == 0)
		walk(&j, size);
	kw_json_free(&j);
	free(buf);
	return 0;
}
