/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Extended PML (EPML) for HAP domains on a CPU that offers it (qemu-pml;
 * the hardware is specified in qemu-pml's docs/epml.md, this code in its
 * docs/xen-pml.md).
 *
 * Per domain, dom0 enables read and write logging with XEN_DOMCTL_epml_op.
 * Each vCPU gets two log buffers and a descriptor; a full buffer is handed
 * over by the CPU with a notification interrupt to one physical CPU,
 * whose tasklet consolidates the entries into the domain's "longmap" and
 * gives the buffer back, then raises VIRQ_EPML for dom0.  Consolidation:
 *
 *  - window bitmaps: pages read, pages written in the current window;
 *  - the longmap: per page, the number of windows it was read and
 *    written in since logging was enabled (its hotness);
 *  - the EPT-entry address of each page logged in the window, so that
 *    opening the next window clears those entries' A/D flags directly,
 *    without walking the EPT, and the next access is logged again.
 *
 * Nothing is lost silently: entries the CPU dropped are counted by it in
 * the descriptor, entries this code cannot place are counted too.
 */

#include <xen/domain_page.h>
#include <xen/event.h>
#include <xen/guest_access.h>
#include <xen/param.h>
#include <xen/pci.h>
#include <xen/sched.h>
#include <xen/softirq.h>
#include <xen/tasklet.h>
#include <xen/vmap.h>
#include <asm/apic.h>
#include <asm/irq.h>
#include <asm/p2m.h>
#include <asm/hvm/vmx/epml.h>
#include <asm/hvm/vmx/epml-arch.h>
#include <asm/hvm/vmx/vmcs.h>
#include <asm/hvm/vmx/vmx.h>
#include <public/domctl.h>

/*
 * The architecture (docs/epml.md): controls EPML_CTL_*, entry bits
 * EPML_ENTRY_*, struct epml_desc and EPML_DESC_FULL, capability bits
 * EPML_CAP_*, in qemu-pml's include/epml-arch.h, which QEMU's emulation
 * uses too.
 */

/* @pages as an array of uint64_t (dom0's frames; CUT's positions). */
#define epml_u64_handle(h)  guest_handle_cast(guest_handle_cast(h, void), uint64_t)

/* EPT entry flags cleared to see the next access (SDM 29.3.5). */
#define EPTE_A                  (1UL << 8)
#define EPTE_D                  (1UL << 9)

struct epml_vcpu {
    void *buf[2];               /* Xen's buffers (NULL with dom0's) */
    struct epml_desc *desc;     /* Xen's page, or dom0's mapped globally */
    mfn_t dom0_frame[3];        /* dom0's buffers and descriptor: referenced */
    bool waiting;               /* paused until dom0 gives a buffer back */
};

struct epml_longmap_entry {
    uint16_t reads, writes;     /* windows read / written in, saturating */
};

struct epml_domain {
    struct list_head list;      /* epml_domains */
    struct domain *d;
    unsigned int order;         /* buffers are 4k << order */
    unsigned int ctl;
    unsigned int notify_cpu;    /* posted mode: the collector's vCPU id */
    struct vcpu *collector;     /* posted mode: dom0's vCPU, else NULL */
    uint8_t post_vector;        /* posted mode: the vector posted */
    bool dom0_bufs;             /* dom0's buffers: dom0 drains, no window here */
    unsigned long nr_gfns;      /* gfns 0 .. nr_gfns-1 are tracked */
    unsigned long *win_read;    /* pages read in this window */
    unsigned long *win_written; /* pages written in this window */
    unsigned long *prev_read;   /* COLLECT_NEXT: the window it closed */
    unsigned long *prev_written;
    unsigned long split;        /* large EPT leaves split at ENABLE */
    struct epml_longmap_entry *longmap;
    paddr_t *epte;              /* EPT entries of the window's pages */
    unsigned long nr_epte;
    unsigned long ptp_frees;    /* epml_ptp_frees when the window opened */
    uint64_t window;
    uint64_t touched, written;  /* pages in the window */
    struct xen_domctl_epml_op stats;
};

static LIST_HEAD(epml_domains);
static DEFINE_SPINLOCK(epml_lock);
static uint8_t epml_vector;

/* vCPUs whose active buffers a collection drains (more are refused). */
#define HVM_MAX_VCPUS_EPML      128
static unsigned long epml_ptp_frees;

/*
 * Deliberate defects for mutation runs (qemu-pml docs/ground-truth.md),
 * never on unless the command line names them: epml_mutate=no-sync skips
 * the EPT flush after a window's A/D reset, epml_mutate=no-dirty-reset
 * clears only the accessed flags.  Xen says so at boot.
 */
static char __initdata opt_epml_mutate[32];
string_param("epml_mutate", opt_epml_mutate);
static bool __read_mostly epml_mutate_no_sync, epml_mutate_no_dirty_reset;

static int __init cf_check epml_mutate_init(void)
{
    if ( !*opt_epml_mutate )
        return 0;
    epml_mutate_no_sync = strstr(opt_epml_mutate, "no-sync");
    epml_mutate_no_dirty_reset = strstr(opt_epml_mutate, "no-dirty-reset");
    printk(XENLOG_WARNING "EPML: MUTATION RUN: epml_mutate=%s: extended PML is deliberately broken\n",
           opt_epml_mutate);
    return 0;
}
__initcall(epml_mutate_init);

/* ---- consolidation ------------------------------------------------------ */

static void epml_note(struct epml_domain *ed, uint64_t e, uint64_t epte)
{
    unsigned long gfn = epml_entry_gpa(e) >> PAGE_SHIFT;
    bool first;

    ed->stats.entries++;
    if ( e & EPML_ENTRY_WALK )
        ed->stats.walk++;
    if ( epml_entry_level(e) )
        ed->stats.large++;
    if ( gfn >= ed->nr_gfns )
    {
        ed->stats.out_of_range++;
        return;
    }

    first = !test_bit(gfn, ed->win_read) && !test_bit(gfn, ed->win_written);
    if ( (e & EPML_ENTRY_R) && !__test_and_set_bit(gfn, ed->win_read) &&
         ed->longmap[gfn].reads != UINT16_MAX )
        ed->longmap[gfn].reads++;
    if ( (e & EPML_ENTRY_W) && !__test_and_set_bit(gfn, ed->win_written) )
    {
        ed->written++;
        if ( ed->longmap[gfn].writes != UINT16_MAX )
            ed->longmap[gfn].writes++;
    }
    if ( first )
    {
        ed->touched++;
        if ( ed->nr_epte < ed->nr_gfns )
            ed->epte[ed->nr_epte++] = epte;
    }
}

static void epml_drain_buffer(struct epml_domain *ed, const uint64_t *buf,
                              unsigned int count)
{
    unsigned int i;

    for ( i = 0; i < count; i++ )
        epml_note(ed, buf[2 * i], buf[2 * i + 1]);
}

/* Drain every handed-over buffer of @ed's vCPUs and give them back. */
static bool epml_drain_handed_over(struct epml_domain *ed)
{
    struct vcpu *v;
    bool any = false;

    if ( ed->dom0_bufs )
        return false;           /* dom0's to drain */
    for_each_vcpu ( ed->d, v )
    {
        struct epml_vcpu *ev = v->arch.hvm.vmx.epml;
        unsigned int b;

        if ( !ev )
            continue;
        for ( b = 0; b < 2; b++ )
        {
            if ( !(ACCESS_ONCE(ev->desc->state[b]) & EPML_DESC_FULL) )
                continue;
            smp_rmb();
            epml_drain_buffer(ed, ev->buf[b], ev->desc->count[b]);
            smp_mb();
            ACCESS_ONCE(ev->desc->state[b]) = 0;    /* give it back */
            any = true;
        }
    }
    return any;
}

/*
 * Where paused @v's log stands: its EPML index and active buffer (VMCS
 * guest state; the access may send an IPI, so not under epml_lock).
 */
static void epml_log_position(struct vcpu *v, unsigned long *index,
                              unsigned long *active)
{
    vmx_vmcs_enter(v);
    __vmread(GUEST_EPML_INDEX, index);
    __vmread(GUEST_EPML_ACTIVE, active);
    vmx_vmcs_exit(v);
}

/*
 * With @ed's domain paused: drain handed-over buffers and what each vCPU's
 * active buffer holds (its index is in the VMCS).  The VMCS accesses may
 * send IPIs, so they happen outside epml_lock; the paused vCPUs cannot
 * change their active buffers meanwhile.
 */
static void epml_drain_all(struct domain *d)
{
    unsigned long index[HVM_MAX_VCPUS_EPML], active[HVM_MAX_VCPUS_EPML];
    struct epml_domain *ed;
    struct vcpu *v;

    for_each_vcpu ( d, v )
    {
        if ( v->vcpu_id >= HVM_MAX_VCPUS_EPML || !v->arch.hvm.vmx.epml )
            continue;
        epml_log_position(v, &index[v->vcpu_id], &active[v->vcpu_id]);
    }

    spin_lock(&epml_lock);
    ed = d->arch.hvm.vmx.epml;
    epml_drain_handed_over(ed);
    for_each_vcpu ( d, v )
    {
        struct epml_vcpu *ev = v->arch.hvm.vmx.epml;

        if ( v->vcpu_id >= HVM_MAX_VCPUS_EPML || !ev )
            continue;
        epml_drain_buffer(ed, ev->buf[active[v->vcpu_id] & 1],
                          min_t(unsigned long, index[v->vcpu_id],
                                EPML_BUF_ENTRIES(ed->order)));
    }
    spin_unlock(&epml_lock);

    for_each_vcpu ( d, v )
    {
        if ( v->vcpu_id >= HVM_MAX_VCPUS_EPML || !v->arch.hvm.vmx.epml )
            continue;
        vmx_vmcs_enter(v);
        __vmwrite(GUEST_EPML_INDEX, 0);
        vmx_vmcs_exit(v);
    }
}

static void cf_check epml_tasklet_fn(void *unused)
{
    struct epml_domain *ed;
    bool any = false;

    spin_lock(&epml_lock);
    list_for_each_entry ( ed, &epml_domains, list )
        if ( epml_drain_handed_over(ed) )
        {
            ed->stats.notifications++;
            any = true;
        }
    spin_unlock(&epml_lock);

    if ( any )
        send_global_virq(VIRQ_EPML);
}

static DECLARE_SOFTIRQ_TASKLET(epml_tasklet, epml_tasklet_fn, NULL);

/* The word of @ev's descriptor page that says its vCPU waits for dom0. */
static uint32_t *epml_waiting_word(struct epml_vcpu *ev)
{
    return (uint32_t *)((char *)ev->desc + XEN_EPML_DOM0_WAITING);
}

/*
 * dom0's buffers, both full: only dom0 can free one.  At index N the CPU
 * looks only at the other buffer (docs/epml.md 7, step 1), so:
 *  - the other one is free: the retry switches to it;
 *  - the other one is FULL but dom0 has given the active one back: take
 *    it up again from index 0 (software may reset the index, section 7);
 *  - both are FULL: pause @v (current) until dom0 says it gave one back
 *    (RESUME; the handshake is in epml-domctl.h), so that it does not
 *    exit again at every retry of its access.
 */
static void epml_wait_for_dom0(struct vcpu *v)
{
    struct epml_vcpu *ev;
    unsigned long index = 0, active = 0;
    struct epml_domain *ed;

    __vmread(GUEST_EPML_INDEX, &index);
    __vmread(GUEST_EPML_ACTIVE, &active);
    active &= 1;
    spin_lock(&epml_lock);
    ev = v->arch.hvm.vmx.epml;
    ed = v->domain->arch.hvm.vmx.epml;
    if ( ev && ed && !ev->waiting )
    {
        ACCESS_ONCE(*epml_waiting_word(ev)) = 1;
        smp_mb();
        if ( !(ACCESS_ONCE(ev->desc->state[active ^ 1]) & EPML_DESC_FULL) )
            ACCESS_ONCE(*epml_waiting_word(ev)) = 0;
        else if ( index >= EPML_BUF_ENTRIES(ed->order) &&
                  !(ACCESS_ONCE(ev->desc->state[active]) & EPML_DESC_FULL) )
        {
            ACCESS_ONCE(*epml_waiting_word(ev)) = 0;
            __vmwrite(GUEST_EPML_INDEX, 0);
        }
        else
        {
            ev->waiting = true;
            vcpu_pause_nosync(v);
        }
    }
    spin_unlock(&epml_lock);
}

/* RESUME: dom0 gave vCPU @vcpu_id a buffer back. */
static int epml_resume(struct domain *d, uint64_t vcpu_id)
{
    struct vcpu *v;
    struct epml_vcpu *ev;
    int rc = -EINVAL;

    if ( vcpu_id >= d->max_vcpus || !(v = d->vcpu[vcpu_id]) )
        return -EINVAL;
    spin_lock(&epml_lock);
    ev = v->arch.hvm.vmx.epml;
    if ( d->arch.hvm.vmx.epml && d->arch.hvm.vmx.epml->dom0_bufs && ev )
    {
        ACCESS_ONCE(*epml_waiting_word(ev)) = 0;
        if ( ev->waiting )
        {
            ev->waiting = false;
            vcpu_unpause(v);
        }
        rc = 0;
    }
    spin_unlock(&epml_lock);
    return rc;
}

/*
 * A PML-full VM exit while extended PML is on: both of @v's buffers were
 * full before the collector got to them (docs/epml.md section 9).  Drain
 * them here, on @v's own CPU, and let the guest retry its access.
 */
void vmx_epml_full(struct vcpu *v)
{
    struct epml_domain *ed;
    bool any = false, dom0_bufs = false;

    spin_lock(&epml_lock);
    ed = v->domain->arch.hvm.vmx.epml;
    if ( ed )
    {
        ed->stats.full_exits++;
        any = epml_drain_handed_over(ed);
        dom0_bufs = ed->dom0_bufs;
    }
    spin_unlock(&epml_lock);

    if ( dom0_bufs )
        epml_wait_for_dom0(v);

    if ( any )
        send_global_virq(VIRQ_EPML);
}

static void cf_check epml_interrupt(struct cpu_user_regs *regs)
{
    ack_APIC_irq();
    tasklet_schedule(&epml_tasklet);
}

/* ---- EPT A/D flags -------------------------------------------------------- */

void epml_note_ptp_free(void)
{
    arch_fetch_and_add(&epml_ptp_frees, 1);
}

static void epml_clear_ad_all(struct domain *d)
{
    ept_clear_ad_all(p2m_get_hostp2m(d));
}

/*
 * Open the next window: clear A/D of the pages logged in this one through
 * the EPT-entry addresses the CPU logged (unless an EPT table page was
 * freed since the window opened: then they may be stale, and the whole EPT
 * is walked instead), and start empty bitmaps.
 */
static void epml_next_window(struct epml_domain *ed)
{
    unsigned long i;

    if ( ACCESS_ONCE(epml_ptp_frees) != ed->ptp_frees ||
         !(ed->ctl & EPML_CTL_LOG_EPTE) || ed->nr_epte == ed->nr_gfns )
    {
        ed->stats.slow_resets++;
        epml_clear_ad_all(ed->d);
    }
    else
    {
        for ( i = 0; i < ed->nr_epte; i++ )
        {
            uint64_t *e = map_domain_page(maddr_to_mfn(ed->epte[i]));
            unsigned long off = (ed->epte[i] & ~PAGE_MASK) / sizeof(*e);

            clear_bit(8, &e[off]);
            if ( !epml_mutate_no_dirty_reset )
                clear_bit(9, &e[off]);
            unmap_domain_page(e);
        }
    }
    if ( !epml_mutate_no_sync )
        ept_sync_domain(p2m_get_hostp2m(ed->d));

    bitmap_zero(ed->win_read, ed->nr_gfns);
    bitmap_zero(ed->win_written, ed->nr_gfns);
    ed->nr_epte = 0;
    ed->touched = ed->written = 0;
    ed->ptp_frees = ACCESS_ONCE(epml_ptp_frees);
    ed->window++;
}

/* ---- enable / disable ----------------------------------------------------- */

/* Drop the references taken by epml_get_dom0_frames(). */
static void epml_put_dom0_frames(mfn_t first, unsigned int nr)
{
    while ( nr-- )
        put_page(mfn_to_page(mfn_add(first, nr)));
}

/*
 * dom0's @nr frames from @gfn (docs/xen-pml.md, "dom0 drains the log"):
 * writable RAM, machine-contiguous (the CPU takes one physical address per
 * buffer); a reference on each keeps them dom0's while the CPU logs there.
 */
static int epml_get_dom0_frames(struct domain *hd, uint64_t gfn,
                                unsigned int nr, mfn_t *first)
{
    unsigned int i;

    if ( gfn + nr < gfn )
        return -EINVAL;
    for ( i = 0; i < nr; i++ )
    {
        p2m_type_t t;
        struct page_info *pg = get_page_from_gfn(hd, gfn + i, &t, P2M_ALLOC);

        if ( pg && t == p2m_ram_rw &&
             (!i || mfn_eq(page_to_mfn(pg), mfn_add(*first, i))) )
        {
            if ( !i )
                *first = page_to_mfn(pg);
            continue;
        }
        if ( pg )
            put_page(pg);
        if ( i )
            epml_put_dom0_frames(*first, i);
        return -EINVAL;
    }
    return 0;
}

static void epml_vcpu_free(struct vcpu *v, unsigned int order)
{
    struct epml_vcpu *ev = v->arch.hvm.vmx.epml;

    if ( !ev )
        return;
    v->arch.hvm.vmx.epml = NULL;
    if ( !mfn_eq(ev->dom0_frame[2], INVALID_MFN) )
    {
        if ( ev->desc )
            unmap_domain_page_global(ev->desc);
        if ( !mfn_eq(ev->dom0_frame[0], INVALID_MFN) )
            epml_put_dom0_frames(ev->dom0_frame[0], 1u << order);
        if ( !mfn_eq(ev->dom0_frame[1], INVALID_MFN) )
            epml_put_dom0_frames(ev->dom0_frame[1], 1u << order);
        epml_put_dom0_frames(ev->dom0_frame[2], 1);
    }
    else
    {
        free_xenheap_pages(ev->buf[0], order);
        free_xenheap_pages(ev->buf[1], order);
        free_xenheap_page(ev->desc);
    }
    xfree(ev);
}

/* @frames: dom0's buffer 0, buffer 1 and descriptor for @v, or NULL. */
static int epml_vcpu_enable(struct vcpu *v, const struct epml_domain *ed,
                            const uint64_t *frames)
{
    struct epml_vcpu *ev = xzalloc(struct epml_vcpu);
    paddr_t buf0, buf1, desc;

    if ( !ev )
        return -ENOMEM;
    ev->dom0_frame[0] = ev->dom0_frame[1] = ev->dom0_frame[2] = INVALID_MFN;
    v->arch.hvm.vmx.epml = ev;
    if ( frames )
    {
        struct domain *hd = ed->collector->domain;
        mfn_t m[3];
        int rc;

        /* The descriptor first: epml_vcpu_free() tells the modes by it. */
        if ( (rc = epml_get_dom0_frames(hd, frames[2], 1, &m[2])) )
            goto fail;
        ev->dom0_frame[2] = m[2];
        if ( (rc = epml_get_dom0_frames(hd, frames[0], 1u << ed->order, &m[0])) )
            goto fail;
        ev->dom0_frame[0] = m[0];
        if ( (rc = epml_get_dom0_frames(hd, frames[1], 1u << ed->order, &m[1])) )
            goto fail;
        ev->dom0_frame[1] = m[1];
        rc = -ENOMEM;
        if ( !(ev->desc = map_domain_page_global(m[2])) )
            goto fail;
        buf0 = mfn_to_maddr(m[0]);
        buf1 = mfn_to_maddr(m[1]);
        desc = mfn_to_maddr(m[2]);
        goto armed;
    fail:
        epml_vcpu_free(v, ed->order);
        return rc;
    }
    ev->buf[0] = alloc_xenheap_pages(ed->order, 0);
    ev->buf[1] = alloc_xenheap_pages(ed->order, 0);
    ev->desc = alloc_xenheap_page();
    if ( !ev->buf[0] || !ev->buf[1] || !ev->desc )
    {
        epml_vcpu_free(v, ed->order);
        return -ENOMEM;
    }
    buf0 = virt_to_maddr(ev->buf[0]);
    buf1 = virt_to_maddr(ev->buf[1]);
    desc = virt_to_maddr(ev->desc);
 armed:
    clear_page(ev->desc);

    vmx_vmcs_enter(v);
    __vmwrite(EPML_BUFFER0, buf0);
    __vmwrite(EPML_BUFFER1, buf1);
    __vmwrite(EPML_DESC, desc);
    __vmwrite(EPML_CONTROLS, ed->ctl);
    __vmwrite(EPML_BUFFER_SIZE, ed->order);
    if ( ed->collector )
    {
        /* docs/epml.md 8.1: post to the collector vCPU's descriptor. */
        __vmwrite(EPML_VMCS_POST_DESC,
                  virt_to_maddr(&ed->collector->arch.hvm.vmx.pi_desc));
        __vmwrite(EPML_NOTIFY_VECTOR, ed->post_vector);
        __vmwrite(EPML_NOTIFY_DEST, 0);
    }
    else
    {
        __vmwrite(EPML_NOTIFY_VECTOR, epml_vector);
        __vmwrite(EPML_NOTIFY_DEST, cpu_physical_id(ed->notify_cpu));
    }
    __vmwrite(GUEST_EPML_INDEX, 0);
    __vmwrite(GUEST_EPML_ACTIVE, 0);
    v->arch.hvm.vmx.exec_control |= CPU_BASED_ACTIVATE_TERTIARY_CONTROLS;
    v->arch.hvm.vmx.tertiary_exec_control |= TERTIARY_EXEC_ENABLE_EPML;
    vmx_update_cpu_exec_control(v);
    vmx_update_tertiary_exec_control(v);
    vmx_vmcs_exit(v);
    return 0;
}

static void epml_vcpu_disable(struct vcpu *v)
{
    vmx_vmcs_enter(v);
    v->arch.hvm.vmx.tertiary_exec_control &= ~TERTIARY_EXEC_ENABLE_EPML;
    vmx_update_tertiary_exec_control(v);
    vmx_vmcs_exit(v);
}

static void epml_free(struct epml_domain *ed)
{
    vfree(ed->win_read);
    vfree(ed->win_written);
    vfree(ed->prev_read);
    vfree(ed->prev_written);
    vfree(ed->longmap);
    vfree(ed->epte);
    xfree(ed);
}

/* EPT A/D flags are needed for logging; PML (log-dirty) may also want them. */
static void epml_set_ept_ad(struct domain *d, bool on)
{
    ept_set_ad(d, on || vmx_domain_pml_enabled(d));
}

static int epml_enable(struct domain *d, struct xen_domctl_epml_op *op)
{
    struct epml_domain *ed;
    struct vcpu *v;
    unsigned int ctl = EPML_CTL_LOG_EPTE | EPML_CTL_NOTIFY;
    int rc = -ENOMEM;

    struct vcpu *collector = NULL;
    unsigned int post_vector = 0;
    bool dom0_bufs = op->flags & XEN_DOMCTL_EPML_DOM0_BUFFERS;
    uint64_t *frames = NULL;

    if ( op->flags & ~(XEN_DOMCTL_EPML_READS | XEN_DOMCTL_EPML_WRITES |
                       XEN_DOMCTL_EPML_FILTER_WALK | XEN_DOMCTL_EPML_POSTED |
                       XEN_DOMCTL_EPML_DOM0_BUFFERS |
                       XEN_DOMCTL_EPML_POST_VECTOR_MASK) ||
         !(op->flags & (XEN_DOMCTL_EPML_READS | XEN_DOMCTL_EPML_WRITES)) )
        return -EINVAL;
    /* dom0 drains its own buffers only when the notification goes to it. */
    if ( dom0_bufs && !(op->flags & XEN_DOMCTL_EPML_POSTED) )
        return -EINVAL;
    if ( op->buf_order > (vmx_epml_cap & EPML_CAP_MAX_SIZE_MASK) )
        return -EINVAL;
    if ( op->flags & XEN_DOMCTL_EPML_POSTED )
    {
        /*
         * Posted mode (issue 15): the collector is a vCPU of the hardware
         * domain, which must be HVM (PVH dom0) to have a posted-interrupt
         * descriptor.  Xen's blocking hooks make the descriptor follow it.
         */
        struct domain *hd = hardware_domain;

        if ( !(vmx_epml_cap & EPML_CAP_POST) || !hd || !is_hvm_domain(hd) ||
             !cpu_has_vmx_posted_intr_processing )
            return -EOPNOTSUPP;
        if ( hd == d || op->notify_cpu >= hd->max_vcpus ||
             !(collector = hd->vcpu[op->notify_cpu]) )
            return -EINVAL;
        post_vector = (op->flags & XEN_DOMCTL_EPML_POST_VECTOR_MASK) >>
                      XEN_DOMCTL_EPML_POST_VECTOR_SHIFT;
        if ( !post_vector )
            post_vector = collector->arch.hvm.evtchn_upcall_vector;
        if ( post_vector < EPML_NOTIFY_MIN_VECTOR )
            return -EINVAL;
    }
    else if ( op->flags & XEN_DOMCTL_EPML_POST_VECTOR_MASK )
        return -EINVAL;
    else if ( op->notify_cpu >= nr_cpu_ids || !cpu_online(op->notify_cpu) )
        return -EINVAL;
    if ( (op->flags & XEN_DOMCTL_EPML_READS) && !(vmx_epml_cap & EPML_CAP_READ) )
        return -EOPNOTSUPP;
    if ( (op->flags & XEN_DOMCTL_EPML_FILTER_WALK) &&
         !(vmx_epml_cap & EPML_CAP_FILTER_WALK) )
        return -EOPNOTSUPP;
    if ( !(vmx_epml_cap & EPML_CAP_EPTE) || !(vmx_epml_cap & EPML_CAP_NOTIFY) )
        return -EOPNOTSUPP;
    if ( d->arch.hvm.vmx.epml )
        return -EEXIST;
    if ( d->max_vcpus > HVM_MAX_VCPUS_EPML )
        return -E2BIG;
    if ( paging_mode_log_dirty(d) )
        return -EBUSY;          /* stock PML is on: the two exclude each other */

    if ( op->flags & XEN_DOMCTL_EPML_READS )
        ctl |= EPML_CTL_LOG_READ;
    if ( op->flags & XEN_DOMCTL_EPML_WRITES )
        ctl |= EPML_CTL_LOG_WRITE;
    if ( op->flags & XEN_DOMCTL_EPML_FILTER_WALK )
        ctl |= EPML_CTL_FILTER_WALK;

    if ( dom0_bufs )
    {
        if ( op->nr < 3ULL * d->max_vcpus )
        {
            op->nr = 3ULL * d->max_vcpus;
            return -ENOSPC;
        }
        frames = xmalloc_array(uint64_t, 3 * d->max_vcpus);
        if ( !frames )
            return -ENOMEM;
        if ( copy_from_guest(frames, epml_u64_handle(op->pages),
                             3 * d->max_vcpus) )
        {
            xfree(frames);
            return -EFAULT;
        }
    }

    if ( collector )
    {
        pcidevs_lock();
        rc = vmx_pi_hooks_assign_epml(collector->domain);
        pcidevs_unlock();
        if ( rc )
        {
            xfree(frames);
            return rc;
        }
        rc = -ENOMEM;
    }
    else
        alloc_direct_apic_vector(&epml_vector, epml_interrupt);

    ed = xzalloc(struct epml_domain);
    if ( !ed )
    {
        xfree(frames);
        return -ENOMEM;
    }
    ed->d = d;
    ed->order = op->buf_order;
    ed->ctl = ctl;
    ed->notify_cpu = op->notify_cpu;
    ed->collector = collector;
    ed->post_vector = post_vector;
    if ( collector )
        ed->ctl |= EPML_CTL_POST;
    ed->nr_gfns = p2m_get_hostp2m(d)->max_mapped_pfn + 1;
    ed->dom0_bufs = dom0_bufs;
    if ( dom0_bufs )
        goto no_window;         /* the window is dom0's */
    ed->win_read = vzalloc(BITS_TO_LONGS(ed->nr_gfns) * sizeof(long));
    ed->win_written = vzalloc(BITS_TO_LONGS(ed->nr_gfns) * sizeof(long));
    ed->prev_read = vzalloc(BITS_TO_LONGS(ed->nr_gfns) * sizeof(long));
    ed->prev_written = vzalloc(BITS_TO_LONGS(ed->nr_gfns) * sizeof(long));
    ed->longmap = vzalloc(ed->nr_gfns * sizeof(*ed->longmap));
    ed->epte = vzalloc(ed->nr_gfns * sizeof(*ed->epte));
    if ( !ed->win_read || !ed->win_written || !ed->prev_read ||
         !ed->prev_written || !ed->longmap || !ed->epte )
    {
        epml_free(ed);
        return -ENOMEM;
    }
 no_window:

    domain_pause(d);
    for_each_vcpu ( d, v )
        if ( (rc = epml_vcpu_enable(v, ed, frames ? &frames[3 * v->vcpu_id]
                                                  : NULL)) != 0 )
            break;
    xfree(frames);
    if ( rc )
    {
        for_each_vcpu ( d, v )
            if ( v->arch.hvm.vmx.epml )
            {
                epml_vcpu_disable(v);
                epml_vcpu_free(v, ed->order);
            }
        domain_unpause(d);
        epml_free(ed);
        return rc;
    }
    /*
     * Xen's default 2 MiB and 1 GiB EPT leaves: one A/D pair each, so one
     * log entry for up to 262,144 pages.  Split them (and create no new
     * ones while logging is on, p2m_set_entry()); docs/xen-pml.md.
     */
    rc = ept_split_all(p2m_get_hostp2m(d), &ed->split);
    if ( rc )
    {
        for_each_vcpu ( d, v )
        {
            epml_vcpu_disable(v);
            epml_vcpu_free(v, ed->order);
        }
        ept_sync_domain(p2m_get_hostp2m(d));
        domain_unpause(d);
        epml_free(ed);
        return rc;
    }
    epml_set_ept_ad(d, true);
    epml_clear_ad_all(d);
    ept_sync_domain(p2m_get_hostp2m(d));
    ed->ptp_frees = ACCESS_ONCE(epml_ptp_frees);

    spin_lock(&epml_lock);
    d->arch.hvm.vmx.epml = ed;
    list_add(&ed->list, &epml_domains);
    spin_unlock(&epml_lock);
    domain_unpause(d);

    if ( collector )
        printk(XENLOG_G_INFO "%pd: extended PML on: %s%s%s, %s buffers %lu KiB, notification posted to %pv vector %#x (descriptor %#lx, NV %#x), %lu large EPT leaves split\n",
               d, (ctl & EPML_CTL_LOG_READ) ? "reads " : "",
               (ctl & EPML_CTL_LOG_WRITE) ? "writes " : "",
               (ctl & EPML_CTL_FILTER_WALK) ? "walk-filtered" : "walk-logged",
               dom0_bufs ? "dom0's" : "Xen's",
               4UL << ed->order, collector, ed->post_vector,
               (unsigned long)virt_to_maddr(&collector->arch.hvm.vmx.pi_desc),
               collector->arch.hvm.vmx.pi_desc.nv, ed->split);
    else
        printk(XENLOG_G_INFO "%pd: extended PML on: %s%s%s, buffers %lu KiB, notify CPU%u vector %#x, %lu large EPT leaves split\n",
               d, (ctl & EPML_CTL_LOG_READ) ? "reads " : "",
               (ctl & EPML_CTL_LOG_WRITE) ? "writes " : "",
               (ctl & EPML_CTL_FILTER_WALK) ? "walk-filtered" : "walk-logged",
               4UL << ed->order, ed->notify_cpu, epml_vector, ed->split);
    return 0;
}

/* With @d paused or dying. */
static void epml_disable(struct domain *d, const char *why)
{
    struct epml_domain *ed = d->arch.hvm.vmx.epml;
    struct vcpu *v;

    if ( !ed )
        return;

    spin_lock(&epml_lock);
    list_del(&ed->list);
    d->arch.hvm.vmx.epml = NULL;
    spin_unlock(&epml_lock);

    for_each_vcpu ( d, v )
    {
        struct epml_vcpu *ev = v->arch.hvm.vmx.epml;

        if ( !ev )
            continue;
        if ( !d->is_dying )
            epml_vcpu_disable(v);
        if ( ev->waiting )
            vcpu_unpause(v);            /* it waited for dom0's buffers */
        epml_vcpu_free(v, ed->order);
    }
    if ( !d->is_dying )
        epml_set_ept_ad(d, false);
    printk(XENLOG_G_INFO "%pd: extended PML off (%s): %lu entries, %lu dropped by the CPU\n",
           d, why, (unsigned long)ed->stats.entries, (unsigned long)ed->stats.dropped);
    epml_free(ed);
}

/* Log-dirty turns stock PML on: extended PML makes way (docs/epml.md 11). */
void vmx_epml_logdirty(struct domain *d)
{
    epml_disable(d, "log-dirty");
}

void vmx_epml_domain_destroy(struct domain *d)
{
    epml_disable(d, "domain destroyed");
}

/* ---- the domctl -------------------------------------------------------------- */

static void epml_fill_stats(struct epml_domain *ed, struct xen_domctl_epml_op *op)
{
    struct vcpu *v;
    uint64_t dropped = 0, handovers = 0;

    for_each_vcpu ( ed->d, v )
    {
        struct epml_vcpu *ev = v->arch.hvm.vmx.epml;

        if ( ev )
        {
            dropped += ACCESS_ONCE(ev->desc->dropped);
            handovers += ACCESS_ONCE(ev->desc->handovers);
        }
    }
    ed->stats.dropped = dropped;
    ed->stats.handovers = handovers;
    op->window = ed->window;
    op->touched = ed->touched;
    op->written = ed->written;
    op->nr_gfns = ed->nr_gfns;
    op->entries = ed->stats.entries;
    op->walk = ed->stats.walk;
    op->large = ed->stats.large;
    op->out_of_range = ed->stats.out_of_range;
    op->dropped = dropped;
    op->handovers = handovers;
    op->notifications = ed->stats.notifications;
    op->slow_resets = ed->stats.slow_resets;
    op->full_exits = ed->stats.full_exits;
    op->flags = ((ed->ctl & EPML_CTL_LOG_READ) ? XEN_DOMCTL_EPML_READS : 0) |
                ((ed->ctl & EPML_CTL_LOG_WRITE) ? XEN_DOMCTL_EPML_WRITES : 0) |
                ((ed->ctl & EPML_CTL_FILTER_WALK) ? XEN_DOMCTL_EPML_FILTER_WALK : 0) |
                (ed->collector ? XEN_DOMCTL_EPML_POSTED : 0) |
                (ed->dom0_bufs ? XEN_DOMCTL_EPML_DOM0_BUFFERS : 0);
}

/*
 * CUT, with dom0's buffers (include/epml-domctl.h): with the domain
 * paused, tell dom0 where each vCPU's log stands, so that it can split
 * what it drains into this window and the next; clear every EPT leaf's
 * A/D flags and open the next window.
 */
static int epml_cut(struct domain *d, struct xen_domctl_epml_op *op)
{
    uint64_t where[HVM_MAX_VCPUS_EPML] = {};
    struct epml_domain *ed;
    struct vcpu *v;

    if ( op->nr < d->max_vcpus )
    {
        op->nr = d->max_vcpus;
        return -ENOSPC;
    }
    domain_pause(d);
    ed = d->arch.hvm.vmx.epml;
    if ( !ed || !ed->dom0_bufs )
    {
        domain_unpause(d);
        return ed ? -EINVAL : -ENODATA;
    }
    for_each_vcpu ( d, v )
    {
        struct epml_vcpu *ev = v->arch.hvm.vmx.epml;
        unsigned long index = 0, active = 0;
        unsigned int full;

        if ( v->vcpu_id >= HVM_MAX_VCPUS_EPML || !ev )
            continue;
        epml_log_position(v, &index, &active);
        full = ((ACCESS_ONCE(ev->desc->state[0]) & EPML_DESC_FULL) ? 1 : 0) |
               ((ACCESS_ONCE(ev->desc->state[1]) & EPML_DESC_FULL) ? 2 : 0);
        where[v->vcpu_id] = min_t(unsigned long, index, EPML_BUF_ENTRIES(ed->order)) |
                            ((uint64_t)(active & 1) << 32) | ((uint64_t)full << 33);
    }
    spin_lock(&epml_lock);
    epml_fill_stats(ed, op);
    ed->stats.slow_resets++;
    epml_clear_ad_all(d);
    if ( !epml_mutate_no_sync )
        ept_sync_domain(p2m_get_hostp2m(d));
    ed->window++;
    spin_unlock(&epml_lock);
    domain_unpause(d);

    op->nr = d->max_vcpus;
    if ( copy_to_guest(epml_u64_handle(op->pages), where, d->max_vcpus) )
        return -EFAULT;
    return 0;
}

/* Copy the window's pages, with their longmap counts, to @op->pages. */
static int epml_copy_pages(struct epml_domain *ed, const unsigned long *rd,
                           const unsigned long *wr, struct xen_domctl_epml_op *op)
{
    unsigned long gfn = 0;
    uint64_t n = 0;

    for ( ; ; gfn++ )
    {
        struct xen_epml_page p;
        unsigned long r = find_next_bit(rd, ed->nr_gfns, gfn);
        unsigned long w = find_next_bit(wr, ed->nr_gfns, gfn);

        gfn = min(r, w);
        if ( gfn >= ed->nr_gfns || n >= op->nr )
            break;
        p.gfn = gfn;
        p.flags = (test_bit(gfn, rd) ? XEN_EPML_PAGE_READ : 0) |
                  (test_bit(gfn, wr) ? XEN_EPML_PAGE_WRITTEN : 0);
        p.reads = ed->longmap[gfn].reads;
        p.writes = ed->longmap[gfn].writes;
        if ( copy_to_guest_offset(op->pages, n, &p, 1) )
            return -EFAULT;
        n++;
    }
    op->nr = n;
    return 0;
}

int vmx_epml_domctl(struct domain *d, struct xen_domctl_epml_op *op)
{
    struct epml_domain *ed;
    int rc = 0;

    if ( !vmx_epml_available )
        return -EOPNOTSUPP;
    if ( !is_hvm_domain(d) || !hap_enabled(d) || d == current->domain )
        return -EINVAL;

    switch ( op->op )
    {
    case XEN_DOMCTL_EPML_ENABLE:
        return epml_enable(d, op);

    case XEN_DOMCTL_EPML_DISABLE:
        if ( !d->arch.hvm.vmx.epml )
            return -ENODATA;
        domain_pause(d);
        epml_disable(d, "dom0's request");
        domain_unpause(d);
        return 0;

    case XEN_DOMCTL_EPML_CUT:
        return epml_cut(d, op);

    case XEN_DOMCTL_EPML_RESUME:
        return epml_resume(d, op->nr);

    case XEN_DOMCTL_EPML_INFO:
    case XEN_DOMCTL_EPML_COLLECT:
    case XEN_DOMCTL_EPML_NEW_WINDOW:
    case XEN_DOMCTL_EPML_COLLECT_NEXT:
        domain_pause(d);
        ed = d->arch.hvm.vmx.epml;
        if ( !ed )
        {
            domain_unpause(d);
            return -ENODATA;
        }
        if ( ed->dom0_bufs && op->op != XEN_DOMCTL_EPML_INFO )
        {
            domain_unpause(d);
            return -EINVAL;     /* the window is dom0's: CUT */
        }
        if ( op->op != XEN_DOMCTL_EPML_INFO )
            epml_drain_all(d);
        spin_lock(&epml_lock);
        epml_fill_stats(ed, op);
        if ( op->op == XEN_DOMCTL_EPML_COLLECT_NEXT )
        {
            /*
             * Collect and open the next window in one step, the domain
             * paused throughout: no access falls between the window
             * reported and the next one.  The closed window's bitmaps are
             * kept for the copy below.
             */
            bitmap_copy(ed->prev_read, ed->win_read, ed->nr_gfns);
            bitmap_copy(ed->prev_written, ed->win_written, ed->nr_gfns);
        }
        if ( op->op == XEN_DOMCTL_EPML_NEW_WINDOW ||
             op->op == XEN_DOMCTL_EPML_COLLECT_NEXT )
            epml_next_window(ed);
        spin_unlock(&epml_lock);
        domain_unpause(d);
        /*
         * The copy touches dom0 memory: outside the lock, d running.  COLLECT
         * reads the live window (pages the tasklet adds meanwhile may or may
         * not be in it); COLLECT_NEXT the closed one, which nothing changes
         * until the next COLLECT_NEXT (dom0 serialises its calls).
         */
        if ( op->op == XEN_DOMCTL_EPML_COLLECT && op->nr )
            rc = epml_copy_pages(ed, ed->win_read, ed->win_written, op);
        else if ( op->op == XEN_DOMCTL_EPML_COLLECT_NEXT && op->nr )
            rc = epml_copy_pages(ed, ed->prev_read, ed->prev_written, op);
        return rc;
    }
    return -EOPNOTSUPP;
}
