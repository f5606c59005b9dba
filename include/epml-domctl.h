/*
 * XEN_DOMCTL_epml_op: the interface between xen-pml's Xen and dom0's tool
 * xen-epml (docs/xen-pml.md), defined once for both.
 *
 *  - Xen: linked into its tree as public/arch-x86/epml-domctl.h and
 *    included by public/domctl.h (xen-pml patch 0002), where guest handles
 *    exist: @pages is XEN_GUEST_HANDLE_64(xen_epml_page_t).
 *  - xen-epml (xen-pml/tools/xen-epml.c), a static binary without Xen's
 *    headers or libraries: @pages is the buffer's address, 8 bytes either
 *    way.
 *
 * The names are Xen's public ones (XEN_DOMCTL_..., xen_...), as dom0's
 * side sees them in any Xen interface.  Only fixed-width types; no header
 * beyond <stdint.h> outside Xen.  xen-pml/tests/test-epml-abi.c checks
 * sizes and offsets.
 */
#ifndef EPML_DOMCTL_H
#define EPML_DOMCTL_H

#if !defined(__XEN__) && !defined(DEFINE_XEN_GUEST_HANDLE)
#include <stdint.h>
#endif

/* 64-bit fields are 8-byte aligned for 32-bit callers too (Xen's rule). */
#define EPML_U64A                       uint64_t __attribute__((__aligned__(8)))

#define XEN_DOMCTL_epml_op              87      /* struct xen_domctl.cmd */
#define VIRQ_EPML                       14      /* G. (DOM0) logs to collect */

/*
 * HAP HVM/PVH domains only; -EOPNOTSUPP when the CPU has no EPML,
 * -ENODATA when it is not enabled for the domain, -EBUSY when log-dirty
 * (stock PML) is active.
 */
#define XEN_DOMCTL_EPML_ENABLE          0   /* flags, buf_order, notify_cpu */
#define XEN_DOMCTL_EPML_DISABLE         1
#define XEN_DOMCTL_EPML_INFO            2   /* counters only */
#define XEN_DOMCTL_EPML_COLLECT         3   /* drain; pages of the window */
#define XEN_DOMCTL_EPML_NEW_WINDOW      4   /* drain, report, reset A/D, next */
#define XEN_DOMCTL_EPML_COLLECT_NEXT    5   /* COLLECT and NEW_WINDOW at once */
#define XEN_DOMCTL_EPML_CUT             6   /* dom0-drained: close the window */
#define XEN_DOMCTL_EPML_RESUME          7   /* dom0-drained: vCPU @nr may log */
#define XEN_DOMCTL_EPML_READS           (1u << 0)
#define XEN_DOMCTL_EPML_WRITES          (1u << 1)
#define XEN_DOMCTL_EPML_FILTER_WALK     (1u << 2)
/*
 * ENABLE in posted mode (docs/epml.md 8.1, issue 15): the notification is
 * posted to the posted-interrupt descriptor of the hardware domain's vCPU
 * @notify_cpu (a vCPU id, not a physical CPU; dom0 must be PVH), as the
 * vector in flags bits 15:8, or that vCPU's event-channel upcall vector
 * when those bits are 0.  Xen's tasklet and VIRQ_EPML are not involved:
 * handed-over buffers are drained at window boundaries (COLLECT,
 * NEW_WINDOW, COLLECT_NEXT) and at a PML-full exit until dom0 drains them
 * itself (item 4).  -EOPNOTSUPP without the CPU's posted notification or
 * with a PV dom0.
 */
#define XEN_DOMCTL_EPML_POSTED          (1u << 3)
/*
 * ENABLE with dom0's buffers (posted mode only; docs/xen-pml.md, "dom0
 * drains the log"): the log buffers and descriptors are dom0's memory, and
 * dom0 drains them and keeps the longmap; Xen only arms the CPU, resets
 * A/D flags at window cuts (CUT) and tears down.  @pages then points to
 * uint64_t frames[3 * nr_vcpus] of dom0 (buffer 0, buffer 1, descriptor
 * per vCPU; each buffer machine-contiguous), @nr to their number; with @nr
 * too small Xen returns -ENOSPC and the number it needs in @nr.  INFO
 * reports the mode in @flags.  COLLECT, NEW_WINDOW and COLLECT_NEXT are
 * refused (-EINVAL): Xen keeps no window.
 *
 * CUT (this mode only), with the domain paused inside the call: for each
 * vCPU i, @pages[i] (uint64_t, @nr >= nr_vcpus) receives where the window
 * ends in its log: bits 31:0 the EPML index of its active buffer, bit 32
 * the active buffer, bits 34:33 which buffers were FULL (handed over, not
 * yet given back).  Entries in those FULL buffers and entries [.., index)
 * of the active buffer are the window's; later ones are the next's.  Then
 * A/D flags of every EPT leaf are cleared (walking the EPT: dom0's entries
 * name EPT-entry addresses Xen would have to verify), the EPT flushed, and
 * the next window opened.  @nr returns nr_vcpus.
 */
#define XEN_DOMCTL_EPML_DOM0_BUFFERS    (1u << 4)
/*
 * Both of a vCPU's buffers full (PML-full VM exit) in this mode: only dom0
 * can free one, so instead of letting the vCPU exit again at every retry
 * Xen pauses it and sets the uint32_t at XEN_EPML_DOM0_WAITING in its
 * descriptor page (after the 64-byte descriptor).  dom0, after clearing a
 * FULL flag, reads that word and, if it is set, calls RESUME with @nr =
 * the vCPU: Xen clears it and unpauses the vCPU.  Xen sets the word
 * before it checks the FULL flags once more, dom0 clears FULL before it
 * reads the word (both with full barriers), so a buffer given back
 * meanwhile is never missed.
 */
#define XEN_EPML_DOM0_WAITING           64
#define XEN_EPML_CUT_INDEX(w)           ((uint32_t)(w))
#define XEN_EPML_CUT_ACTIVE(w)          ((unsigned int)((w) >> 32) & 1)
#define XEN_EPML_CUT_FULL(w)            ((unsigned int)((w) >> 33) & 3)
#define XEN_DOMCTL_EPML_POST_VECTOR_SHIFT 8
#define XEN_DOMCTL_EPML_POST_VECTOR_MASK  (0xffu << XEN_DOMCTL_EPML_POST_VECTOR_SHIFT)

struct xen_epml_page {
    EPML_U64A gfn;
    uint32_t flags;             /* in this window: */
#define XEN_EPML_PAGE_READ              (1u << 0)
#define XEN_EPML_PAGE_WRITTEN           (1u << 1)
    uint16_t reads;             /* windows read in since enable (saturates) */
    uint16_t writes;            /* windows written in since enable */
};
typedef struct xen_epml_page xen_epml_page_t;

#ifdef DEFINE_XEN_GUEST_HANDLE
DEFINE_XEN_GUEST_HANDLE(xen_epml_page_t);
#define EPML_PAGES_HANDLE               XEN_GUEST_HANDLE_64(xen_epml_page_t)
#else
#define EPML_PAGES_HANDLE               EPML_U64A   /* the buffer's address */
#endif

struct xen_domctl_epml_op {
    uint32_t op;                /* IN: XEN_DOMCTL_EPML_* */
    uint32_t flags;             /* IN (ENABLE): XEN_DOMCTL_EPML_READS... */
    uint32_t buf_order;         /* IN (ENABLE): buffers of 4 KiB << order */
    uint32_t notify_cpu;        /* IN (ENABLE): CPU taking notifications */
    EPML_U64A nr;               /* IN (COLLECT): room in @pages; OUT: used */
    EPML_PAGES_HANDLE pages;
    /* OUT (INFO, COLLECT, NEW_WINDOW: the window being reported): */
    EPML_U64A window;           /* number of the window */
    EPML_U64A touched;          /* pages logged in it */
    EPML_U64A written;          /* of which written */
    EPML_U64A nr_gfns;          /* gfns tracked: 0 .. nr_gfns-1 */
    EPML_U64A entries;          /* log entries consumed since enable */
    EPML_U64A walk;             /* of which from the guest page walk */
    EPML_U64A large;            /* of which for 2M/1G EPT leaves */
    EPML_U64A out_of_range;     /* entries beyond nr_gfns */
    EPML_U64A dropped;          /* entries the CPU dropped (both full) */
    EPML_U64A handovers;        /* buffers the CPU handed over */
    EPML_U64A slow_resets;      /* windows reset by walking the EPT */
    uint32_t notifications;     /* notifications that drained a buffer */
    uint32_t full_exits;        /* PML-full exits: both buffers were full */
};
typedef struct xen_domctl_epml_op xen_domctl_epml_op_t;

#endif /* EPML_DOMCTL_H */
