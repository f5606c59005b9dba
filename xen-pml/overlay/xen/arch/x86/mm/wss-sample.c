/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * XEN_DOMCTL_wss_sample: working-set estimation by sampling, as VMware ESX
 * does it (Waldspurger, "Memory Resource Management in VMware ESX Server",
 * OSDI 2002): take access away from n random pages, let the guest run,
 * count the pages it faulted on.  f faulted of n sampled, times the
 * domain's memory, estimates its working set.
 *
 * The "invalidation" is Xen's n2rwx access type: the EPT entry keeps its
 * frame and p2m type but grants nothing, so the next access to the page
 * is an EPT violation that p2m_mem_access_check() answers by restoring
 * rwx (with no vm_event listener it neither pauses the vCPU nor reports
 * anything).  An armed page still at n2rwx at HARVEST was not accessed.
 * The interface is in public/domctl.h; docs/xen-pml.md has the rest.
 */

#include <xen/guest_access.h>
#include <xen/mem_access.h>
#include <xen/sched.h>
#include <asm/altp2m.h>
#include <asm/mem_access.h>
#include <asm/p2m.h>
#include <public/domctl.h>

#define WSS_SAMPLE_CHUNK 64             /* gfns copied in at a time */

/* ARM one gfn: ordinary RAM with full access loses all of it. */
static bool wss_sample_arm_one(struct domain *d, gfn_t gfn)
{
    xenmem_access_t access;
    p2m_type_t t;

    get_gfn_query_unlocked(d, gfn_x(gfn), &t);
    if ( t != p2m_ram_rw )
        return false;
    if ( p2m_get_mem_access(d, gfn, &access, 0) ||
         access != XENMEM_access_rwx )
        return false;

    return p2m_set_mem_access(d, gfn, 1, 0, 0, XENMEM_access_n2rwx, 0) == 0;
}

/* HARVEST one gfn: was it accessed since ARM?  Restore it if not. */
static bool wss_sample_harvest_one(struct domain *d, gfn_t gfn)
{
    xenmem_access_t access;

    if ( p2m_get_mem_access(d, gfn, &access, 0) )
        return false;                   /* gone (ballooned out) */
    if ( access != XENMEM_access_n2rwx )
        return true;                    /* the fault gave it rwx back */

    p2m_set_mem_access(d, gfn, 1, 0, 0, XENMEM_access_rwx, 0);
    return false;
}

int p2m_wss_sample(struct domain *d, struct xen_domctl_wss_sample *op)
{
    uint64_t gfns[WSS_SAMPLE_CHUNK];
    unsigned int i, done, n;
    int rc = 0;

    if ( op->op != XEN_DOMCTL_WSS_SAMPLE_ARM &&
         op->op != XEN_DOMCTL_WSS_SAMPLE_HARVEST )
        return -EOPNOTSUPP;
    if ( op->nr > XEN_WSS_SAMPLE_MAX )
        return -E2BIG;
    if ( d == current->domain || !p2m_mem_access_sanity_check(d) )
        return -EINVAL;
    if ( altp2m_active(d) )
        return -EBUSY;

    op->count = 0;
    domain_pause(d);
    for ( done = 0; done < op->nr; done += n )
    {
        n = min(op->nr - done, (unsigned int)WSS_SAMPLE_CHUNK);
        if ( copy_from_guest_offset(gfns, op->gfns, done, n) )
        {
            rc = -EFAULT;
            break;
        }
        for ( i = 0; i < n; i++ )
        {
            if ( gfns[i] == XEN_WSS_SAMPLE_SKIP )
                continue;
            if ( op->op == XEN_DOMCTL_WSS_SAMPLE_HARVEST )
                op->count += wss_sample_harvest_one(d, _gfn(gfns[i]));
            else if ( wss_sample_arm_one(d, _gfn(gfns[i])) )
                op->count++;
            else
                gfns[i] = XEN_WSS_SAMPLE_SKIP;
        }
        if ( op->op == XEN_DOMCTL_WSS_SAMPLE_ARM &&
             copy_to_guest_offset(op->gfns, done, gfns, n) )
        {
            rc = -EFAULT;
            break;
        }
    }
    domain_unpause(d);

    return rc;
}
