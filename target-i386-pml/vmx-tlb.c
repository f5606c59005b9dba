/*
 * qemu-pml: which cached translations VM entry and VM exit keep
 * (Intel SDM Vol. 3C 29.4.3: VPIDs; 29.4.3.3, 29.4.4: invalidation).
 *
 * TCG's TLB has an index set per mode (patch 0029): root operation uses
 * MMU indices 0..5 (linear mappings of VPID 0), non-root operation 8..13
 * (linear or combined mappings of the current VPID), and EPT's
 * guest-physical mappings live in MMU_NESTED_IDX.  Hardware keeps
 * mappings across entries and exits when they are tagged with a VPID
 * other than 0; with VPID off, entries and exits invalidate the VPID-0
 * linear and combined mappings.  TCG's entries also embed paging state
 * the hardware tag does not carry (CR0.WP, CR4.SMEP, EFER.NXE, the EPT
 * and APIC-access settings they were filled under), so a set is kept
 * only while that state is unchanged: flushing more than hardware does is
 * always allowed, keeping a stale entry never is.
 *
 * Without VPID the invalidation at entry and exit is kept as a rule but
 * not always carried out: it can only drop translations that no longer
 * match the paging structures, and if none of the pages the sets' entries
 * were walked through has been written since the last transition (and
 * the paging state tags match), there is nothing stale to drop.  While
 * this is tried, walks watch the pages they read (tlb_protect_paging(),
 * patch 0049): the first write to a watched page, by a CPU, a device or
 * the emulator, advances ram_list.paging_gen, and the next transition
 * flushes as before.  Watching costs a slow-path write and a TLB scan per
 * written page, so after 16 transitions in a row that found a write it
 * is turned off for the next 1,024.  `-cpu ...,x-vmx-tlb-keep=off` never
 * turns it on (patch 0050).
 *
 * A MOV to CR0/CR3/CR4 invalidates the current VPID's mappings only: in
 * VMX operation the CR helpers flush the current mode's set
 * (vmx_paging_flush()), and nothing while a transition loads CR0/CR3/CR4;
 * the transition flushes here instead; a MOV to CR3 may set the tables
 * of the address space it leaves aside (vmx_cr3_flush(), below).
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/cputlb.h"
#include "exec/ramlist.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "trace.h"

#define TLB_EPT_SET     (1u << MMU_NESTED_IDX)

#define TAG_CR0     (CR0_PG_MASK | CR0_WP_MASK | CR0_PE_MASK)
#define TAG_CR4     (CR4_PGE_MASK | CR4_PAE_MASK | CR4_PSE_MASK | CR4_SMEP_MASK | \
                     CR4_SMAP_MASK | CR4_LA57_MASK | CR4_PKE_MASK | CR4_PKS_MASK)
#define TAG_EFER    (MSR_EFER_LMA | MSR_EFER_NXE)

/* The paging state that translations filled now depend on. */
static void paging_tag(CPUX86State *env, struct vmx_tlb_tag *t)
{
    t->cr0 = env->cr[0] & TAG_CR0;
    t->cr3 = env->cr[3];
    t->cr4 = env->cr[4] & TAG_CR4;
    t->efer = env->efer & TAG_EFER;
    t->a20 = env->a20_mask;
}

/* ... and, for non-root operation, the VMCS settings that shape them. */
static void guest_tag(CPUX86State *env, struct vmx_tlb_tag *t)
{
    uint32_t proc2 = vmx_secondary_ctls(env);

    paging_tag(env, t);
    t->vpid = (proc2 & VMX_SECONDARY_EXEC_ENABLE_VPID) ? VMCS(env, VIRTUAL_PROCESSOR_ID) : 0;
    t->eptp = (proc2 & VMX_SECONDARY_EXEC_ENABLE_EPT) ? VMCS(env, EPT_POINTER) : 0;
    t->apic_access = (proc2 & VMX_SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES) ?
                     VMCS(env, APIC_ACCESS_ADDR) : ~0ull;
    t->valid = true;
}

static bool same_paging(const struct vmx_tlb_tag *a, const struct vmx_tlb_tag *b)
{
    return a->cr0 == b->cr0 && a->cr3 == b->cr3 && a->cr4 == b->cr4 &&
           a->efer == b->efer && a->a20 == b->a20;
}

/* ... and the VMCS settings that tag non-root translations as well. */
static bool same_tag(const struct vmx_tlb_tag *a, const struct vmx_tlb_tag *b)
{
    return a->valid == b->valid && a->vpid == b->vpid && a->eptp == b->eptp &&
           a->apic_access == b->apic_access && same_paging(a, b);
}

static void flush(CPUX86State *env, const char *at, uint16_t sets)
{
    trace_vmx_tlb_flush(env_cpu(env)->cpu_index, at, sets);
    if (sets) {
        tlb_flush_by_mmuidx(env_cpu(env), sets);
    }
}

#define WATCH_MISSES    16      /* transitions in a row that found a write */
#define WATCH_BACKOFF   1024    /* ... turn watching off for this many */

/*
 * A page a walk read while watching: watch it (tlb_protect_paging() looks
 * the page's bit up first, so a page already watched costs one bit test),
 * or, if it is not RAM (a write to it could go unseen), give up keeping
 * the sets until they are flushed.
 */
void vmx_tlb_watch(CPUX86State *env, uint64_t ram_addr)
{
    struct vmx_tlb_sets *t = &env->vmx.tlb;
    uint64_t gen;

    if (ram_addr == RAM_ADDR_INVALID) {
        t->whole = false;
        t->cr3_whole[0] = t->cr3_whole[1] = false;
        return;
    }
    /*
     * Once a watched page has been written since the last transition
     * (and since the last MOV to CR3), nothing live can be kept at the
     * next one: watching a page again until then would cost a TLB scan
     * for nothing (a guest rewriting a PTE between INVLPGs would pay one
     * per update).  The next transition or switch flushes and watches
     * afresh.
     */
    gen = qatomic_read(&ram_list.paging_gen);
    if ((!(t->watch & VMX_TLB_WATCH_NOVPID) || gen != t->gen) &&
        (!(t->watch & VMX_TLB_WATCH_CR3) || gen != t->cr3_gen)) {
        return;
    }
    tlb_protect_paging(ram_addr);
}

/*
 * May a transition without VPID keep the root and guest sets?  Only if
 * every entry in them was filled while watching and no watched page has
 * been written since the last transition; legacy PAE paging is excluded
 * (its PDPTEs are registers loaded at the transition, not watched memory).
 * Called at every transition without VPID, after which the sets are
 * either kept or flushed: the generation is sampled for the next one.
 */
static bool sets_unwritten(CPUX86State *env, const struct vmx_tlb_tag *now)
{
    struct vmx_tlb_sets *t = &env->vmx.tlb;
    uint64_t gen = qatomic_read(&ram_list.paging_gen);
    bool pae = (now->cr4 & CR4_PAE_MASK) && !(now->efer & MSR_EFER_LMA);
    bool tracked = (t->watch & VMX_TLB_WATCH_NOVPID) && t->whole;
    bool keep = tracked && gen == t->gen && !pae;

    if (tracked && gen != t->gen) {
        if (++t->written >= WATCH_MISSES) {
            t->watch &= ~VMX_TLB_WATCH_NOVPID;
            t->backoff = WATCH_BACKOFF;
            trace_vmx_tlb_watch(env_cpu(env)->cpu_index, false);
        }
    } else if (keep) {
        t->written = 0;
    }
    t->gen = gen;
    return keep;
}

/* Watching is for transitions without VPID only; it costs elsewhere. */
void vmx_tlb_unwatch(CPUX86State *env)
{
    if (env->vmx.tlb.watch & VMX_TLB_WATCH_NOVPID) {
        trace_vmx_tlb_watch(env_cpu(env)->cpu_index, false);
    }
    env->vmx.tlb.watch &= ~VMX_TLB_WATCH_NOVPID;
    env->vmx.tlb.whole = false;
}

/* Both sets are being flushed at a transition without VPID. */
static void sets_flushed(CPUX86State *env)
{
    struct vmx_tlb_sets *t = &env->vmx.tlb;
    bool on = t->watch & VMX_TLB_WATCH_NOVPID;

    if (!env_archcpu(env)->vmx_tlb_keep || (!on && t->backoff && --t->backoff)) {
        return;
    }
    if (!on) {
        trace_vmx_tlb_watch(env_cpu(env)->cpu_index, true);
        t->written = 0;
    }
    t->watch |= VMX_TLB_WATCH_NOVPID;
    t->whole = true;
    t->gen = qatomic_read(&ram_list.paging_gen);
}

void vmx_paging_flush(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    if (!env->vmx.vmxon) {
        tlb_flush(cs);
    } else if (!env->vmx.tlb.paging_switch) {
        tlb_flush_by_mmuidx(cs, (env->hflags & HF_GUEST_MASK) ? VMX_TLB_GUEST_SET
                                                               : VMX_TLB_ROOT_SET);
    }
}

/*
 * MOV to CR3 without PCID invalidates every non-global mapping of the
 * current VPID (SDM Vol. 3A 4.10.4.1).  Like the invalidation at a
 * transition without VPID (above), it can only drop translations that no
 * longer match the paging structures; so the tables of the address space
 * left are set aside (patch 0056), and those set aside for the one
 * entered come back, if every entry in them was filled while watching,
 * no watched page has been written since (one generation for everything:
 * a write anywhere drops all that is set aside, at the next switch) and
 * the rest of the paging state, VMCS settings included, is the same.
 * Any flush of an index drops what is set aside for it, and
 * tlb_reset_dirty() covers it, so a page that gets code or is logged
 * again is seen through tables that come back as well.
 *
 * A MOV to CR3 of the value it holds flushes, as software uses it to.
 * After CR3_MISSES switches in a row that found a write (a guest that
 * writes its page tables more often than it switches), watching stops
 * for CR3_BACKOFF switches, which then flush as before.
 */
#define CR3_MISSES      16
#define CR3_BACKOFF     1024

/* Watching for MOV to CR3, decided at each switch; returns whether on. */
static bool cr3_watching(CPUX86State *env, uint64_t gen)
{
    struct vmx_tlb_sets *t = &env->vmx.tlb;

    if (t->watch & VMX_TLB_WATCH_CR3) {
        if (gen == t->cr3_gen) {
            t->cr3_written = 0;
        } else if (++t->cr3_written >= CR3_MISSES) {
            t->watch &= ~VMX_TLB_WATCH_CR3;
            t->cr3_backoff = CR3_BACKOFF;
            trace_vmx_tlb_cr3_watch(env_cpu(env)->cpu_index, false);
        }
    } else if (!t->cr3_backoff || !--t->cr3_backoff) {
        t->watch |= VMX_TLB_WATCH_CR3;
        t->cr3_written = 0;
        trace_vmx_tlb_cr3_watch(env_cpu(env)->cpu_index, true);
    }
    return t->watch & VMX_TLB_WATCH_CR3;
}

void vmx_cr3_flush(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);
    struct vmx_tlb_sets *t = &env->vmx.tlb;
    bool guest = env->hflags & HF_GUEST_MASK;
    uint16_t sets = guest ? VMX_TLB_GUEST_SET : VMX_TLB_ROOT_SET;
    struct vmx_tlb_tag now = { 0 };
    uint64_t gen, key = env->cr[3] | (1ull << 63);
    bool was_on, on, keep, back;

    if ((env->vmx.vmxon && t->paging_switch) || !env_archcpu(env)->vmx_tlb_keep ||
        (env->efer & MSR_EFER_SVME) ||
        ((env->cr[4] & CR4_PAE_MASK) && !(env->efer & MSR_EFER_LMA))) {
        /* in a transition; turned off; SVM; PDPTEs are registers */
        vmx_paging_flush(env);
        return;
    }
    if (guest) {
        guest_tag(env, &now);
    } else {
        paging_tag(env, &now);
        now.valid = true;
    }
    now.cr3 = 0;        /* CR3 is the key; the tag is the rest of the state */
    gen = qatomic_read(&ram_list.paging_gen);
    was_on = t->watch & VMX_TLB_WATCH_CR3;
    on = cr3_watching(env, gen);
    keep = was_on && on && t->cr3_whole[guest] && gen == t->cr3_gen &&
           same_tag(&now, &t->cr3_tag[guest]);
    if (!keep) {
        /*
         * What the other set holds may be stale too (or, with watching
         * off, unwatched): it is not set aside.
         */
        t->cr3_whole[!guest] = false;
    }
    t->cr3_whole[guest] = on;
    t->cr3_tag[guest] = now;
    t->cr3_gen = gen;

    back = tlb_stash_switch(cs, sets, key, keep);
    if (!env->vmx.vmxon) {
        /* Outside VMX operation the whole TLB was flushed, as upstream. */
        tlb_flush_by_mmuidx(cs, ((1u << NB_MMU_MODES) - 1) & ~VMX_TLB_ROOT_SET);
    }
    trace_vmx_tlb_cr3(cs->cpu_index, env->cr[3], keep, back);
}

/* VM entry, before the guest state is loaded. */
void vmx_tlb_entry_begin(CPUX86State *env)
{
    paging_tag(env, &env->vmx.tlb.root);
    env->vmx.tlb.paging_switch = true;
}

/* VM entry, with the guest state loaded and HF_GUEST_MASK set. */
void vmx_tlb_entry_end(CPUX86State *env)
{
    struct vmx_tlb_tag now;
    uint16_t sets = 0;

    env->vmx.tlb.paging_switch = false;
    guest_tag(env, &now);
    if (!now.vpid && !sets_unwritten(env, &now)) {
        /*
         * 29.4.3.3: without a VPID, entry invalidates VPID 0's linear and
         * combined mappings.  Guest-physical mappings (MMU_NESTED_IDX,
         * through which the guest's page walks reach its paging
         * structures) are tagged by the EPTP alone and stay, as they do
         * with a VPID: only INVEPT or another EPTP drops them (29.4.2).
         * If no paging structure was written (above), there is nothing
         * to drop: then, as with a VPID, the guest set stays if it was
         * filled under the same tag, and the root set waits for the
         * exit's check.
         */
        sets = vmx_linear_sets();
        sets_flushed(env);
    } else {
        if (now.vpid) {
            vmx_tlb_unwatch(env);
        }
        if (!same_tag(&now, &env->vmx.tlb.guest)) {     /* now.valid is set */
            sets = VMX_TLB_GUEST_SET;
        }
    }
    /* Guest-physical mappings are tagged by the EPTP (29.4.2). */
    if (now.eptp != env->vmx.tlb.ept) {
        sets |= TLB_EPT_SET;
        env->vmx.tlb.ept = now.eptp;
    }
    env->vmx.tlb.guest = now;
    flush(env, "entry", sets);
}

/* VM exit (or a VM-entry failure), before the host state is loaded. */
void vmx_tlb_exit_begin(CPUX86State *env)
{
    if (env->vmx.non_root) {
        guest_tag(env, &env->vmx.tlb.guest);
    } else {
        paging_tag(env, &env->vmx.tlb.root);     /* entry failed early */
    }
    env->vmx.tlb.paging_switch = true;
}

/* VM exit, with the host state loaded. */
void vmx_tlb_exit_end(CPUX86State *env)
{
    struct vmx_tlb_tag now;

    env->vmx.tlb.paging_switch = false;
    paging_tag(env, &now);
    if (!env->vmx.tlb.guest.vpid && !sets_unwritten(env, &now)) {
        flush(env, "exit", vmx_linear_sets());
        sets_flushed(env);
    } else {
        flush(env, "exit", same_paging(&now, &env->vmx.tlb.root) ? 0 : VMX_TLB_ROOT_SET);
    }
}
