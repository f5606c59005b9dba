/*
 * qemu-pml: APIC virtualization (Intel SDM Vol. 3C chapter 30) as far as
 * this CPU offers it: "use TPR shadow" (CR8 accesses go to VTPR, 30.3)
 * and "virtualize APIC accesses" (the APIC-access page, 30.4), without
 * APIC-register virtualization, virtual-interrupt delivery or x2APIC
 * virtualization.
 *
 * The APIC-access page is found where TCG fills its TLB
 * (x86_cpu_tlb_fill, qemu-pml/patches/0027): a guest access whose
 * physical address (after EPT, if on) lies on that page either becomes an
 * APIC-access VM exit (44) or, for a VTPR access under "use TPR shadow",
 * is sent to the same offset of the virtual-APIC page.  Entries for the
 * page are installed with a sub-page size, so TCG refills (and this code
 * decides) on every access.
 *
 * A virtualized write to VTPR is followed, once the instruction has
 * completed, by APIC-write emulation (30.4.3.2): VTPR bytes 3:1 are
 * cleared and TPR virtualization may cause a trap-like TPR-below-
 * threshold exit.  To see the end of the instruction, the first such
 * write restarts the instruction in a one-instruction TB (as QEMU does
 * for watchpoints); when that TB has run, CPU_INTERRUPT_VMX_EVENT brings
 * the vCPU to vmx_apic_write_emulation() before the next instruction.
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/translation-block.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "trace.h"

/* env->vmx.apic.vtpr_write: where a virtualized VTPR write stands. */
enum {
    APIC_WRITE_NONE = 0,
    APIC_WRITE_REPLAY = 1,      /* instruction restarted as a one-insn TB */
    APIC_WRITE_DONE = 2,        /* written; emulation due at the boundary */
};

/* Access types of the exit qualification (28.2.1, Table 28-6). */
enum {
    APIC_ACCESS_LINEAR_READ = 0,
    APIC_ACCESS_LINEAR_WRITE = 1,
    APIC_ACCESS_LINEAR_FETCH = 2,
    APIC_ACCESS_LINEAR_EVENT = 3,
    APIC_ACCESS_GPA_EVENT = 10,
    APIC_ACCESS_GPA_INSN = 15,
};

#define APIC_OFFSET_TPR     0x80

static hwaddr vtpr_addr(CPUX86State *env)
{
    return VMCS(env, VIRTUAL_APIC_PAGE_ADDR) + APIC_OFFSET_TPR;
}

static uint32_t vtpr_class(CPUX86State *env)
{
    return (x86_ldl_phys(env_cpu(env), vtpr_addr(env)) >> 4) & 0xf;
}

static bool apic_accesses_virtualized(CPUX86State *env)
{
    return vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES;
}

/* Run the next TB as this one instruction alone, interrupts held off. */
static void replay_insn_alone(CPUState *cs)
{
    cs->cflags_next_tb = (cs->tcg_cflags & ~CF_COUNT_MASK) | CF_NOIRQ | 1;
}

/* Let the vCPU reach vmx_deliver_event() at the next TB boundary. */
static void request_boundary_event(CPUState *cs)
{
    qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
    qatomic_set(&cs->neg.icount_decr.u16.high, -1);
}

/* ---- TPR shadow (30.3, 30.1.2) ----------------------------------------- */

/* MOV from CR8: VTPR bits 7:4. */
target_ulong vmx_read_vtpr(CPUX86State *env)
{
    return vtpr_class(env);
}

/*
 * MOV to CR8: bits 3:0 of the source become VTPR bits 7:4, the rest of
 * VTPR is cleared; then TPR virtualization (without virtual-interrupt
 * delivery): VTPR[7:4] below TPR threshold[3:0] is a trap-like VM exit.
 */
void vmx_write_vtpr(CPUX86State *env, target_ulong val, uintptr_t ra)
{
    CPUState *cs = env_cpu(env);

    x86_stl_phys(cs, vtpr_addr(env), (val & 0xf) << 4);
    if ((val & 0xf) < (VMCS(env, TPR_THRESHOLD) & 0xf)) {
        cpu_restore_state(cs, ra);
        env->eip += env->vmx.xlat.insn_len;
        vmx_vmexit_len(env, VMX_EXIT_TPR_BELOW_THRESHOLD, 0, 0, 0);
    }
}

/* ---- VM entry (27.2.1.1, 27.7.7) --------------------------------------- */

/* 27.2.1.1: the checks on "use TPR shadow" and "virtualize APIC accesses". */
bool vmx_apic_controls_ok(CPUX86State *env)
{
    uint64_t vapic = VMCS(env, VIRTUAL_APIC_PAGE_ADDR);
    uint64_t access_page = VMCS(env, APIC_ACCESS_ADDR);
    uint32_t threshold = VMCS(env, TPR_THRESHOLD);
    uint32_t phys_bits = env_archcpu(env)->phys_bits;

    if (VMX_CHECK(env, "27.2.1.1",
                  apic_accesses_virtualized(env) &&
                  ((access_page & 0xfff) || (access_page >> phys_bits)))) {
        return false;
    }
    if (!(VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_TPR_SHADOW)) {
        return true;
    }
    if (VMX_CHECK(env, "27.2.1.1", (vapic & 0xfff) || (vapic >> phys_bits))) {
        return false;
    }
    /* Without virtual-interrupt delivery (not offered): bits 31:4 are 0. */
    if (VMX_CHECK(env, "27.2.1.1", threshold & ~0xfu)) {
        return false;
    }
    /* Only without "virtualize APIC accesses": threshold <= VTPR[7:4]. */
    return !VMX_CHECK(env, "27.2.1.1",
                      !apic_accesses_virtualized(env) && threshold > vtpr_class(env));
}

/*
 * 27.7.7: with "use TPR shadow" (and no virtual-interrupt delivery) a
 * threshold above VTPR[7:4] is a TPR-below-threshold exit right after VM
 * entry, after any event injection.  The entry check above rules it out
 * unless APIC accesses are virtualized.
 */
void vmx_apic_entry(CPUX86State *env)
{
    env->vmx.apic.vtpr_write = APIC_WRITE_NONE;
    env->vmx.apic.tpr_exit_due = false;
    if ((VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_TPR_SHADOW) &&
        (VMCS(env, TPR_THRESHOLD) & 0xf) > vtpr_class(env)) {
        env->vmx.apic.tpr_exit_due = true;
        qatomic_or(&env_cpu(env)->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
    }
}

void vmx_apic_exit(CPUX86State *env)
{
    env->vmx.apic.vtpr_write = APIC_WRITE_NONE;
    env->vmx.apic.tpr_exit_due = false;
}

/* After an incoming migration: carry on where the source vCPU was. */
void vmx_apic_post_load(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    if (env->vmx.apic.vtpr_write == APIC_WRITE_REPLAY) {
        replay_insn_alone(cs);
    }
    if (vmx_apic_due_event(env)) {
        qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
    }
}

/* ---- the APIC-access page (30.4) --------------------------------------- */

/*
 * 30.4.1, 30.4.3.1 without APIC-register virtualization: only a data
 * access to VTPR (offset 80H) under "use TPR shadow", of at most 32 bits
 * and within bytes 3:0 of its 16-byte register, is virtualized.
 */
static bool vtpr_access(CPUX86State *env, vaddr addr, int size, MMUAccessType access)
{
    unsigned offset = addr & 0xfff;

    return access != MMU_INST_FETCH &&
           (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_TPR_SHADOW) &&
           offset >= APIC_OFFSET_TPR && offset + MAX(size, 1) <= APIC_OFFSET_TPR + 4;
}

/*
 * A virtualized VTPR write: make sure APIC-write emulation runs right
 * after this instruction.  The first time, restart the instruction alone
 * in a TB (its state is exact at a memory access, as for a fault).
 */
static void vtpr_write(CPUX86State *env, uintptr_t ra)
{
    CPUState *cs = env_cpu(env);

    if (env->vmx.apic.vtpr_write != APIC_WRITE_NONE) {
        /* The replay (or a second write of the same instruction). */
        env->vmx.apic.vtpr_write = APIC_WRITE_DONE;
        request_boundary_event(cs);
        return;
    }
    env->vmx.apic.vtpr_write = APIC_WRITE_REPLAY;
    replay_insn_alone(cs);
    cpu_loop_exit_restore(cs, ra);
}

/*
 * Called from x86_cpu_tlb_fill in non-root operation with the physical
 * address @*paddr that the access to @addr (@size bytes) resolved to.
 * See vmx.h.
 */
bool vmx_apic_access(CPUX86State *env, vaddr addr, int size, MMUAccessType access,
                     int mmu_idx, bool probe, hwaddr *paddr, int *page_size,
                     uintptr_t ra)
{
    unsigned type;

    if (!apic_accesses_virtualized(env) ||
        (*paddr & TARGET_PAGE_MASK) != VMCS(env, APIC_ACCESS_ADDR)) {
        return true;
    }
    if (mmu_idx == MMU_NESTED_IDX) {
        /*
         * A guest-physical access: the page walker's (final addresses do
         * not fill this TLB, patch 0030).  vmx_ept_exit reports it.
         */
        env->vmx.ept.fault = EPT_FAULT_APIC_ACCESS;
        return false;
    }
    if (mmu_idx == MMU_PHYS_IDX) {
        return true;            /* physical access (30.4.6): memory, see docs/vmx.md */
    }
    if (vtpr_access(env, addr, size, access)) {
        *paddr = VMCS(env, VIRTUAL_APIC_PAGE_ADDR) | (addr & 0xfff);
        *page_size = 1;         /* below TARGET_PAGE_SIZE: refill on each access */
        if (access == MMU_DATA_STORE && !probe) {
            vtpr_write(env, ra);
        }
        return true;
    }
    if (probe) {
        return false;
    }
    if (env->vmx.exit.idt_vectoring & VMX_INTR_INFO_VALID) {
        type = APIC_ACCESS_LINEAR_EVENT;
    } else if (access == MMU_INST_FETCH) {
        type = APIC_ACCESS_LINEAR_FETCH;
    } else if (access == MMU_DATA_STORE) {
        type = APIC_ACCESS_LINEAR_WRITE;
    } else {
        type = APIC_ACCESS_LINEAR_READ;
    }
    trace_vmx_apic_access(env_cpu(env)->cpu_index, addr & 0xfff, type);
    vmx_vmexit(env, VMX_EXIT_APIC_ACCESS, (addr & 0xfff) | (type << 12), ra);
}

/* The page walker read a paging structure on the APIC-access page. */
G_NORETURN void vmx_apic_access_gpa(CPUX86State *env, uint64_t gpa, uintptr_t ra)
{
    unsigned type = (env->vmx.exit.idt_vectoring & VMX_INTR_INFO_VALID) ?
                    APIC_ACCESS_GPA_EVENT : APIC_ACCESS_GPA_INSN;

    VMCS(env, GUEST_PHYSICAL_ADDRESS) = gpa;
    trace_vmx_apic_access(env_cpu(env)->cpu_index, 0, type);
    vmx_vmexit(env, VMX_EXIT_APIC_ACCESS, type << 12, ra);
}

/* ---- between instructions ---------------------------------------------- */

/*
 * The exit due at this boundary from APIC virtualization, or 0.  A
 * pending APIC-write emulation counts as due: vmx_apic_write_emulation()
 * then decides whether it exits.
 */
uint32_t vmx_apic_due_event(CPUX86State *env)
{
    if (env->vmx.apic.tpr_exit_due || env->vmx.apic.vtpr_write == APIC_WRITE_DONE) {
        return VMX_EXIT_TPR_BELOW_THRESHOLD;
    }
    return 0;
}

/*
 * 30.4.3.2 for offset 80H, then TPR virtualization (30.1.2): returns
 * whether the trap-like TPR-below-threshold exit is due.
 */
bool vmx_apic_write_emulation(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    if (env->vmx.apic.vtpr_write == APIC_WRITE_DONE) {
        env->vmx.apic.vtpr_write = APIC_WRITE_NONE;
        x86_stl_phys(cs, vtpr_addr(env), x86_ldl_phys(cs, vtpr_addr(env)) & 0xff);
        if (vtpr_class(env) < (VMCS(env, TPR_THRESHOLD) & 0xf)) {
            env->vmx.apic.tpr_exit_due = true;
        }
    }
    if (env->vmx.apic.tpr_exit_due) {
        env->vmx.apic.tpr_exit_due = false;
        return true;
    }
    return false;
}
