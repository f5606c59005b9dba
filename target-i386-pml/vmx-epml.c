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
           EPML_CAP_NOTIFY | EPML_CAP_DROP;
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

/* Section 8: a fixed, edge-triggered MSI to the collector's APIC. */
static void epml_notify(CPUX86State *env)
{
    uint32_t vector = VMCS(env, EPML_NOTIFY_VECTOR) & EPML_NOTIFY_MASK;
    uint32_t dest = VMCS(env, EPML_NOTIFY_DEST) & EPML_NOTIFY_MASK;

    address_space_stl_le(&address_space_memory, 0xfee00000u | (dest << 12), vector,
                         MEMTXATTRS_UNSPECIFIED, NULL);
    vmx_stats_notify_vector(vector);
    vmx_stats_count(&vmx_stats(env)->epml_notifies);
    trace_vmx_epml_notify(env_cpu(env)->cpu_index, dest, vector);
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
    if (VMCS(env, EPML_CONTROLS) & EPML_CTL_NOTIFY) {
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
