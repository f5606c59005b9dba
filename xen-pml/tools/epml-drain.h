/*
 * dom0 drains extended PML's log itself (docs/xen-pml.md, "dom0 drains
 * the log"; issue 15): the buffers and descriptors are dom0 memory that the
 * module epml_dom0 provides (include/epml-dom0.h), the window bitmaps and
 * the longmap live here, and Xen is entered only to arm logging and at a
 * window's cut (XEN_DOMCTL_EPML_CUT).
 */
#ifndef EPML_DRAIN_H
#define EPML_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "epml-domctl.h"

struct epml_drain {
	int fd;                         /* /dev/epml */
	void *map;                      /* the buffer sets, mmap()ed */
	unsigned nr_vcpus, order, stride;
	uint64_t nr_gfns;
	uint64_t *win_read, *win_written;       /* bitmaps of this window */
	uint16_t (*longmap)[2];         /* windows read, written in */
	uint32_t *skip;                 /* [vcpu][2]: entries already taken */
	/* this window */
	uint64_t touched, written;
	/* since the tool started */
	uint64_t entries, walk, large, out_of_range, buffers, notifications;
	uint64_t resumes;               /* vCPUs Xen paused, both full, resumed */
	void (*resume)(unsigned vcpu);  /* XEN_DOMCTL_EPML_RESUME */
	/* notification to drain: from the interrupt to the drain's start */
	uint64_t lat_n, lat_sum_ns, lat_max_ns;
};

/* Open /dev/epml and map the sets allocated at enable; die on failure. */
void epml_drain_open(struct epml_drain *d, uint64_t nr_gfns);

/* Drain every buffer handed over (FULL) into this window, give it back. */
unsigned epml_drain_full(struct epml_drain *d);

/*
 * The window ends where XEN_DOMCTL_EPML_CUT says (@where[vcpu]): drain the
 * buffers FULL at the cut and the active buffers' entries before the cut
 * index into this window.
 */
void epml_drain_cut(struct epml_drain *d, const uint64_t *where);

/*
 * Write this window's pages (at most @room) as Xen's COLLECT would, with
 * their longmap counts; returns how many.
 */
uint64_t epml_drain_pages(const struct epml_drain *d, struct xen_epml_page *out, uint64_t room);

/* Open the next window: empty bitmaps, counts at zero. */
void epml_drain_next(struct epml_drain *d);

/* Wait up to @ms for a notification; true if one came (then drain). */
bool epml_drain_wait(struct epml_drain *d, int ms);

#endif /* EPML_DRAIN_H */
