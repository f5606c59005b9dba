/*
 * qemu-pml: EPT translation and EPT accessed/dirty flags (Intel SDM
 * Vol. 3C 29.3; INVEPT: 31.3), EPT violation and misconfiguration exits
 * (28.2.1).  The walk hands dirty-flag transitions to stock PML
 * (vmx-pml.c, 29.3.6) or extended PML (vmx-epml.c).
 *
 * EPT is TCG's second translation stage.  A VM entry with "enable EPT"
 * sets HF2_NPT_MASK, so QEMU's stage-1 walker reaches guest paging
 * structures and the final guest-physical address through the
 * MMU_NESTED_IDX TLB, whose fills land in vmx_ept_translate() (patch
 * 0010).  A page whose EPT dirty flag is clear never gets PAGE_WRITE in
 * that TLB, so its first write walks again, sets the flag and is logged:
 * no 0->1 transition is missed.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/cputlb.h"
#include "exec/page-protection.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "vmx-stats.h"
#include "pml/trace.h"

/* EPT entry bits (29.3.2). */
#define EPT_R           (1ull << 0)
#define EPT_W           (1ull << 1)
#define EPT_X           (1ull << 2)
#define EPT_RWX         (EPT_R | EPT_W | EPT_X)
#define EPT_MT_SHIFT    3
#define EPT_IPAT        (1ull << 6)
#define EPT_PS          (1ull << 7)
#define EPT_A           (1ull << 8)
#define EPT_D           (1ull << 9)
#define EPT_ADDR_MASK   0x000ffffffffff000ull

/* EPTP (24.6.11). */
#define EPTP_MT_MASK    0x7ull
#define EPTP_WALK_SHIFT 3

/*
 * The EPT/VPID capabilities this vCPU reports.  The memory types have no
 * vmx-* property name, so QEMU's "migratable" filter drops them from
 * -cpu max; a CPU that offers EPT always supports write-back walks.
 */
uint64_t vmx_ept_vpid_caps(CPUX86State *env)
{
    uint64_t cap = env->features[FEAT_VMX_EPT_VPID_CAPS];

    if (env->features[FEAT_VMX_SECONDARY_CTLS] & VMX_SECONDARY_EXEC_ENABLE_EPT) {
        cap |= MSR_VMX_EPT_WB | MSR_VMX_EPT_UC;
    }
    return cap;
}

bool vmx_ept_enabled(CPUX86State *env)
{
    return env->vmx.non_root && vmx_ept_enabled_in_vmcs(env);
}

/* 27.2.1.1: an EPTP the capability MSR allows. */
bool vmx_eptp_valid(CPUX86State *env, uint64_t eptp)
{
    uint64_t cap = vmx_ept_vpid_caps(env);
    uint64_t mt = eptp & EPTP_MT_MASK;

    if (VMX_CHECK(env, "27.2.1.1",
                  !((mt == 0 && (cap & MSR_VMX_EPT_UC)) || (mt == 6 && (cap & MSR_VMX_EPT_WB))))) {
        return false;
    }
    /* 4-level walks only */
    if (VMX_CHECK(env, "27.2.1.1", ((eptp >> EPTP_WALK_SHIFT) & 7) != 3)) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1", (eptp & EPTP_AD) && !(cap & MSR_VMX_EPT_AD_BITS))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1", (eptp & 0xf80) || (eptp >> env_archcpu(env)->phys_bits))) {
        return false;                                   /* bits 11:7, > width */
    }
    return true;
}

/* ---- host memory access for the walk ------------------------------------ */

static uint64_t ept_load(CPUX86State *env, hwaddr addr)
{
    void *host = vmx_phys_host_walk(env, addr, 0, MMU_DATA_LOAD);

    return host ? ldq_le_p(host) : x86_ldq_phys(env_cpu(env), addr);
}

/*
 * Set @bits in the EPT entry at @addr if its value is still @old; false
 * if another vCPU changed it first (the walk then restarts).
 */
static bool ept_set_bits(CPUX86State *env, hwaddr addr, uint64_t old, uint64_t bits)
{
    void *host;

    if (!(bits & ~old)) {
        return true;
    }
    host = vmx_phys_host_walk(env, addr, 0, MMU_DATA_STORE);
    if (host) {
        /* A and D are in the low 32 bits: a 32-bit cmpxchg suffices. */
        uint32_t o = cpu_to_le32((uint32_t)old), n = cpu_to_le32((uint32_t)(old | bits));
        return qatomic_cmpxchg((uint32_t *)host, o, n) == o;
    }
    /* Not RAM: best effort, like QEMU's own walker does for MMIO. */
    x86_stq_phys(env_cpu(env), addr, old | bits);
    return true;
}

/* ---- the walk --------------------------------------------------------- */

/* 29.3.3.1: is this present entry a misconfiguration? */
static bool ept_misconfigured(CPUX86State *env, uint64_t e, int level, bool leaf)
{
    uint64_t cap = vmx_ept_vpid_caps(env);
    uint64_t perms = e & EPT_RWX;
    uint64_t rsvd = ~EPT_ADDR_MASK & 0x000ffffffffff000ull;

    if (perms == EPT_W || perms == (EPT_W | EPT_X)) {
        return true;                        /* write without read */
    }
    if (perms == EPT_X && !(cap & MSR_VMX_EPT_EXECONLY)) {
        return true;
    }
    rsvd |= ~0ull << env_archcpu(env)->phys_bits & 0x000fffffffffffffull;
    if (e & rsvd) {
        return true;
    }
    if (leaf) {
        uint64_t mt = (e >> EPT_MT_SHIFT) & 7;
        if (mt == 2 || mt == 3 || mt == 7) {
            return true;                    /* reserved memory types */
        }
        if (level == 3 && (e & 0x3ffff000ull)) {
            return true;                    /* 1 GiB page: bits 29:12 */
        }
        if (level == 2 && (e & 0x1ff000ull)) {
            return true;                    /* 2 MiB page: bits 20:12 */
        }
    } else if (e & 0xf8) {
        return true;                        /* non-leaf: bits 7:3 reserved */
    }
    return false;
}

/*
 * Guest-physical mappings (-cpu ...,x-ept-gpa-cache=on; docs/vmx.md).
 *
 * Hardware may cache guest-physical mappings, derived from EPT alone and
 * tagged by the EPT pointer, and use them for any VPID and any CR3 until
 * INVEPT invalidates them (SDM 29.4.1, 29.4.3.1); a translation made from
 * one does not set the EPT accessed flag again.  Without this model the
 * emulator walks the EPT in memory on every miss of its combined TLB,
 * which is permitted (caching is optional) but hides a hypervisor that
 * clears EPT A/D flags and forgets INVEPT.  With it, each vCPU keeps a
 * direct-mapped cache of 2,048 4 KiB mappings, filled only by walks that
 * found or set the accessed flag (and, for a writable mapping, the dirty
 * flag), emptied by INVEPT, VMXON and VMXOFF.
 */
#define GPA_CACHE_BITS  11
#define GPA_CACHE_CPUS  1024

typedef struct GPAMapping {
    uint64_t eptp;          /* 0: empty */
    uint64_t gfn;
    hwaddr hpa;             /* of the 4 KiB page */
    int prot;               /* PAGE_WRITE only once the dirty flag is set */
} GPAMapping;

static GPAMapping *gpa_caches[GPA_CACHE_CPUS];

static GPAMapping *gpa_slot(CPUX86State *env, uint64_t gfn)
{
    int cpu = env_cpu(env)->cpu_index;

    if (!env_archcpu(env)->ept_gpa_cache || cpu >= GPA_CACHE_CPUS) {
        return NULL;
    }
    if (!gpa_caches[cpu]) {
        gpa_caches[cpu] = g_new0(GPAMapping, 1 << GPA_CACHE_BITS);
    }
    return &gpa_caches[cpu][gfn & ((1 << GPA_CACHE_BITS) - 1)];
}

void vmx_ept_gpa_flush(CPUX86State *env)
{
    int cpu = env_cpu(env)->cpu_index;

    if (cpu < GPA_CACHE_CPUS && gpa_caches[cpu]) {
        memset(gpa_caches[cpu], 0, sizeof(GPAMapping) << GPA_CACHE_BITS);
    }
}

static bool ept_fault(CPUX86State *env, enum ept_fault_kind kind, uint64_t perms,
                      MMUAccessType access)
{
    env->vmx.ept.fault = kind;
    env->vmx.ept.fault_perms = perms & EPT_RWX;
    env->vmx.ept.fault_access = access == MMU_DATA_STORE ? 2 :
                                access == MMU_INST_FETCH ? 4 : 1;
    return false;
}

bool vmx_ept_translate(CPUX86State *env, uint64_t gpa, MMUAccessType access,
                       hwaddr *hpa, int *prot, int *page_size)
{
    uint64_t eptp = VMCS(env, EPT_POINTER);
    uint64_t cap = vmx_ept_vpid_caps(env);
    bool ad = eptp & EPTP_AD;
    uint64_t table, e, perms;
    hwaddr e_addr;
    int level;
    bool flags_set = ad;
    GPAMapping *m = ad ? gpa_slot(env, gpa >> 12) : NULL;

    if (m && m->eptp == eptp && m->gfn == gpa >> 12 &&
        (access == MMU_DATA_LOAD ? (m->prot & PAGE_READ) :
         access == MMU_DATA_STORE ? (m->prot & PAGE_WRITE) : (m->prot & PAGE_EXEC))) {
        /* A cached guest-physical mapping: no walk, no flag, nothing logged. */
        if (unlikely(qatomic_read(&wss_oracle_active)) && env->vmx.ept.in_guest_walk) {
            wss_oracle_walk(env, gpa);
        }
        *prot = m->prot;
        *page_size = TARGET_PAGE_SIZE;
        *hpa = m->hpa | (gpa & ~TARGET_PAGE_MASK);
        return true;
    }

restart:
    table = eptp & EPT_ADDR_MASK;
    perms = EPT_RWX;
    for (level = 4; ; level--) {
        bool leaf;

        e_addr = table + (((gpa >> (12 + 9 * (level - 1))) & 0x1ff) << 3);
        e = ept_load(env, e_addr);
        if (!(e & EPT_RWX)) {
            return ept_fault(env, EPT_FAULT_VIOLATION, perms & 0, access);
        }
        leaf = level == 1 || ((e & EPT_PS) &&
               ((level == 2 && (cap & MSR_VMX_EPT_2MB)) ||
                (level == 3 && (cap & MSR_VMX_EPT_1GB))));
        if (level == 4 && (e & EPT_PS)) {
            return ept_fault(env, EPT_FAULT_MISCONFIG, 0, access);
        }
        if ((e & EPT_PS) && !leaf) {
            return ept_fault(env, EPT_FAULT_MISCONFIG, 0, access);
        }
        if (ept_misconfigured(env, e, level, leaf)) {
            return ept_fault(env, EPT_FAULT_MISCONFIG, 0, access);
        }
        perms &= e;
        if (leaf) {
            break;              /* its flags are set below, after logging */
        }
        if (ad && !ept_set_bits(env, e_addr, e, EPT_A)) {
            goto restart;
        }
        table = e & EPT_ADDR_MASK;
    }

    /* 29.3.3.2: the access must be allowed by every level. */
    if ((access == MMU_DATA_LOAD && !(perms & EPT_R)) ||
        (access == MMU_DATA_STORE && !(perms & EPT_W)) ||
        (access == MMU_INST_FETCH && !(perms & EPT_X))) {
        return ept_fault(env, EPT_FAULT_VIOLATION, perms, access);
    }

    *prot = ((perms & EPT_R) ? PAGE_READ : 0) | ((perms & EPT_W) ? PAGE_WRITE : 0) |
            ((perms & EPT_X) ? PAGE_EXEC : 0);
    if (ad) {
        bool set_a = !(e & EPT_A);
        bool set_d = access == MMU_DATA_STORE && !(e & EPT_D);

        /*
         * docs/epml.md section 6: with the walk filter, the guest page
         * walk's accesses leave the leaf's flags alone, so that the first
         * data access to a page holding paging structures is still logged.
         */
        if (env->vmx.ept.in_guest_walk && vmx_epml_walk_filtered(env, set_a || set_d)) {
            flags_set = !set_a;     /* the flags as they were */
            goto flags_done;
        }
        /* Log before the flags change: a PML-full exit leaves them clear. */
        if (vmx_epml_on(env)) {
            if ((set_a || set_d) &&
                !vmx_epml_log(env, gpa, set_a, set_d, env->vmx.ept.in_guest_walk, e_addr, level)) {
                return ept_fault(env, EPT_FAULT_PML_FULL, perms, access);
            }
        } else if (set_d && vmx_pml_enabled(env) && !vmx_pml_log(env, gpa)) {
            return ept_fault(env, EPT_FAULT_PML_FULL, perms, access);
        }
        if (!ept_set_bits(env, e_addr, e, EPT_A | (set_d ? EPT_D : 0))) {
            goto restart;
        }
        if (!(e & EPT_D) && !set_d) {
            /* Clean page: no write permission in the TLB until it is dirtied. */
            *prot &= ~PAGE_WRITE;
        }
    }
flags_done:
    if (unlikely(qatomic_read(&wss_oracle_active)) && env->vmx.ept.in_guest_walk) {
        wss_oracle_walk(env, gpa);
    }
    *page_size = 1 << (12 + 9 * (level - 1));
    *hpa = (e & EPT_ADDR_MASK & ~((uint64_t)*page_size - 1)) | (gpa & (*page_size - 1));
    if (m && flags_set) {
        /* The accessed flag is set; PAGE_WRITE in *prot means dirty too. */
        m->eptp = eptp;
        m->gfn = gpa >> 12;
        m->hpa = *hpa & TARGET_PAGE_MASK;
        m->prot = *prot;
    }
    return true;
}

/*
 * The combined (guest-linear) TLB entry the fill makes is the cache for
 * final addresses, as on hardware, so they need no nested entry of their
 * own: one TLB fill per guest miss instead of two.
 */
bool vmx_ept_final(CPUX86State *env, uint64_t gpa, MMUAccessType access,
                   CPUTLBEntryFull *full)
{
    int prot, size;
    hwaddr hpa;

    if (!vmx_ept_translate(env, gpa, access, &hpa, &prot, &size)) {
        return false;
    }
    full->phys_addr = hpa;
    full->prot = prot;
    full->lg_page_size = ctz32(size);
    return true;
}

/* ---- the guest's page walk under EPT without A/D flags (29.3.3.2) ----- */

bool vmx_ept_walk_may_read(CPUX86State *env)
{
    return vmx_ept_enabled(env) && !(VMCS(env, EPT_POINTER) & EPTP_AD) &&
           env->vmx.ept.fault == EPT_FAULT_VIOLATION && !env->vmx.ept.walk_refused;
}

void vmx_ept_walk_refuse(CPUX86State *env, uint64_t gpa)
{
    if (!env->vmx.ept.walk_refused) {
        env->vmx.ept.walk_refused = true;
        env->vmx.ept.walk_refused_gpa = gpa;
    }
}

uint64_t vmx_ept_walk_take_refusal(CPUX86State *env)
{
    uint64_t gpa = env->vmx.ept.walk_refused_gpa;
    hwaddr hpa;
    int prot, size;

    env->vmx.ept.walk_refused = false;
    /* Walk EPT again for the write it refused, to record the violation. */
    if (vmx_ept_translate(env, gpa, MMU_DATA_STORE, &hpa, &prot, &size)) {
        /* EPT changed since (another vCPU): report what was refused. */
        ept_fault(env, EPT_FAULT_VIOLATION, EPT_R | ((prot & PAGE_EXEC) ? EPT_X : 0),
                  MMU_DATA_STORE);
    }
    return gpa;
}

/*
 * A stage-2 (EPT) failure reached x86_cpu_tlb_fill: report it as the VM
 * exit the walk recorded.  @walk is true if the access was to a guest
 * paging-structure entry, @gpa the guest-physical address, @gla the
 * linear address being translated.
 */
G_NORETURN void vmx_ept_exit(CPUX86State *env, bool walk, uint64_t gpa,
                             uint64_t gla, uintptr_t ra)
{
    uint64_t qual;

    VMCS(env, GUEST_PHYSICAL_ADDRESS) = gpa;
    switch (env->vmx.ept.fault) {
    case EPT_FAULT_MISCONFIG:
        vmx_vmexit(env, VMX_EXIT_EPT_MISCONFIG, 0, ra);
    case EPT_FAULT_APIC_ACCESS:
        vmx_apic_access_gpa(env, gpa, ra);
    case EPT_FAULT_PML_FULL:
        vmx_stats_count(&vmx_stats(env)->pml_full_exits);
        trace_vmx_pml_full(env_cpu(env)->cpu_index, gpa);
        vmx_vmexit(env, VMX_EXIT_PML_FULL, 0, ra);
    default:
        /* 28.2.1, Table 28-7. */
        qual = env->vmx.ept.fault_access | ((uint64_t)env->vmx.ept.fault_perms << 3) |
               (1ull << 7) | (walk ? 0 : 1ull << 8);
        if (walk) {
            /*
             * A paging-structure access reads the entry, and is a write
             * as the walker probed it: always with EPT A/D on, otherwise
             * only to set a guest A/D flag (vmx_ept_walk_*).
             */
            qual = (qual & ~7ull) | 1 | (env->vmx.ept.fault_access & 2);
        }
        VMCS(env, GUEST_LINEAR_ADDRESS) = gla;
        vmx_vmexit(env, VMX_EXIT_EPT_VIOLATION, qual, ra);
    }
}

/* ---- INVEPT / INVVPID (31.3) -------------------------------------------- */

void vmx_invalidate_guest_tlb(CPUX86State *env)
{
    /* Combined guest-linear entries embed EPT permissions: drop them all. */
    tlb_flush(env_cpu(env));
}

