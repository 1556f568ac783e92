// SPDX-License-Identifier: GPL-2.0
/* bg.c - the background collector (see bg.h). */
#include "bg.h"
#include "util/kw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_src_states(const struct kw_collector *c, struct cli_src out[KW_SRC__N])
{
	for (int k = 0; k < KW_SRC__N; k++) {
		const struct kw_source_state *s = &c->src[k];
		struct cli_src *p = &out[k];

		p->on = !!(c->cfg.sources & (1u << k));
		p->available = s->available;
		p->connected = !s->ops || !s->ops->connected || s->ops->connected(c, s->state);
		kw_strlcpy(p->why, s->why, sizeof(p->why));
	}
}

/* Under b->lock: the cycle just collected, and the sources' states. */
static void publish(struct cli_bg *b)
{
	cli_src_states(&b->c, b->src);
	b->host_vms = b->c.host_vms;
	if (kw_snapshot_take(&b->pub, &b->c) == 0)
		b->seq++;
	else
		b->failed = -ENOMEM;
	if (b->wake_fd[1] >= 0 && write(b->wake_fd[1], "", 1) < 0) {
		/* full: a wake-up is pending already */
	}
}

static void *bg_main(void *arg)
{
	struct cli_bg *b = arg;
	uint64_t last = kw_now_mono_ns();
	int first = 1;

	pthread_mutex_lock(&b->lock);
	while (!b->stop && !b->failed) {
		/* the first rates come soon (half a second at most) */
		uint64_t step = (uint64_t)(b->interval * 1e9);
		uint64_t next = last + (first && step > 500000000ull ? 500000000ull : step);
		uint64_t now = kw_now_mono_ns(), t0;
		struct timespec ts;
		int r;

		if (now < next) {
			uint64_t real = kw_now_real_ns() + (next - now);

			ts.tv_sec = (time_t)(real / 1000000000ull);
			ts.tv_nsec = (long)(real % 1000000000ull);
			pthread_cond_timedwait(&b->wake, &b->lock, &ts);
			continue; /* woken: the interval may have changed */
		}
		first = 0;
		last = now;
		pthread_mutex_unlock(&b->lock);
		t0 = kw_now_mono_ns();
		r = kw_collector_collect(&b->c);
		pthread_mutex_lock(&b->lock);
		b->cycle_s = (double)(kw_now_mono_ns() - t0) / 1e9;
		if (r == -ENOMEM)
			b->failed = r;
		else
			publish(b);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int cli_bg_init(struct cli_bg *b, const struct kw_config *cfg, double interval, char *err, size_t errlen)
{
	int r;

	memset(b, 0, sizeof(*b));
	b->wake_fd[0] = b->wake_fd[1] = -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	b->interval = interval;
	if (pipe2(b->wake_fd, O_NONBLOCK | O_CLOEXEC)) {
		r = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		return r;
	}
	r = kw_collector_init(&b->c, cfg, err, errlen);
	if (r < 0) {
		close(b->wake_fd[0]);
		close(b->wake_fd[1]);
		return r;
	}
	uint64_t t0 = kw_now_mono_ns();

	if (kw_collector_collect(&b->c) == -ENOMEM) {
		snprintf(err, errlen, "out of memory");
		cli_bg_fini(b);
		return -ENOMEM;
	}
	b->cycle_s = (double)(kw_now_mono_ns() - t0) / 1e9;
	publish(b);
	return b->failed;
}

int cli_bg_start(struct cli_bg *b)
{
	int r = pthread_create(&b->th, NULL, bg_main, b);

	if (r)
		return -r;
	b->started = 1;
	return 0;
}

void cli_bg_set_interval(struct cli_bg *b, double interval)
{
	pthread_mutex_lock(&b->lock);
	b->interval = interval;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

void cli_bg_drain(struct cli_bg *b)
{
	char buf[64];

	while (read(b->wake_fd[0], buf, sizeof(buf)) > 0)
		;
}

void cli_bg_fini(struct cli_bg *b)
{
	if (b->started) {
		pthread_mutex_lock(&b->lock);
		b->stop = 1;
		pthread_cond_signal(&b->wake);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->th, NULL);
		b->started = 0;
	}
	kw_snapshot_free(&b->pub);
	kw_collector_fini(&b->c);
	if (b->wake_fd[0] >= 0)
		close(b->wake_fd[0]);
	if (b->wake_fd[1] >= 0)
		close(b->wake_fd[1]);
	b->wake_fd[0] = b->wake_fd[1] = -1;
}
