// SPDX-License-Identifier: GPL-2.0
/* kw_kstats.h - reader of KVM's binary statistics (KVM_GET_STATS_FD, the
 * kernel's Documentation/virt/kvm/api.rst "KVM_GET_STATS_FD").
 *
 * The descriptor block is read once per fd; every header field is bounded
 * (a descriptor that does not fit is skipped, a header that does not is an
 * error), so a file that only pretends to be a stats fd cannot make the
 * reader allocate or read much.  The data block is re-read on each
 * kw_kstats_read().  Used by the kvmstat source and the project's guest. */
#ifndef KW_KSTATS_H
#define KW_KSTATS_H

#include <stddef.h>
#include <stdint.h>

/* Bounds on what one stats fd may describe (KVM itself has ~60 stats per
 * vCPU, 32-bucket histograms, a few KiB of data). */
#define KW_KSTATS_MAX_DESC    1024
#define KW_KSTATS_MAX_BUCKETS 256
#define KW_KSTATS_MAX_DATA    (64u << 10)
#define KW_KSTATS_MAX_OFFSET  (1u << 20)
#define KW_KSTATS_MAX_NAME    256   /* header name_size */
#define KW_KSTATS_NAME        48    /* KVM_STATS_NAME_SIZE; longer names are skipped */

struct kw_kstats_desc {
	char name[KW_KSTATS_NAME];
	uint32_t type;     /* KVM_STATS_TYPE_* */
	uint32_t offset;   /* in the data block, bytes */
	uint16_t size;     /* number of u64 values (buckets for histograms) */
};

struct kw_kstats {
	int fd;            /* owned: closed by kw_kstats_close */
	uint32_t data_off;
	size_t data_len;
	struct kw_kstats_desc *d;
	unsigned nd;
	uint64_t *data;    /* the last kw_kstats_read() */
};

/* Read the header and descriptors of k->fd (set by the caller).  Returns 0,
 * -EINVAL for a header out of bounds, -ENOMEM, or -errno of the read. */
int kw_kstats_load(struct kw_kstats *k);
/* Re-read the data block.  0 or -errno (-EIO: short read). */
int kw_kstats_read(struct kw_kstats *k);
/* Index of a stat by name, -1 if absent. */
int kw_kstats_find(const struct kw_kstats *k, const char *name);
/* Value of stat idx in the last read: the sum of its values (a histogram's
 * sum of buckets is its event count). */
uint64_t kw_kstats_value(const struct kw_kstats *k, unsigned idx);
/* Read only stat idx's first value from the fd now.  0 or -errno. */
int kw_kstats_read_one(const struct kw_kstats *k, unsigned idx, uint64_t *v);
/* Is n a name KVM gives a stat: a non-empty lower-case identifier? */
int kw_kstats_name_ok(const char *n);
/* Close the fd and free what load allocated (k->fd becomes -1). */
void kw_kstats_close(struct kw_kstats *k);

#endif
