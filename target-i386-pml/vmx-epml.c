/*
 * qemu-pml: extended page-modification logging (docs/epml.md).
 *
 * Extended PML is this project's extension, not part of the Intel SDM:
 * docs/epml.md is its specification (section numbers below are that
 * document's).  It builds on EPT accessed/dirty flags and stock PML
 * (SDM Vol. 3C 29.3.5, 29.3.6; stock PML itself is vmx-pml.c).
 *
 * The EPT walker (vmx-ept.c) calls vmx_epml_log() before it sets a leaf
 * entry's accessed or dirty flag; this file decides whether the
 * transition is logged, writes the 16-byte entry into the active buffer,
 * hands full buffers to software through the descriptor, notifies the
 * collector's APIC, and applies the both-buffers-full policy.
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "vmx-stats.h"
#include "pml/trace.h"

/* IA32_VMX_EPML_CAP (section 2): every feature of this revision. */
uint64_t vmx_epml_cap(CPUX86State *env)
{
    return EPML_MAX_SIZE_SHIFT | EPML_CAP_READ | EPML_CAP_FILTER_WALK | EPML_CAP_EPTE |
           EPML_CAP_NOTIFY | EPML_CAP_DROP | EPML_CAP_POST;
}

uint32_t vmx_epml_entries_per_buffer(CPUX86State *env)
{
    return EPML_BUF_ENTRIES(VMCS(env, EPML_BUFFER_SIZE) & EPML_CAP_MAX_SIZE_MASK);
}

static bool epml_addr_valid(CPUX86State *env, uint64_t addr, uint64_t align)
{
    return !(addr & (align - 1)) && !(addr >> env_archcpu(env)->phys_bits);
}

/* Section 10: the control-field checks (VMfailValid 7 when false). */
bool vmx_epml_controls_valid(CPUX86State *env)
{
    uint32_t ctl = VMCS(env, EPML_CONTROLS);

    if (VMX_CHECK(env, "epml.md 10",
                  !vmx_ept_enabled_in_vmcs(env) ||
                  (vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_ENABLE_PML))) {
        return false;
    }
    if (VMX_CHECK(env, "epml.md 10",
                  (ctl & ~EPML_CTL_VALID) ||
                  ((ctl & EPML_CTL_POST) && !(vmx_epml_cap(env) & EPML_CAP_POST)) ||
                  VMCS(env, EPML_BUFFER_SIZE) > (vmx_epml_cap(env) & EPML_CAP_MAX_SIZE_MASK))) {
        return false;
    }
    if (VMX_CHECK(env, "epml.md 10",
                  !epml_addr_valid(env, VMCS(env, EPML_BUFFER0_ADDR), EPML_BUF_ALIGN) ||
                  !epml_addr_valid(env, VMCS(env, EPML_BUFFER1_ADDR), EPML_BUF_ALIGN) ||
                  !epml_addr_valid(env, VMCS(env, EPML_DESC_ADDR), EPML_DESC_ALIGN))) {
        return false;
    }
    if (VMX_CHECK(env, "epml.md 10",
                  (VMCS(env, EPML_NOTIFY_VECTOR) & ~(uint64_t)EPML_NOTIFY_MASK) ||
                  (VMCS(env, EPML_NOTIFY_DEST) & ~(uint64_t)EPML_NOTIFY_MASK))) {
        return false;
    }
    if (VMX_CHECK(env, "epml.md 10",
                  (ctl & EPML_CTL_NOTIFY) &&
                  VMCS(env, EPML_NOTIFY_VECTOR) < EPML_NOTIFY_MIN_VECTOR)) {
        return false;
    }
    /* Section 8.1: posting needs "notify" and a descriptor in range. */
    if (VMX_CHECK(env, "epml.md 10",
                  (ctl & EPML_CTL_POST) && !(ctl & EPML_CTL_NOTIFY))) {
        return false;
    }
    if (VMX_CHECK(env, "epml.md 10",
                  (ctl & EPML_CTL_POST) &&
                  !epml_addr_valid(env, VMCS(env, EPML_POST_DESC_ADDR), EPML_PI_DESC_ALIGN))) {
        return false;
    }
    return true;
}

/* Section 10: the guest-state checks (VM-entry failure, reason 33). */
bool vmx_epml_guest_state_valid(CPUX86State *env)
{
    return !VMX_CHECK(env, "epml.md 10",
                      VMCS(env, GUEST_EPML_INDEX) > vmx_epml_entries_per_buffer(env)) &&
           !VMX_CHECK(env, "epml.md 10", VMCS(env, GUEST_EPML_ACTIVE) > 1);
}

/* ---- the descriptor (section 7) ----------------------------------------- */

static uint32_t desc_ldl(CPUX86State *env, unsigned off)
{
    return x86_ldl_phys(env_cpu(env), VMCS(env, EPML_DESC_ADDR) + off);
}

static void desc_stl(CPUX86State *env, unsigned off, uint32_t val)
{
    x86_stl_phys(env_cpu(env), VMCS(env, EPML_DESC_ADDR) + off, val);
}

static void desc_inc64(CPUX86State *env, unsigned off)
{
    hwaddr a = VMCS(env, EPML_DESC_ADDR) + off;

    x86_stq_phys(env_cpu(env), a, x86_ldq_phys(env_cpu(env), a) + 1);
}

/* Make the other buffer active if software gave it back. */
static bool epml_switch_buffer(CPUX86State *env)
{
    uint32_t other = !VMCS(env, GUEST_EPML_ACTIVE);

    if (desc_ldl(env, EPML_DESC_STATE(other)) & EPML_DESC_FULL) {
        return false;
    }
    VMCS(env, GUEST_EPML_ACTIVE) = other;
    VMCS(env, GUEST_EPML_INDEX) = 0;
    return true;
}

/*
 * A fixed, edge-triggered interrupt with @vector to physical APIC ID
 * @dest: an MSI write of the vector to 0xFEE00000 | (@dest << 12), which
 * carries 8 bits of destination (notification and posted notification).
 */
static void epml_send_msi(uint32_t dest, uint32_t vector)
{
    address_space_stl_le(&address_space_memory, 0xfee00000u | ((dest & 0xff) << 12),
                         vector & 0xff, MEMTXATTRS_UNSPECIFIED, NULL);
}

/* Section 8: a fixed, edge-triggered MSI to the collector's APIC. */
static void epml_notify(CPUX86State *env)
{
    uint32_t vector = VMCS(env, EPML_NOTIFY_VECTOR) & EPML_NOTIFY_MASK;
    uint32_t dest = VMCS(env, EPML_NOTIFY_DEST) & EPML_NOTIFY_MASK;

    epml_send_msi(dest, vector);
    vmx_stats_notify_vector(vector);
    vmx_stats_count(&vmx_stats(env)->epml_notifies);
    trace_vmx_epml_notify(env_cpu(env)->cpu_index, dest, vector);
}

/* ---- posted notification (section 8.1) ---------------------------------- */

/*
 * A locked OR of @bits into the 32-bit word at L1-physical @addr, as the
 * guest's own LOCK OR would do it (TCG runs those as host atomics on the
 * same memory); returns the word's old value.
 */
static uint32_t epml_locked_or(CPUX86State *env, hwaddr addr, uint32_t bits)
{
    uint32_t *host = vmx_phys_host(env, addr, 4, MMU_DATA_STORE);
    uint32_t old;

    if (host) {
        return le32_to_cpu(qatomic_fetch_or(host, cpu_to_le32(bits)));
    }
    /* Not RAM: no other agent can race on it through memory anyway. */
    old = x86_ldl_phys(env_cpu(env), addr);
    x86_stl_phys(env_cpu(env), addr, old | bits);
    return old;
}

/*
 * Section 8.1 step 3: with one locked read-modify-write of the word that
 * holds ON and SN, set ON if both are clear.  Returns that word's value
 * before the write (so the caller knows whether this hand-over set ON).
 */
static uint32_t epml_set_on(CPUX86State *env, hwaddr addr)
{
    uint32_t *host = vmx_phys_host(env, addr, 4, MMU_DATA_STORE);
    uint32_t old, new, seen;

    if (!host) {
        old = x86_ldl_phys(env_cpu(env), addr);
        if (!(old & (EPML_PI_ON | EPML_PI_SN))) {
            x86_stl_phys(env_cpu(env), addr, old | EPML_PI_ON);
        }
        return old;
    }
    old = le32_to_cpu(qatomic_read(host));
    while (!(old & (EPML_PI_ON | EPML_PI_SN))) {
        new = old | EPML_PI_ON;
        seen = le32_to_cpu(qatomic_cmpxchg(host, cpu_to_le32(old), cpu_to_le32(new)));
        if (seen == old) {
            break;
        }
        old = seen;             /* SN (or NV) changed meanwhile: look again */
    }
    return old;
}

/*
 * Section 8.1 steps 2-4, after the hand-over's own writes (step 1): post
 * vector V (the EPML notification vector) into the posted-interrupt
 * descriptor at field 2046H and, if this hand-over set ON, send NV to
 * NDST.  Each step is globally visible before the next starts
 * (smp_mb() between them; the atomics are full barriers as well, the
 * barriers also order the fallback for a descriptor outside RAM).
 */
static void epml_post(CPUX86State *env)
{
    hwaddr pi = VMCS(env, EPML_POST_DESC_ADDR);
    uint32_t vector = VMCS(env, EPML_NOTIFY_VECTOR) & EPML_NOTIFY_MASK;
    uint32_t control, ndst, dest;
    bool x2apic;

    smp_mb();                                           /* step 1 done */
    epml_locked_or(env, pi + EPML_PI_PIR(vector), 1u << (vector % 32));  /* step 2 */
    smp_mb();
    control = epml_set_on(env, pi + EPML_PI_CONTROL);   /* step 3 */
    smp_mb();
    if (control & (EPML_PI_ON | EPML_PI_SN)) {
        vmx_stats_count(&vmx_stats(env)->epml_post_suppressed);
        trace_vmx_epml_post(env_cpu(env)->cpu_index, vector, control, -1);
        return;
    }
    /* Step 4: NV to NDST; NDST's format follows the APIC mode (xAPIC: 15:8). */
    x2apic = cpu_get_apic_base(env_archcpu(env)->apic_state) & MSR_IA32_APICBASE_EXTD;
    ndst = x86_ldl_phys(env_cpu(env), pi + EPML_PI_NDST);
    dest = epml_pi_ndst(ndst, x2apic);
    epml_send_msi(dest, epml_pi_nv(control));
    vmx_stats_count(&vmx_stats(env)->epml_posted);
    trace_vmx_epml_post(env_cpu(env)->cpu_index, vector, control, dest);
}

/* Section 7 step 3: the active buffer is full; give it to software. */
static void epml_hand_over(CPUX86State *env)
{
    static uint32_t handovers;
    uint32_t active = VMCS(env, GUEST_EPML_ACTIVE);
    uint32_t n = VMCS(env, GUEST_EPML_INDEX);

    if (vmx_mutated(VMX_MUTATE_DROP_BUFFER) && qatomic_fetch_inc(&handovers) == 3) {
        n = 0;                  /* mutation: this buffer's entries vanish */
    }
    desc_stl(env, EPML_DESC_COUNT(active), n);
    desc_stl(env, EPML_DESC_STATE(active), EPML_DESC_FULL);
    desc_inc64(env, EPML_DESC_HANDOVERS);
    vmx_stats_count(&vmx_stats(env)->epml_handovers);
    trace_vmx_epml_handover(env_cpu(env)->cpu_index, active, n);
    if ((VMCS(env, EPML_CONTROLS) & (EPML_CTL_NOTIFY | EPML_CTL_POST)) ==
        (EPML_CTL_NOTIFY | EPML_CTL_POST)) {
        epml_post(env);
    } else if (VMCS(env, EPML_CONTROLS) & EPML_CTL_NOTIFY) {
        epml_notify(env);
    }
    epml_switch_buffer(env);
}

/* ---- logging (sections 5, 6, 9) ----------------------------------------- */

/* Write one 16-byte entry (it never straddles a page: 16 divides 4096). */
static void epml_store_entry(CPUX86State *env, hwaddr slot, uint64_t q0, uint64_t q1)
{
    uint64_t entry[2] = { cpu_to_le64(q0), cpu_to_le64(q1) };
    void *host = vmx_phys_host(env, slot, sizeof(entry), MMU_DATA_STORE);

    if (host) {
        memcpy(host, entry, sizeof(entry));
        return;
    }
    address_space_write(cpu_get_address_space(env_cpu(env), X86ASIdx_MEM), slot,
                        MEMTXATTRS_UNSPECIFIED, entry, sizeof(entry));
}

/*
 * Section 6: is the guest page walk's access filtered?  Then it neither
 * logs nor sets the leaf's flags; @transition: it would have changed them
 * (counted as filtered).
 */
bool vmx_epml_walk_filtered(CPUX86State *env, bool transition)
{
    if (!vmx_epml_on(env) || !(VMCS(env, EPML_CONTROLS) & EPML_CTL_FILTER_WALK) ||
        vmx_mutated(VMX_MUTATE_NO_WALK_FILTER)) {
        return false;
    }
    if (transition) {
        vmx_stats_count(&vmx_stats(env)->epml_filtered);
    }
    return true;
}

bool vmx_epml_log(CPUX86State *env, uint64_t gpa, bool set_a, bool set_d,
                  bool walk, hwaddr epte_addr, int level)
{
    uint32_t ctl = VMCS(env, EPML_CONTROLS);
    uint32_t n = vmx_epml_entries_per_buffer(env);
    uint64_t q0, q1;
    uint32_t index;
    hwaddr slot;
    CPUState *cs = env_cpu(env);

    if (!((set_d && (ctl & EPML_CTL_LOG_WRITE)) || (set_a && (ctl & EPML_CTL_LOG_READ)))) {
        return true;
    }
    if (VMCS(env, GUEST_EPML_INDEX) >= n && !epml_switch_buffer(env)) {
        /* Section 9: both buffers are full. */
        if (!(ctl & EPML_CTL_DROP)) {
            return false;
        }
        desc_inc64(env, EPML_DESC_DROPPED);
        vmx_stats_count(&vmx_stats(env)->epml_drops);
        trace_vmx_epml_drop(cs->cpu_index, gpa);
        return true;
    }

    q0 = epml_entry_make(gpa, set_a, set_d, walk, level - 1);
    q1 = (ctl & EPML_CTL_LOG_EPTE) ? epte_addr : 0;
    index = VMCS(env, GUEST_EPML_INDEX);
    slot = (VMCS(env, GUEST_EPML_ACTIVE) ? VMCS(env, EPML_BUFFER1_ADDR) :
            VMCS(env, EPML_BUFFER0_ADDR)) + (hwaddr)index * EPML_ENTRY_SIZE;
    epml_store_entry(env, slot, q0, q1);
    VMCS(env, GUEST_EPML_INDEX) = index + 1;
    if (!index || !(slot & 63)) {
        vmx_stats_log_line(env);    /* the first entry in its cache line */
    }

    vmx_stats_count(&vmx_stats(env)->pml_entries);
    if (set_a) {
        vmx_stats_count(&vmx_stats(env)->epml_reads);
    }
    if (set_d) {
        vmx_stats_count(&vmx_stats(env)->epml_writes);
    }
    if (walk) {
        vmx_stats_count(&vmx_stats(env)->epml_walk);
    }
    trace_vmx_epml_log(cs->cpu_index, q0, q1, index);
    if (index + 1 == n) {
        epml_hand_over(env);
    }
    return true;
}
