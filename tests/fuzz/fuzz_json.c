// SPDX-License-Identifier: GPL-2.0
/* kw_json_str: for any bytes the output is one valid JSON string (RFC 8259:
 * quoted, control characters and quote/backslash escaped, valid UTF-8, no
 * surrogate escapes) that decodes back to the input, with bytes that are not
 * UTF-8 as U+0080..U+00FF.  kw_text_safe (text tables): valid UTF-8 without
 * control characters, at most (and, padded, exactly) maxcols characters. */
#include "fuzz.h"

/* Length of a valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) { len = 2; c = p[0] & 0x1f; }
	else if ((p[0] & 0xf0) == 0xe0) { len = 3; c = p[0] & 0x0f; }
	else if ((p[0] & 0xf8) == 0xf0) { len = 4; c = p[0] & 0x07; }
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Validate out[0..n) as one JSON string; decode its code points into cps. */
static size_t validate(const unsigned char *o, size_t n, uint32_t *cps)
{
	size_t i = 1, k = 0;

	FUZZ_CHECK(n >= 2 && o[0] == '"' && o[n - 1] == '"');
	while (i < n - 1) {
		uint32_t cp;

		FUZZ_CHECK(o[i] >= 0x20 && o[i] != '"');
		if (o[i] == '\\') {
			FUZZ_CHECK(i + 1 < n - 1);
			switch (o[i + 1]) {
			case '"': cp = '"'; i += 2; break;
			case '\\': cp = '\\'; i += 2; break;
			case '/': cp = '/'; i += 2; break;
			case 'b': cp = '\b'; i += 2; break;
			case 'f': cp = '\f'; i += 2; break;
			case 'n': cp = '\n'; i += 2; break;
			case 'r': cp = '\r'; i += 2; break;
			case 't': cp = '\t'; i += 2; break;
			case 'u': {
				int j, h;

				FUZZ_CHECK(i + 6 <= n - 1);
				cp = 0;
				for (j = 2; j < 6; j++) {
					h = hexval(o[i + j]);
					FUZZ_CHECK(h >= 0);
					cp = cp * 16 + (uint32_t)h;
				}
				FUZZ_CHECK(cp < 0xd800 || cp > 0xdfff); /* lone surrogates are not portable */
				i += 6;
				break;
			}
			default:
				FUZZ_CHECK(!"bad escape");
				return 0;
			}
		} else {
			size_t l = utf8_seq(o + i, n - 1 - i, &cp);

			FUZZ_CHECK(l > 0); /* the output is valid UTF-8 */
			i += l;
		}
		cps[k++] = cp;
	}
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *out = NULL;
	const unsigned char *in = (const unsigned char *)s;
	size_t outlen = 0, len = strlen(s), k, i, j;
	uint32_t *cps, cp;
	FILE *f;

	fuzz_init();
	f = open_memstream(&out, &outlen);
	FUZZ_CHECK(f);
	kw_json_str(f, s);
	fclose(f);
	cps = malloc((outlen + 1) * sizeof(*cps));
	FUZZ_CHECK(cps);
	k = validate((const unsigned char *)out, outlen, cps);
	/* round trip: valid UTF-8 sequences come back as themselves, other bytes
	 * as U+00XX */
	for (i = 0, j = 0; i < len; j++) {
		size_t l = utf8_seq(in + i, len - i, &cp);

		if (l == 0) {
			cp = in[i];
			l = 1;
		}
		FUZZ_CHECK(j < k && cps[j] == cp);
		i += l;
	}
	FUZZ_CHECK(j == k);
	{
		char t[4 * 24 + 1];
		size_t cols = 0, l;
		int pad;

		for (pad = 0; pad < 2; pad++) {
			kw_text_safe(t, sizeof(t), s, 24, pad);
			for (i = 0, cols = 0; t[i]; i += l, cols++) {
				l = utf8_seq((const unsigned char *)t + i, strlen(t + i), &cp);
				FUZZ_CHECK(l > 0 && cp >= 0x20 && cp != 0x7f);
			}
			FUZZ_CHECK(pad ? cols == 24 : cols <= 24);
		}
		kw_text_safe(t, 8, s, 24, 1); /* short buffer: cut, never overflow */
		FUZZ_CHECK(strlen(t) < 8);
	}
	free(cps);
	free(out);
	free(s);
	return 0;
}
