// SPDX-License-Identifier: GPL-2.0
/* kw_vm.c - the VM table and VMM command-line parsing. */
#include "core/kw_vm.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kw_vm_free(struct kw_vm *vm)
{
	free(vm->threads);
	free(vm->netifs);
	free(vm->disks);
	kw_ss_free(&vm->stats);
	vm->threads = NULL;
	vm->netifs = NULL;
	vm->disks = NULL;
	vm->ndisks = 0;
	vm->nthreads = vm->nnetifs = vm->nvcpus = 0;
	vm->threads_cap = 0;
}

static void *dup_array(const void *src, size_t n, size_t sz, int *err)
{
	void *p;

	if (!n)
		return NULL;
	p = malloc(n * sz);
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	memcpy(p, src, n * sz);
	return p;
}

int kw_vm_copy(struct kw_vm *dst, const struct kw_vm *src)
{
	int err = 0;

	*dst = *src;
	dst->threads = dup_array(src->threads, (size_t)src->nthreads, sizeof(*src->threads), &err);
	dst->threads_cap = (size_t)src->nthreads;
	dst->netifs = dup_array(src->netifs, (size_t)src->nnetifs, sizeof(*src->netifs), &err);
	dst->disks = dup_array(src->disks, (size_t)src->ndisks, sizeof(*src->disks), &err);
	memset(&dst->stats, 0, sizeof(dst->stats));
	if (!err)
		err = kw_ss_copy(&dst->stats, &src->stats);
	if (err) {
		kw_vm_free(dst);
		return err;
	}
	return 0;
}

int kw_vm_add_thread(struct kw_vm *vm, pid_t tid, int vcpu)
{
	if (kw_grow((void **)&vm->threads, &vm->threads_cap, (size_t)vm->nthreads, sizeof(*vm->threads)))
		return -ENOMEM;
	vm->threads[vm->nthreads].tid = tid;
	vm->threads[vm->nthreads].vcpu = vcpu;
	vm->threads[vm->nthreads].blkio_last = 0;
	vm->nthreads++;
	if (vcpu >= 0)
		vm->nvcpus++;
	return 0;
}

int kw_vm_has_netif(const struct kw_vm *vm, const char *ifname)
{
	return kw_vm_netif(vm, ifname) != NULL;
}

int kw_vm_add_netif(struct kw_vm *vm, const char *ifname)
{
	struct kw_netif *p;

	if (!*ifname || strlen(ifname) >= KW_IFNAME_MAX || strchr(ifname, '/'))
		return -EINVAL;
	if (kw_vm_has_netif(vm, ifname))
		return 0;
	p = realloc(vm->netifs, ((size_t)vm->nnetifs + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	vm->netifs = p;
	memset(&p[vm->nnetifs], 0, sizeof(*p));
	kw_strlcpy(p[vm->nnetifs].name, ifname, KW_IFNAME_MAX);
	vm->nnetifs++;
	return 0;
}

int kw_vm_add_disk(struct kw_vm *vm, const char *dev)
{
	struct kw_disk *p;

	if (!*dev || strlen(dev) >= KW_DISK_MAX)
		return -EINVAL;
	if (kw_vm_disk(vm, dev))
		return 0;
	p = realloc(vm->disks, ((size_t)vm->ndisks + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	vm->disks = p;
	memset(&p[vm->ndisks], 0, sizeof(*p));
	kw_strlcpy(p[vm->ndisks].name, dev, KW_DISK_MAX);
	vm->ndisks++;
	return 0;
}

struct kw_disk *kw_vm_disk(const struct kw_vm *vm, const char *dev)
{
	int i;

	for (i = 0; i < vm->ndisks; i++)
		if (!strcmp(vm->disks[i].name, dev))
			return &vm->disks[i];
	return NULL;
}

struct kw_netif *kw_vm_netif(const struct kw_vm *vm, const char *ifname)
{
	int i;

	for (i = 0; i < vm->nnetifs; i++)
		if (!strcmp(vm->netifs[i].name, ifname))
			return &vm->netifs[i];
	return NULL;
}

/* ------------------------------------------------------- key indexes */

/* Below this many entries a linear scan is as fast as hashing. */
#define KIDX_LINEAR 16

typedef const char *(*kidx_key_fn)(const void *arg, size_t i);

static uint32_t key_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void kidx_reset(uint32_t *idx, size_t cap, size_t *idx_n)
{
	if (idx && *idx_n)
		memset(idx, 0, cap * sizeof(*idx));
	*idx_n = 0;
}

/* Bring an index of n keys up to date: entries [*idx_n, n) are added in
 * order, up to the first with an empty key (a key is written just after its
 * entry is added); those left out are scanned by kidx_find.  -1 when it
 * cannot be used (out of memory). */
static int kidx_sync(uint32_t **idx, size_t *cap, size_t *idx_n, size_t n, kidx_key_fn key, const void *arg)
{
	if (*idx_n > n)
		kidx_reset(*idx, *cap, idx_n); /* shrunk behind our back */
	if (n * 2 > *cap) {
		size_t nc = *cap ? *cap : 64;
		uint32_t *p;

		while (n * 2 > nc)
			nc *= 2;
		if (nc > UINT32_MAX || !(p = calloc(nc, sizeof(*p))))
			return -1;
		free(*idx);
		*idx = p;
		*cap = nc;
		*idx_n = 0;
	}
	for (; *idx_n < n; (*idx_n)++) {
		const char *k = key(arg, *idx_n);
		size_t mask = *cap - 1, h;

		if (!*k)
			break;
		for (h = key_hash(k) & mask; (*idx)[h]; h = (h + 1) & mask)
			;
		(*idx)[h] = (uint32_t)*idx_n + 1;
	}
	return 0;
}

/* Position of key among n entries, or -1. */
static long kidx_find(uint32_t **idx, size_t *cap, size_t *idx_n, size_t n, kidx_key_fn key, const void *arg,
		      const char *k)
{
	size_t i = 0;

	if (n >= KIDX_LINEAR && kidx_sync(idx, cap, idx_n, n, key, arg) == 0) {
		size_t mask = *cap - 1, h;

		for (h = key_hash(k) & mask; (*idx)[h]; h = (h + 1) & mask)
			if (!strcmp(key(arg, (*idx)[h] - 1), k))
				return (long)(*idx)[h] - 1;
		i = *idx_n; /* not indexed yet */
	}
	for (; i < n; i++)
		if (!strcmp(key(arg, i), k))
			return (long)i;
	return -1;
}

static const char *vmt_key(const void *arg, size_t i)
{
	return ((const struct kw_vmtable *)arg)->vms[i].key;
}

static void vmt_unindex(struct kw_vmtable *t)
{
	kidx_reset(t->idx, t->idx_cap, &t->idx_n);
}

struct kw_vm *kw_vmt_find_key(struct kw_vmtable *t, const char *key)
{
	long i = kidx_find(&t->idx, &t->idx_cap, &t->idx_n, t->n, vmt_key, t, key);

	return i < 0 ? NULL : &t->vms[i];
}

struct kw_vm *kw_vmt_find_pid(struct kw_vmtable *t, pid_t pid)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (pid > 0 && t->vms[i].pid == pid)
			return &t->vms[i];
	return NULL;
}

struct kw_vm *kw_vmt_find_uuid(struct kw_vmtable *t, const char *uuid)
{
	size_t i;

	if (!uuid || !*uuid)
		return NULL;
	for (i = 0; i < t->n; i++)
		if (!strcasecmp(t->vms[i].uuid, uuid))
			return &t->vms[i];
	return NULL;
}

struct kw_vm *kw_vmt_find_name(struct kw_vmtable *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->vms[i].name, name))
			return &t->vms[i];
	return NULL;
}

struct kw_vm *kw_vmt_add(struct kw_vmtable *t)
{
	struct kw_vm *vm;

	if (kw_grow((void **)&t->vms, &t->cap, t->n, sizeof(*t->vms)))
		return NULL;
	vm = &t->vms[t->n++];
	memset(vm, 0, sizeof(*vm));
	vm->pve_id = -1;
	vm->dom_id = -1;
	vm->lv_persistent = -1;
	return vm;
}

void kw_vmt_remove_at(struct kw_vmtable *t, size_t i)
{
	if (i >= t->n)
		return;
	kw_vm_free(&t->vms[i]);
	memmove(&t->vms[i], &t->vms[i + 1], (t->n - i - 1) * sizeof(*t->vms));
	t->n--;
	vmt_unindex(t);
}

void kw_vmt_free(struct kw_vmtable *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		kw_vm_free(&t->vms[i]);
	free(t->vms);
	free(t->idx);
	t->vms = NULL;
	t->idx = NULL;
	t->n = t->cap = 0;
	t->idx_cap = t->idx_n = 0;
}

static int vm_cmp(const void *pa, const void *pb)
{
	const struct kw_vm *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	if (c)
		return c;
	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

void kw_vmt_sort(struct kw_vmtable *t)
{
	if (t->n > 1) {
		qsort(t->vms, t->n, sizeof(*t->vms), vm_cmp);
		vmt_unindex(t);
	}
}

/* ------------------------------------------------------- per-VM caches */

static const char *vmc_key(const void *arg, size_t i)
{
	return kw_vmcache_at((const struct kw_vmcache *)arg, i);
}

void *kw_vmcache_get(struct kw_vmcache *c, const char *key, int *created)
{
	char *item;
	long i;

	*created = 0;
	i = kidx_find(&c->idx, &c->idx_cap, &c->idx_n, c->n, vmc_key, c, key);
	if (i >= 0)
		return kw_vmcache_at(c, (size_t)i);
	if (kw_grow(&c->items, &c->cap, c->n, c->size))
		return NULL;
	item = kw_vmcache_at(c, c->n++);
	memset(item, 0, c->size);
	kw_strlcpy(item, key, 64);
	*created = 1;
	return item;
}

void kw_vmcache_prune(struct kw_vmcache *c, struct kw_vmtable *t,
		      int (*stale)(const void *item, const struct kw_vm *vm), void (*drop)(void *item))
{
	size_t i = 0;

	while (i < c->n) {
		void *item = kw_vmcache_at(c, i);
		const struct kw_vm *vm = kw_vmt_find_key(t, item);

		if (vm && !(stale && stale(item, vm))) {
			i++;
			continue;
		}
		if (drop)
			drop(item);
		if (i != --c->n)
			memcpy(item, kw_vmcache_at(c, c->n), c->size);
		kidx_reset(c->idx, c->idx_cap, &c->idx_n); /* items moved */
	}
}

void kw_vmcache_free(struct kw_vmcache *c, void (*drop)(void *item))
{
	size_t i;

	for (i = 0; drop && i < c->n; i++)
		drop(kw_vmcache_at(c, i));
	free(c->items);
	free(c->idx);
	c->items = NULL;
	c->idx = NULL;
	c->n = c->cap = 0;
	c->idx_cap = c->idx_n = 0;
}

/* ------------------------------------------------------- command lines */

int kw_is_qemu_name(const char *name)
{
	const char *base = strrchr(name, '/');

	base = base ? base + 1 : name;
	return kw_startswith(base, "qemu-system-") || !strcmp(base, "qemu-kvm") || !strcmp(base, "kvm");
}

int kw_vcpu_from_comm(const char *comm)
{
	/* QEMU (debug-threads=on): "CPU 3/KVM"; firecracker: "fc_vcpu 3";
	 * cloud-hypervisor: "vcpu3"; crosvm: "crosvm_vcpu3". */
	static const char *const pre[] = { "CPU ", "fc_vcpu ", "vcpu", "crosvm_vcpu" };
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(pre); i++) {
		const char *p = comm;
		char *end;
		long v;

		if (!kw_startswith(p, pre[i]))
			continue;
		p += strlen(pre[i]);
		if (!isdigit((unsigned char)*p))
			continue;
		v = strtol(p, &end, 10);
		if (v < 0 || v > 65535)
			continue;
		if (i == 0 ? !strcmp(end, "/KVM") : (*end == '\0' || *end == '\n'))
			return (int)v;
	}
	return -1;
}

/* QEMU option values escape a literal comma as ",,".  Copy the first
 * element of opt (up to an unescaped comma) into out, unescaping; return a
 * pointer past the comma (or to the NUL). */
static const char *opt_elem(const char *opt, char *out, size_t len)
{
	size_t o = 0;

	while (*opt) {
		if (*opt == ',') {
			if (opt[1] == ',') {
				if (o + 1 < len)
					out[o++] = ',';
				opt += 2;
				continue;
			}
			opt++;
			break;
		}
		if (o + 1 < len)
			out[o++] = *opt;
		opt++;
	}
	out[o] = '\0';
	return opt;
}

static void parse_name_opt(const char *val, struct kw_vm *vm)
{
	char el[KW_NAME_MAX + 8]; /* "guest=" + a name of up to KW_NAME_MAX - 1 bytes */
	int first = 1;

	while (*val) {
		val = opt_elem(val, el, sizeof(el));
		if (kw_startswith(el, "guest="))
			kw_strlcpy(vm->name, el + 6, sizeof(vm->name));
		else if (first && !strchr(el, '='))
			kw_strlcpy(vm->name, el, sizeof(vm->name));
		first = 0;
	}
}

/* Find "ifname=X" (keyval syntax) or "\"ifname\":\"X\"" (JSON syntax). */
static void parse_netdev_opt(const char *val, struct kw_vm *vm)
{
	char el[256];
	const char *p;

	if (*val == '{') {
		p = strstr(val, "\"ifname\"");
		if (!p)
			return;
		p = strchr(p + 8, '"');
		if (!p)
			return;
		p++;
		size_t n = strcspn(p, "\"");
		if (n && n < KW_IFNAME_MAX) {
			memcpy(el, p, n);
			el[n] = '\0';
			kw_vm_add_netif(vm, el);
		}
		return;
	}
	while (*val) {
		val = opt_elem(val, el, sizeof(el));
		if (kw_startswith(el, "ifname="))
			kw_vm_add_netif(vm, el + 7);
	}
}

static int valid_uuid(const char *s)
{
	size_t i, n = strlen(s);

	if (n != 36)
		return 0;
	for (i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* QMP server sockets named on the command line.  A monitor in control mode
 * (-mon chardev=X,mode=control) may come before or after its -chardev. */
#define QMP_SCAN_MAX 16

struct qmp_scan {
	struct {
		char id[64];
		char path[KW_QMP_PATH_MAX];
	} chardev[QMP_SCAN_MAX];     /* server-mode unix socket chardevs */
	int nchardev;
	char mon[QMP_SCAN_MAX][64];  /* chardev ids of control-mode monitors */
	int nmon;
	char direct[KW_QMP_PATH_MAX]; /* -qmp unix:PATH,server=on */
};

/* "server" / "server=on|yes|true|y" -> 1, "server=<other>" -> 0, other keys -1. */
static int server_flag(const char *el)
{
	if (!strcmp(el, "server"))
		return 1;
	if (!kw_startswith(el, "server="))
		return -1;
	el += 7;
	return !strcmp(el, "on") || !strcmp(el, "yes") || !strcmp(el, "true") || !strcmp(el, "y");
}

/* -chardev socket,id=X,path=PATH,server=on[,wait=off]: a unix socket QEMU
 * listens on.  Client sockets (QEMU connects out, e.g. Proxmox's qmeventd),
 * fd= passing and abstract sockets have no path we could connect to. */
static void parse_chardev_opt(const char *val, struct qmp_scan *q)
{
	char el[KW_QMP_PATH_MAX + 8], id[64] = "", path[KW_QMP_PATH_MAX] = "";
	int first = 1, socket = 0, server = 0, abstract = 0, f;

	while (*val) {
		val = opt_elem(val, el, sizeof(el));
		if ((first && !strcmp(el, "socket")) || !strcmp(el, "backend=socket"))
			socket = 1;
		else if (kw_startswith(el, "id="))
			kw_strlcpy(id, el + 3, sizeof(id));
		else if (kw_startswith(el, "path=") && strlen(el + 5) < sizeof(path))
			kw_strlcpy(path, el + 5, sizeof(path));
		else if ((f = server_flag(el)) >= 0)
			server = f;
		else if (!strcmp(el, "abstract") || !strcmp(el, "abstract=on"))
			abstract = 1;
		first = 0;
	}
	if (socket && server && !abstract && id[0] && path[0] && q->nchardev < QMP_SCAN_MAX) {
		kw_strlcpy(q->chardev[q->nchardev].id, id, sizeof(q->chardev[0].id));
		kw_strlcpy(q->chardev[q->nchardev].path, path, sizeof(q->chardev[0].path));
		q->nchardev++;
	}
}

/* -mon [chardev=]X,mode=control[,pretty=on]: a QMP monitor (the default
 * mode, readline, is the human monitor). */
static void parse_mon_opt(const char *val, struct qmp_scan *q)
{
	char el[128], chr[64] = "";
	int first = 1, control = 0;

	while (*val) {
		val = opt_elem(val, el, sizeof(el));
		if (kw_startswith(el, "chardev="))
			kw_strlcpy(chr, el + 8, sizeof(chr));
		else if (first && !strchr(el, '='))
			kw_strlcpy(chr, el, sizeof(chr));
		else if (!strcmp(el, "mode=control"))
			control = 1;
		first = 0;
	}
	if (control && chr[0] && q->nmon < QMP_SCAN_MAX)
		kw_strlcpy(q->mon[q->nmon++], chr, sizeof(q->mon[0]));
}

/* -qmp unix:PATH,server=on,wait=off (legacy: ,server,nowait).  Without
 * server QEMU connects to PATH as a client: nothing to connect to. */
static void parse_qmp_opt(const char *val, struct qmp_scan *q)
{
	char el[KW_QMP_PATH_MAX + 8], path[KW_QMP_PATH_MAX] = "";
	int first = 1, server = 0, f;

	while (*val) {
		val = opt_elem(val, el, sizeof(el));
		if (first) {
			if (!kw_startswith(el, "unix:") || strlen(el + 5) >= sizeof(path))
				return;
			kw_strlcpy(path, el + 5, sizeof(path));
		} else if ((f = server_flag(el)) >= 0) {
			server = f;
		}
		first = 0;
	}
	if (server && path[0] && !q->direct[0])
		kw_strlcpy(q->direct, path, sizeof(q->direct));
}

static void qmp_resolve(const struct qmp_scan *q, struct kw_vm *vm)
{
	int m, k;

	if (q->direct[0]) {
		kw_strlcpy(vm->qmp, q->direct, sizeof(vm->qmp));
		return;
	}
	for (m = 0; m < q->nmon; m++)
		for (k = 0; k < q->nchardev; k++)
			if (!strcmp(q->mon[m], q->chardev[k].id)) {
				kw_strlcpy(vm->qmp, q->chardev[k].path, sizeof(vm->qmp));
				return;
			}
}

int kw_parse_qemu_cmdline(const char *cmdline, size_t len, struct kw_vm *vm)
{
	const char *argv[4096];
	size_t argc = 0, off = 0, i;
	struct qmp_scan *qmp;
	int is_qemu;

	/* Split NUL-separated argv; a missing final NUL (truncated read) is fine. */
	while (off < len && argc < KW_ARRAY_SIZE(argv)) {
		size_t n = strnlen(cmdline + off, len - off);
		if (off + n >= len)
			break; /* unterminated last argument: ignore it */
		argv[argc++] = cmdline + off;
		off += n + 1;
	}
	if (argc == 0)
		return 0;
	qmp = calloc(1, sizeof(*qmp)); /* NULL: no QMP socket, the rest still parsed */
	is_qemu = kw_is_qemu_name(argv[0]);
	for (i = 1; i + 1 < argc; i++) {
		const char *o = argv[i], *v = argv[i + 1];

		if (o[0] != '-')
			continue;
		o += (o[1] == '-') ? 2 : 1;
		if (!strcmp(o, "name")) {
			parse_name_opt(v, vm);
			i++;
		} else if (!strcmp(o, "uuid")) {
			if (valid_uuid(v))
				kw_strlcpy(vm->uuid, v, sizeof(vm->uuid));
			i++;
		} else if (!strcmp(o, "id")) {
			long id;
			if (kw_parse_int(v, 0, 999999999, &id) == 0)
				vm->pve_id = (int)id;
			i++;
		} else if (!strcmp(o, "netdev") || !strcmp(o, "net")) {
			if (kw_startswith(v, "tap") || kw_startswith(v, "type=tap") || strstr(v, "\"tap\""))
				parse_netdev_opt(v, vm);
			i++;
		} else if (!strcmp(o, "chardev")) {
			if (qmp)
				parse_chardev_opt(v, qmp);
			i++;
		} else if (!strcmp(o, "mon")) {
			if (qmp)
				parse_mon_opt(v, qmp);
			i++;
		} else if (!strcmp(o, "qmp") || !strcmp(o, "qmp-pretty")) {
			if (qmp)
				parse_qmp_opt(v, qmp);
			i++;
		}
	}
	if (qmp)
		qmp_resolve(qmp, vm);
	free(qmp);
	return is_qemu;
}

void kw_vm_found_str(char *out, size_t len, unsigned found)
{
	snprintf(out, len, "%s%s%s", found & KW_FOUND_PROC ? "proc," : "", found & KW_FOUND_KVMFD ? "kvmfd," : "",
		 found & KW_FOUND_LIBVIRT ? "libvirt," : "");
	if (*out)
		out[strlen(out) - 1] = '\0';
}
