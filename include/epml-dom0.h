/*
 * /dev/epml: the interface between dom0's kernel module epml_dom0
 * (xen-pml/dom0/epml_dom0.c) and dom0's tool xen-epml, defined once for
 * both (docs/xen-pml.md, "dom0 drains the log").
 *
 * The module owns two things xen-epml cannot have in user space:
 *
 *  - a vector: an interrupt of the collector CPU that extended PML's posted
 *    notification (docs/epml.md 8.1) is aimed at.  Each delivery counts one
 *    notification and wakes read() and poll();
 *  - the log buffers and descriptors, in dom0 memory: per logging vCPU two
 *    buffers of 4 KiB << order and a descriptor page, physically contiguous
 *    each.  EPML_DOM0_IOC_ALLOC returns their frame numbers (dom0's own
 *    guest frames: dom0 is PVH), which xen-epml hands to Xen with
 *    XEN_DOMCTL_EPML_ENABLE | XEN_DOMCTL_EPML_DOM0_BUFFERS; mmap() maps them
 *    for draining.  They stay allocated until the module is unloaded: Xen
 *    holds references to them while logging is on, so disable logging
 *    first.
 *
 * Only fixed-width types: the kernel includes it with <linux/types.h>
 * semantics through <linux/kernel.h>, xen-epml with <stdint.h>.
 */
#ifndef EPML_DOM0_H
#define EPML_DOM0_H

#ifndef __KERNEL__
#include <stdint.h>
#include <sys/ioctl.h>
#endif

#define EPML_DOM0_DEVICE        "/dev/epml"
#define EPML_DOM0_MAX_VCPUS     128
#define EPML_DOM0_MAX_ORDER     9       /* 2 MiB buffers */

/* read() and EPML_DOM0_IOC_INFO. */
struct epml_dom0_info {
    uint64_t notifications;     /* interrupts taken since the module loaded */
    uint32_t vector;            /* the vector on @cpu: post this one */
    uint32_t cpu;               /* Linux CPU of the collector */
    uint32_t xen_vcpu;          /* Xen's vCPU id of @cpu: XEN_DOMCTL's notify_cpu */
    uint32_t nr_vcpus;          /* buffer sets allocated (0: none yet) */
    uint32_t order;             /* buffers of 4 KiB << order */
    uint32_t stride;            /* pages per vCPU in the mmap() layout */
    uint64_t last_ns;           /* CLOCK_MONOTONIC of the last interrupt */
};

/*
 * Allocate @nr_vcpus sets (or find the ones allocated before with the same
 * geometry; other geometry: EBUSY) and write their frames to @frames, three
 * per vCPU: buffer 0, buffer 1, descriptor.
 */
struct epml_dom0_alloc {
    uint32_t nr_vcpus;          /* IN */
    uint32_t order;             /* IN */
    uint64_t frames;            /* IN: address of uint64_t[3 * nr_vcpus] */
};

/*
 * mmap(): vCPU i's set at page offset i * stride: buffer 0 (1 << order
 * pages), buffer 1, then the descriptor page (struct epml_desc at 0).
 */
#define EPML_DOM0_STRIDE(order) ((2u << (order)) + 1)

#define EPML_DOM0_IOC_ALLOC     _IOW('E', 1, struct epml_dom0_alloc)
#define EPML_DOM0_IOC_INFO      _IOR('E', 2, struct epml_dom0_info)

#endif /* EPML_DOM0_H */
