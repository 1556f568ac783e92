// SPDX-License-Identifier: GPL-2.0
/* kw_kstats.c - bounded reader of KVM binary statistics (see kw_kstats.h). */
#include "kvm/kw_kstats.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>

int kw_kstats_name_ok(const char *n)
{
	if (!*n)
		return 0;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
			return 0;
	return 1;
}

int kw_kstats_load(struct kw_kstats *k)
{
	struct kvm_stats_header h;
	size_t dsz, i, end = 0;
	char *raw;
	ssize_t r;

	k->d = NULL;
	k->data = NULL;
	k->nd = 0;
	r = pread(k->fd, &h, sizeof(h), 0);
	if (r != (ssize_t)sizeof(h))
		return r < 0 ? -errno : -EIO;
	if (h.num_desc == 0 || h.num_desc > KW_KSTATS_MAX_DESC || h.name_size == 0 ||
	    h.name_size > KW_KSTATS_MAX_NAME || h.desc_offset > KW_KSTATS_MAX_OFFSET ||
	    h.data_offset > KW_KSTATS_MAX_OFFSET)
		return -EINVAL;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	raw = malloc(dsz * h.num_desc);
	k->d = calloc(h.num_desc, sizeof(*k->d));
	if (!raw || !k->d) {
		free(raw);
		return -ENOMEM;
	}
	r = pread(k->fd, raw, dsz * h.num_desc, h.desc_offset);
	if (r != (ssize_t)(dsz * h.num_desc)) {
		int e = r < 0 ? -errno : -EIO;
		free(raw);
		return e;
	}
	for (i = 0; i < h.num_desc; i++) {
		const struct kvm_stats_desc *sd = (const void *)(raw + i * dsz);
		struct kw_kstats_desc *d = &k->d[k->nd];
		size_t nl = strnlen(sd->name, h.name_size);

		if (!sd->size || sd->size > KW_KSTATS_MAX_BUCKETS || sd->offset % 8 ||
		    (size_t)sd->offset + (size_t)sd->size * 8 > KW_KSTATS_MAX_DATA || nl == 0 || nl >= sizeof(d->name))
			continue;
		memcpy(d->name, sd->name, nl);
		d->name[nl] = '\0';
		if (!kw_kstats_name_ok(d->name))
			continue;
		d->type = sd->flags & KVM_STATS_TYPE_MASK;
		d->offset = sd->offset;
		d->size = sd->size;
		if (d->type > KVM_STATS_TYPE_MAX) {
			kw_log_once(KW_LOG_INFO, d->name, "kvmstat: stat %s has unknown type %u: skipped", d->name,
				    d->type);
			continue;
		}
		if ((size_t)d->offset + (size_t)d->size * 8 > end)
			end = (size_t)d->offset + (size_t)d->size * 8;
		k->nd++;
	}
	free(raw);
	k->data_off = h.data_offset;
	k->data_len = end;
	k->data = calloc(1, end ? end : 8);
	return k->data ? 0 : -ENOMEM;
}

int kw_kstats_read(struct kw_kstats *k)
{
	ssize_t r = pread(k->fd, k->data, k->data_len, k->data_off);

	if (r != (ssize_t)k->data_len)
		return r < 0 ? -errno : -EIO;
	return 0;
}

int kw_kstats_find(const struct kw_kstats *k, const char *name)
{
	for (unsigned i = 0; i < k->nd; i++)
		if (!strcmp(k->d[i].name, name))
			return (int)i;
	return -1;
}

uint64_t kw_kstats_value(const struct kw_kstats *k, unsigned idx)
{
	uint64_t v = 0;

	if (idx >= k->nd)
		return 0;
	for (unsigned b = 0; b < k->d[idx].size; b++)
		v += k->data[k->d[idx].offset / 8 + b];
	return v;
}

int kw_kstats_read_one(const struct kw_kstats *k, unsigned idx, uint64_t *v)
{
	ssize_t r;

	if (idx >= k->nd)
		return -EINVAL;
	r = pread(k->fd, v, sizeof(*v), k->data_off + k->d[idx].offset);
	return r == (ssize_t)sizeof(*v) ? 0 : r < 0 ? -errno : -EIO;
}

void kw_kstats_close(struct kw_kstats *k)
{
	if (k->fd >= 0)
		close(k->fd);
	free(k->d);
	free(k->data);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}
