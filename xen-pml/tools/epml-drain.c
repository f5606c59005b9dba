/*
 * dom0's drain of extended PML's log (epml-drain.h).
 *
 * Ownership follows docs/epml.md section 7: a buffer whose descriptor
 * state has FULL set is software's until software clears FULL; the CPU
 * fills the other one meanwhile.  Software reads count[b] after seeing
 * FULL (acquire), and clears FULL only after it has read every entry
 * (release), so the CPU never overwrites entries not yet read.
 *
 * The active buffer is the CPU's, but the entries before the index that
 * XEN_DOMCTL_EPML_CUT reports are complete and never rewritten until the
 * buffer has been handed over and given back: those are read at the cut
 * and skipped when the buffer is handed over later (skip[]).  A full
 * active buffer (index N) has been handed over already: it is not read
 * twice, and the skip of a buffer that was drained is 0 again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "epml-arch.h"
#include "epml-dom0.h"
#include "epml-drain.h"

static void drain_die(const char *what, int err) __attribute__((noreturn));
static void drain_die(const char *what, int err)
{
	fprintf(stderr, "xen-epml: %s: %s\n", what, strerror(err));
	exit(1);
}

static char *set_base(const struct epml_drain *d, unsigned v)
{
	return (char *)d->map + (size_t)v * d->stride * 4096;
}

static const struct epml_entry *buffer(const struct epml_drain *d, unsigned v, unsigned b)
{
	return (const struct epml_entry *)(set_base(d, v) + (size_t)b * (4096u << d->order));
}

static struct epml_desc *descriptor(const struct epml_drain *d, unsigned v)
{
	return (struct epml_desc *)(set_base(d, v) + (2ul << d->order) * 4096);
}

void epml_drain_open(struct epml_drain *d, uint64_t nr_gfns)
{
	struct epml_dom0_info info;
	size_t words = (nr_gfns + 63) / 64;

	memset(d, 0, sizeof(*d));
	d->fd = open(EPML_DOM0_DEVICE, O_RDWR | O_CLOEXEC);
	if (d->fd < 0)
		drain_die(EPML_DOM0_DEVICE " (dom0's module epml_dom0)", errno);
	if (ioctl(d->fd, EPML_DOM0_IOC_INFO, &info) < 0)
		drain_die(EPML_DOM0_DEVICE ": info", errno);
	if (!info.nr_vcpus)
		drain_die(EPML_DOM0_DEVICE ": no buffers (xen-epml enable --dom0-drain first)", ENODATA);
	d->nr_vcpus = info.nr_vcpus;
	d->order = info.order;
	d->stride = info.stride;
	d->notifications = info.notifications;
	d->map = mmap(NULL, (size_t)d->nr_vcpus * d->stride * 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED, d->fd, 0);
	if (d->map == MAP_FAILED)
		drain_die(EPML_DOM0_DEVICE ": mmap", errno);
	d->nr_gfns = nr_gfns;
	d->win_read = calloc(words, sizeof(uint64_t));
	d->win_written = calloc(words, sizeof(uint64_t));
	d->longmap = calloc(nr_gfns, sizeof(*d->longmap));
	d->skip = calloc(2 * d->nr_vcpus, sizeof(uint32_t));
	if (!d->win_read || !d->win_written || !d->longmap || !d->skip)
		drain_die("dom0's window and longmap", ENOMEM);
}

static bool test_and_set(uint64_t *bm, uint64_t bit)
{
	uint64_t m = 1ull << (bit % 64);
	bool was = bm[bit / 64] & m;

	bm[bit / 64] |= m;
	return was;
}

static bool test(const uint64_t *bm, uint64_t bit)
{
	return bm[bit / 64] & (1ull << (bit % 64));
}

/* One entry into this window (Xen's epml_note(), without the EPT list). */
static void note(struct epml_drain *d, uint64_t info)
{
	uint64_t gfn = epml_entry_gpa(info) >> 12;

	d->entries++;
	if (info & EPML_ENTRY_WALK)
		d->walk++;
	if (epml_entry_level(info))
		d->large++;
	if (gfn >= d->nr_gfns) {
		d->out_of_range++;
		return;
	}
	if (!test(d->win_read, gfn) && !test(d->win_written, gfn))
		d->touched++;
	if ((info & EPML_ENTRY_R) && !test_and_set(d->win_read, gfn) && d->longmap[gfn][0] != UINT16_MAX)
		d->longmap[gfn][0]++;
	if ((info & EPML_ENTRY_W) && !test_and_set(d->win_written, gfn)) {
		d->written++;
		if (d->longmap[gfn][1] != UINT16_MAX)
			d->longmap[gfn][1]++;
	}
}

static void note_range(struct epml_drain *d, unsigned v, unsigned b, uint32_t from, uint32_t to)
{
	const struct epml_entry *e = buffer(d, v, b);
	uint32_t max = EPML_BUF_ENTRIES(d->order);

	if (to > max)
		to = max;
	for (uint32_t i = from; i < to; i++)
		note(d, e[i].info);
}

/* Drain handed-over buffer @b of vCPU @v (FULL seen) and give it back. */
static void drain_one(struct epml_drain *d, unsigned v, unsigned b)
{
	struct epml_desc *desc = descriptor(d, v);
	uint32_t count = __atomic_load_n(&desc->count[b], __ATOMIC_ACQUIRE);

	note_range(d, v, b, d->skip[2 * v + b], count);
	d->skip[2 * v + b] = 0;
	d->buffers++;
	__atomic_store_n(&desc->state[b], 0, __ATOMIC_RELEASE);
	/*
	 * A vCPU Xen paused because both buffers were full waits for this
	 * (the handshake in epml-domctl.h: FULL cleared, then the word read).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n((uint32_t *)((char *)desc + XEN_EPML_DOM0_WAITING), __ATOMIC_ACQUIRE) &&
	    d->resume) {
		d->resume(v);
		d->resumes++;
	}
}

unsigned epml_drain_full(struct epml_drain *d)
{
	unsigned n = 0;

	for (unsigned v = 0; v < d->nr_vcpus; v++)
		for (unsigned b = 0; b < 2; b++)
			if (__atomic_load_n(&descriptor(d, v)->state[b], __ATOMIC_ACQUIRE) & EPML_DESC_FULL) {
				drain_one(d, v, b);
				n++;
			}
	return n;
}

void epml_drain_cut(struct epml_drain *d, const uint64_t *where)
{
	for (unsigned v = 0; v < d->nr_vcpus; v++) {
		unsigned full = XEN_EPML_CUT_FULL(where[v]);
		unsigned a = XEN_EPML_CUT_ACTIVE(where[v]);
		uint32_t index = XEN_EPML_CUT_INDEX(where[v]);

		for (unsigned b = 0; b < 2; b++)
			if (full & (1u << b))
				drain_one(d, v, b);
		/*
		 * The active buffer's entries before the cut.  At index N the
		 * CPU handed the buffer over when it filled (docs/epml.md 7,
		 * step 3): its entries came or come through FULL, and its next
		 * entries go to the other buffer from index 0, so nothing is
		 * taken here and nothing skipped later.
		 */
		if (index < EPML_BUF_ENTRIES(d->order) && !(full & (1u << a)) &&
		    index > d->skip[2 * v + a]) {
			note_range(d, v, a, d->skip[2 * v + a], index);
			d->skip[2 * v + a] = index;
		}
	}
}

uint64_t epml_drain_pages(const struct epml_drain *d, struct xen_epml_page *out, uint64_t room)
{
	uint64_t n = 0, words = (d->nr_gfns + 63) / 64;

	for (uint64_t w = 0; w < words && n < room; w++) {
		for (uint64_t bits = d->win_read[w] | d->win_written[w]; bits && n < room; bits &= bits - 1) {
			uint64_t gfn = w * 64 + (uint64_t)__builtin_ctzll(bits);

			out[n].gfn = gfn;
			out[n].flags = (test(d->win_read, gfn) ? XEN_EPML_PAGE_READ : 0) |
				       (test(d->win_written, gfn) ? XEN_EPML_PAGE_WRITTEN : 0);
			out[n].reads = d->longmap[gfn][0];
			out[n].writes = d->longmap[gfn][1];
			n++;
		}
	}
	return n;
}

void epml_drain_next(struct epml_drain *d)
{
	size_t words = (d->nr_gfns + 63) / 64;

	memset(d->win_read, 0, words * sizeof(uint64_t));
	memset(d->win_written, 0, words * sizeof(uint64_t));
	d->touched = d->written = 0;
}

bool epml_drain_wait(struct epml_drain *d, int ms)
{
	struct pollfd p = { .fd = d->fd, .events = POLLIN };
	struct epml_dom0_info info;
	struct timespec ts;
	uint64_t now;

	if (poll(&p, 1, ms) <= 0)
		return false;
	if (read(d->fd, &info, sizeof(info)) != sizeof(info))
		return false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (info.last_ns && now >= info.last_ns) {
		d->lat_n++;
		d->lat_sum_ns += now - info.last_ns;
		if (now - info.last_ns > d->lat_max_ns)
			d->lat_max_ns = now - info.last_ns;
	}
	d->notifications = info.notifications;
	epml_drain_full(d);
	return true;
}
