/*
 * qemu-pml: APIC virtualization (Intel SDM Vol. 3C chapter 30): "use TPR
 * shadow" (CR8 accesses go to VTPR, 30.3), "virtualize APIC accesses"
 * (the APIC-access page, 30.4), APIC-register virtualization (30.4.2,
 * 30.4.3), virtual-interrupt delivery (30.1, 30.2), "virtualize x2APIC
 * mode" (30.5) and posted-interrupt processing (30.6).
 *
 * The APIC-access page is found where TCG fills its TLB
 * (x86_cpu_tlb_fill, qemu-pml/patches/0027): a guest access whose
 * physical address (after EPT, if on) lies on that page either becomes an
 * APIC-access VM exit (44) or, when 30.4.2/30.4.3.1 virtualize it, is sent
 * to the same offset of the virtual-APIC page.  Entries for the page are
 * installed with a sub-page size, so TCG refills (and this code decides)
 * on every access.
 *
 * A virtualized write is followed, once the instruction has completed, by
 * APIC-write emulation (30.4.3.2): TPR, EOI and self-IPI virtualization,
 * or an APIC-write VM exit (56).  To see the end of the instruction, the
 * first such write restarts the instruction in a one-instruction TB (as
 * QEMU does for watchpoints); when that TB has run,
 * CPU_INTERRUPT_VMX_EVENT brings the vCPU to vmx_apic_trap() before the
 * next instruction.  RDMSR/WRMSR of the x2APIC MSRs reach this file
 * through patch 0037.
 *
 * Virtual interrupts: RVI and SVI are kept in the guest interrupt status
 * field of the cached VMCS, VPPR, VISR, VIRR and VEOI in the virtual-APIC
 * page.  Evaluation (30.2.1) records whether a virtual interrupt is
 * recognized (env->vmx.apic.virq) and keeps CPU_INTERRUPT_VMX_EVENT set;
 * vmx-events.c delivers it (30.2.2) when RFLAGS.IF and the blocking allow,
 * with the priority of an interrupt-window exit.
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

/* Virtual-APIC page offsets (30.1.1). */
#define APIC_OFFSET_TPR     0x080
#define APIC_OFFSET_PPR     0x0a0
#define APIC_OFFSET_EOI     0x0b0
#define APIC_OFFSET_ISR     0x100
#define APIC_OFFSET_IRR     0x200
#define APIC_OFFSET_ICR_LO  0x300
#define APIC_OFFSET_ICR_HI  0x310
#define APIC_OFFSET_SELF_IPI 0x3f0

/* The x2APIC MSRs, as index = MSR - 800H (30.5). */
#define X2APIC_TPR          0x08
#define X2APIC_EOI          0x0b
#define X2APIC_SELF_IPI     0x3f

/* The local APIC's EOI register at its default address (posted interrupts). */
#define LAPIC_EOI_ADDR      0xfee000b0ull

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

static bool tpr_shadow_on(CPUX86State *env)
{
    return VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_TPR_SHADOW;
}

static bool vid_on(CPUX86State *env)
{
    return vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_VIRTUAL_INTR_DELIVERY;
}

static bool reg_virt_on(CPUX86State *env)
{
    return vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_APIC_REGISTER_VIRT;
}

static uint32_t vapic_read(CPUX86State *env, unsigned offset)
{
    return x86_ldl_phys(env_cpu(env), VMCS(env, VIRTUAL_APIC_PAGE_ADDR) + offset);
}

static void vapic_write(CPUX86State *env, unsigned offset, uint32_t val)
{
    x86_stl_phys(env_cpu(env), VMCS(env, VIRTUAL_APIC_PAGE_ADDR) + offset, val);
}

/* ---- the virtual APIC's state (30.1.1, 30.2) --------------------------- */

static uint8_t vmx_rvi(CPUX86State *env)
{
    return VMCS(env, GUEST_INTR_STATUS) & 0xff;
}

static uint8_t vmx_svi(CPUX86State *env)
{
    return (VMCS(env, GUEST_INTR_STATUS) >> 8) & 0xff;
}

static void set_rvi(CPUX86State *env, uint8_t v)
{
    VMCS(env, GUEST_INTR_STATUS) = (VMCS(env, GUEST_INTR_STATUS) & 0xff00) | v;
}

static void set_svi(CPUX86State *env, uint8_t v)
{
    VMCS(env, GUEST_INTR_STATUS) = (VMCS(env, GUEST_INTR_STATUS) & 0xff) | (v << 8);
}

/* Set or clear bit @vector of the 256-bit VIRR or VISR at @base. */
static void vapic_vector_bit(CPUX86State *env, unsigned base, uint8_t vector, bool set)
{
    unsigned offset = base + 0x10 * (vector / 32);
    uint32_t word = vapic_read(env, offset);

    word = set ? word | (1u << (vector % 32)) : word & ~(1u << (vector % 32));
    vapic_write(env, offset, word);
}

/* The highest vector set in the VIRR or VISR at @base, or 0 if none. */
static uint8_t vapic_highest(CPUX86State *env, unsigned base)
{
    int i;

    for (i = 7; i >= 0; i--) {
        uint32_t word = vapic_read(env, base + 0x10 * i);

        if (word) {
            return i * 32 + 31 - clz32(word);
        }
    }
    return 0;
}

static void request_boundary_event(CPUState *cs);

/*
 * 30.2.1: a virtual interrupt is recognized while RVI[7:4] > VPPR[7:4];
 * done at VM entry and after TPR, EOI and self-IPI virtualization and
 * posted-interrupt processing.
 */
static void evaluate_pending(CPUX86State *env)
{
    uint32_t vppr = vapic_read(env, APIC_OFFSET_PPR) & 0xff;

    env->vmx.apic.virq = (vmx_rvi(env) >> 4) > (vppr >> 4);
    if (env->vmx.apic.virq) {
        request_boundary_event(env_cpu(env));
    }
}

/* 30.1.3: PPR virtualization. */
static void ppr_virtualization(CPUX86State *env)
{
    uint32_t vtpr = vapic_read(env, APIC_OFFSET_TPR) & 0xff;
    uint8_t svi = vmx_svi(env);

    vapic_write(env, APIC_OFFSET_PPR,
                (vtpr >> 4) >= (svi >> 4) ? vtpr : (svi & 0xf0));
}

/*
 * A trap-like VM exit after the current instruction: from a helper inside
 * a TB (@ra) the state is restored and RIP moved past the instruction;
 * between instructions (@ra 0) the state is exact already.
 */
static G_NORETURN void trap_exit(CPUX86State *env, uint32_t reason, uint64_t qual,
                                 uintptr_t ra)
{
    if (ra) {
        cpu_restore_state(env_cpu(env), ra);
        env->eip += env->vmx.xlat.insn_len;
    }
    vmx_vmexit_len(env, reason, qual, 0, 0);
}

/*
 * 30.1.2: TPR virtualization, after VTPR was written (CR8, the APIC-access
 * page, WRMSR 808H).  With virtual-interrupt delivery: PPR virtualization
 * and evaluation; without: a TPR-below-threshold exit if VTPR[7:4] is
 * below TPR threshold[3:0].
 */
static void tpr_virtualization(CPUX86State *env, uintptr_t ra)
{
    if (vid_on(env)) {
        ppr_virtualization(env);
        evaluate_pending(env);
        return;
    }
    if (((vapic_read(env, APIC_OFFSET_TPR) >> 4) & 0xf) < (VMCS(env, TPR_THRESHOLD) & 0xf)) {
        trap_exit(env, VMX_EXIT_TPR_BELOW_THRESHOLD, 0, ra);
    }
}

/* 30.1.4: EOI virtualization; an EOI-induced exit (45) if the bitmap says so. */
static void eoi_virtualization(CPUX86State *env, uintptr_t ra)
{
    static const int bitmap[4] = {
        VMCS_ID_EOI_EXIT_BITMAP0, VMCS_ID_EOI_EXIT_BITMAP1,
        VMCS_ID_EOI_EXIT_BITMAP2, VMCS_ID_EOI_EXIT_BITMAP3,
    };
    uint8_t vector = vmx_svi(env);

    vapic_write(env, APIC_OFFSET_EOI, 0);
    vapic_vector_bit(env, APIC_OFFSET_ISR, vector, false);
    set_svi(env, vapic_highest(env, APIC_OFFSET_ISR));
    ppr_virtualization(env);
    if (env->vmx.vmcs.f[bitmap[vector / 64]] & (1ull << (vector % 64))) {
        trap_exit(env, VMX_EXIT_EOI_INDUCED, vector, ra);
    }
    evaluate_pending(env);
}

/* 30.1.5: self-IPI virtualization. */
static void self_ipi_virtualization(CPUX86State *env, uint8_t vector)
{
    vapic_vector_bit(env, APIC_OFFSET_IRR, vector, true);
    if (vector > vmx_rvi(env)) {
        set_rvi(env, vector);
    }
    evaluate_pending(env);
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
 * VTPR is cleared; then TPR virtualization.
 */
void vmx_write_vtpr(CPUX86State *env, target_ulong val, uintptr_t ra)
{
    x86_stl_phys(env_cpu(env), vtpr_addr(env), (val & 0xf) << 4);
    tpr_virtualization(env, ra);
}

/* ---- VM entry (27.2.1.1, 27.3.2.5, 27.7.7) ----------------------------- */

static bool phys_addr_bad(CPUX86State *env, uint64_t addr, uint64_t align_mask)
{
    return (addr & align_mask) || (addr >> env_archcpu(env)->phys_bits);
}

/* 27.2.1.1: the checks on the APIC-virtualization controls. */
bool vmx_apic_controls_ok(CPUX86State *env)
{
    uint32_t pin = VMCS(env, PIN_BASED_VM_EXEC_CONTROL);
    uint32_t ctls2 = vmx_secondary_ctls(env);
    uint64_t vapic = VMCS(env, VIRTUAL_APIC_PAGE_ADDR);
    uint64_t access_page = VMCS(env, APIC_ACCESS_ADDR);
    uint32_t threshold = VMCS(env, TPR_THRESHOLD);

    if (VMX_CHECK(env, "27.2.1.1",
                  apic_accesses_virtualized(env) && phys_addr_bad(env, access_page, 0xfff))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  !tpr_shadow_on(env) &&
                  (ctls2 & (VMX_SECONDARY_EXEC_VIRTUALIZE_X2APIC_MODE |
                            VMX_SECONDARY_EXEC_APIC_REGISTER_VIRT |
                            VMX_SECONDARY_EXEC_VIRTUAL_INTR_DELIVERY)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (ctls2 & VMX_SECONDARY_EXEC_VIRTUALIZE_X2APIC_MODE) &&
                  apic_accesses_virtualized(env))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  vid_on(env) && !(pin & VMX_PIN_BASED_EXT_INTR_MASK))) {
        return false;
    }
    if (pin & VMX_PIN_BASED_POSTED_INTR) {
        if (VMX_CHECK(env, "27.2.1.1", !vid_on(env))) {
            return false;
        }
        if (VMX_CHECK(env, "27.2.1.1",
                      !(VMCS(env, VM_EXIT_CONTROLS) & VMX_VM_EXIT_ACK_INTR_ON_EXIT))) {
            return false;
        }
        if (VMX_CHECK(env, "27.2.1.1", VMCS(env, POSTED_INTR_NV) & 0xff00)) {
            return false;
        }
        if (VMX_CHECK(env, "27.2.1.1",
                      phys_addr_bad(env, VMCS(env, POSTED_INTR_DESC_ADDR), 0x3f))) {
            return false;
        }
    }
    if (!tpr_shadow_on(env)) {
        return true;
    }
    if (VMX_CHECK(env, "27.2.1.1", phys_addr_bad(env, vapic, 0xfff))) {
        return false;
    }
    /* Without virtual-interrupt delivery: bits 31:4 are 0. */
    if (VMX_CHECK(env, "27.2.1.1", !vid_on(env) && (threshold & ~0xfu))) {
        return false;
    }
    /* Without "virtualize APIC accesses" and VID: threshold <= VTPR[7:4]. */
    return !VMX_CHECK(env, "27.2.1.1",
                      !apic_accesses_virtualized(env) && !vid_on(env) &&
                      threshold > vtpr_class(env));
}

/*
 * 27.3.2.5: with virtual-interrupt delivery, VM entry (RVI and SVI loaded
 * with the VMCS) does PPR virtualization and evaluates pending virtual
 * interrupts.  27.7.7: otherwise, with "use TPR shadow", a threshold
 * above VTPR[7:4] is a TPR-below-threshold exit right after VM entry,
 * after any event injection.  The entry check above rules it out unless
 * APIC accesses are virtualized.
 */
void vmx_apic_entry(CPUX86State *env)
{
    env->vmx.apic.vtpr_write = APIC_WRITE_NONE;
    env->vmx.apic.tpr_exit_due = false;
    env->vmx.apic.virq = false;
    if (!tpr_shadow_on(env)) {
        return;
    }
    if (vid_on(env)) {
        ppr_virtualization(env);
        evaluate_pending(env);
        return;
    }
    if ((VMCS(env, TPR_THRESHOLD) & 0xf) > vtpr_class(env)) {
        env->vmx.apic.tpr_exit_due = true;
        qatomic_or(&env_cpu(env)->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
    }
}

void vmx_apic_exit(CPUX86State *env)
{
    env->vmx.apic.vtpr_write = APIC_WRITE_NONE;
    env->vmx.apic.tpr_exit_due = false;
    env->vmx.apic.virq = false;
}

/* After an incoming migration: carry on where the source vCPU was. */
void vmx_apic_post_load(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    if (env->vmx.apic.vtpr_write == APIC_WRITE_REPLAY) {
        replay_insn_alone(cs);
    }
    if (vmx_apic_trap_due(env) || env->vmx.apic.virq) {
        qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
    }
}

/* ---- the APIC-access page (30.4) --------------------------------------- */

/* 30.4.2: the registers whose reads APIC-register virtualization serves. */
static bool reg_virt_readable(unsigned reg)
{
    switch (reg) {
    case 0x020:                 /* local APIC ID */
    case 0x030:                 /* version */
    case 0x080:                 /* task priority */
    case 0x0b0:                 /* EOI */
    case 0x0d0:                 /* logical destination */
    case 0x0e0:                 /* destination format */
    case 0x0f0:                 /* spurious-interrupt vector */
    case 0x100 ... 0x270:       /* ISR, TMR, IRR */
    case 0x280:                 /* error status */
    case 0x300:                 /* ICR low */
    case 0x310:                 /* ICR high */
    case 0x320 ... 0x370:       /* LVT timer, thermal, perf. counters, LINT0/1, error */
    case 0x380:                 /* timer initial count */
    case 0x3e0:                 /* timer divide configuration */
        return true;
    }
    return false;
}

/* 30.4.3.1: the registers whose writes APIC-register virtualization takes. */
static bool reg_virt_writable(unsigned reg)
{
    switch (reg) {
    case 0x020:
    case 0x080:
    case 0x0b0:
    case 0x0d0:
    case 0x0e0:
    case 0x0f0:
    case 0x280:
    case 0x300:
    case 0x310:
    case 0x320 ... 0x370:
    case 0x380:
    case 0x3e0:
        return true;
    }
    return false;
}

/*
 * 30.4.2 (reads), 30.4.3.1 (writes): whether a data access of @size bytes
 * at page offset @offset is virtualized rather than an APIC-access exit.
 * It must be "use TPR shadow", at most 32 bits, within bytes 3:0 of its
 * 16-byte register; then the register decides, by the controls.
 */
static bool access_virtualized(CPUX86State *env, unsigned offset, int size,
                               MMUAccessType access)
{
    unsigned reg = offset & 0xff0;

    if (access == MMU_INST_FETCH || !tpr_shadow_on(env) ||
        (offset & 0xf) + MAX(size, 1) > 4) {
        return false;
    }
    if (reg_virt_on(env)) {
        return access == MMU_DATA_STORE ? reg_virt_writable(reg) : reg_virt_readable(reg);
    }
    if (vid_on(env)) {
        return reg == APIC_OFFSET_TPR || reg == APIC_OFFSET_EOI || reg == APIC_OFFSET_ICR_LO;
    }
    return reg == APIC_OFFSET_TPR;
}

/*
 * A virtualized write: make sure APIC-write emulation runs right after
 * this instruction.  The first time, restart the instruction alone in a
 * TB (its state is exact at a memory access, as for a fault).  Returns
 * false if the instruction already virtualized a write to another
 * register (30.4.3.1: an APIC-access exit then).
 */
static bool virtualized_write(CPUX86State *env, unsigned offset, uintptr_t ra)
{
    CPUState *cs = env_cpu(env);

    if (env->vmx.apic.vtpr_write != APIC_WRITE_NONE) {
        /*
         * The replay, or a further write of the same instruction: to the
         * same register (a REP STOSB over VTPR) it joins the first one.
         */
        if ((env->vmx.apic.write_offset & 0xff0) != (offset & 0xff0)) {
            return false;
        }
        env->vmx.apic.vtpr_write = APIC_WRITE_DONE;
        request_boundary_event(cs);
        return true;
    }
    env->vmx.apic.vtpr_write = APIC_WRITE_REPLAY;
    env->vmx.apic.write_offset = offset;
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
    unsigned offset = addr & 0xfff;
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
    if (access_virtualized(env, offset, size, access)) {
        if (access != MMU_DATA_STORE || probe || virtualized_write(env, offset, ra)) {
            *paddr = VMCS(env, VIRTUAL_APIC_PAGE_ADDR) | offset;
            *page_size = 1;     /* below TARGET_PAGE_SIZE: refill on each access */
            return true;
        }
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
    trace_vmx_apic_access(env_cpu(env)->cpu_index, offset, type);
    vmx_vmexit(env, VMX_EXIT_APIC_ACCESS, offset | (type << 12), ra);
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

/*
 * 30.4.3.2: APIC-write emulation for a virtualized write at page offset
 * @offset, between instructions.  May exit (trap-like).
 */
static void apic_write_emulation(CPUX86State *env, unsigned offset)
{
    uint32_t icr;

    if (offset >= APIC_OFFSET_TPR && offset < APIC_OFFSET_TPR + 4) {
        vapic_write(env, APIC_OFFSET_TPR, vapic_read(env, APIC_OFFSET_TPR) & 0xff);
        tpr_virtualization(env, 0);
        return;
    }
    if (offset == APIC_OFFSET_EOI && vid_on(env)) {
        eoi_virtualization(env, 0);
        return;
    }
    if (offset == APIC_OFFSET_ICR_LO && vid_on(env)) {
        /*
         * Self-IPI virtualization: reserved bits (31:20, 17:16, 13),
         * delivery status (12), level trigger (15) and delivery mode
         * (10:8) all 0, shorthand (19:18) "self", vector 16 or above.
         */
        icr = vapic_read(env, APIC_OFFSET_ICR_LO);
        if (!(icr & 0xfff3b700u) && ((icr >> 18) & 3) == 1 && (icr & 0xf0)) {
            self_ipi_virtualization(env, icr & 0xff);
            return;
        }
    }
    if (offset >= APIC_OFFSET_ICR_HI && offset < APIC_OFFSET_ICR_HI + 4) {
        vapic_write(env, APIC_OFFSET_ICR_HI,
                    vapic_read(env, APIC_OFFSET_ICR_HI) & 0xff000000u);
        return;
    }
    trap_exit(env, VMX_EXIT_APIC_WRITE, offset, 0);
}

/* ---- between instructions ---------------------------------------------- */

/* APIC-write emulation or the TPR-below-threshold exit of VM entry is due. */
bool vmx_apic_trap_due(CPUX86State *env)
{
    return env->vmx.apic.tpr_exit_due || env->vmx.apic.vtpr_write == APIC_WRITE_DONE;
}

/* Between instructions: what vmx_apic_trap_due() announced. */
void vmx_apic_trap(CPUX86State *env)
{
    if (env->vmx.apic.vtpr_write == APIC_WRITE_DONE) {
        env->vmx.apic.vtpr_write = APIC_WRITE_NONE;
        apic_write_emulation(env, env->vmx.apic.write_offset);
    }
    if (env->vmx.apic.tpr_exit_due) {
        env->vmx.apic.tpr_exit_due = false;
        vmx_vmexit_len(env, VMX_EXIT_TPR_BELOW_THRESHOLD, 0, 0, 0);
    }
}

/*
 * 30.2.2: a recognized virtual interrupt is delivered when RFLAGS.IF is 1,
 * nothing blocks by STI or MOV SS and "interrupt-window exiting" is 0.  It
 * has the priority of an interrupt-window exit: after NMIs (an NMI that
 * is not blocked goes first), before external interrupts.
 */
bool vmx_apic_virq_due(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    return env->vmx.apic.virq && vid_on(env) &&
           (env->eflags & IF_MASK) && !(env->hflags & HF_INHIBIT_IRQ_MASK) &&
           !(VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_VIRTUAL_INTR_PENDING) &&
           !((cs->interrupt_request & CPU_INTERRUPT_NMI) && !vmx_nmi_blocked(env));
}

/* 30.2.2: deliver the virtual interrupt RVI through the guest IDT. */
void vmx_apic_deliver_virq(CPUX86State *env)
{
    uint8_t vector = vmx_rvi(env);

    env->vmx.apic.virq = false;
    vapic_vector_bit(env, APIC_OFFSET_ISR, vector, true);
    set_svi(env, vector);
    vapic_write(env, APIC_OFFSET_PPR, vector & 0xf0);
    vapic_vector_bit(env, APIC_OFFSET_IRR, vector, false);
    set_rvi(env, vapic_highest(env, APIC_OFFSET_IRR));
    trace_vmx_virtual_interrupt(env_cpu(env)->cpu_index, vector);
    do_interrupt_x86_hardirq(env, vector, 1);
}

/* ---- posted-interrupt processing (30.6) -------------------------------- */

/*
 * OR the descriptor's PIR into VIRR, clearing it word by word atomically
 * (other vCPUs post into it meanwhile); returns the highest vector that
 * was set, or -1.
 */
static int pir_to_virr(CPUX86State *env, uint64_t desc)
{
    uint64_t *host = vmx_phys_host(env, desc, 64, MMU_DATA_STORE);
    int top = -1;
    int i, bit;

    for (i = 3; i >= 0; i--) {
        uint64_t word;

        if (host) {
            word = le64_to_cpu(qatomic_xchg(&host[i], 0));
        } else {
            word = x86_ldq_phys(env_cpu(env), desc + 8 * i);
            x86_stq_phys(env_cpu(env), desc + 8 * i, 0);
        }
        if (!word) {
            continue;
        }
        if (top < 0) {
            top = i * 64 + 63 - clz64(word);
        }
        for (bit = 0; bit < 64; bit++) {
            if (word & (1ull << bit)) {
                vapic_vector_bit(env, APIC_OFFSET_IRR, i * 64 + bit, true);
            }
        }
    }
    return top;
}

void vmx_apic_external_interrupt(CPUX86State *env, int vector)
{
    CPUState *cs = env_cpu(env);
    uint64_t desc = VMCS(env, POSTED_INTR_DESC_ADDR);
    uint8_t *on;
    int top;

    if (!(VMCS(env, PIN_BASED_VM_EXEC_CONTROL) & VMX_PIN_BASED_POSTED_INTR) ||
        vector != (VMCS(env, POSTED_INTR_NV) & 0xff)) {
        return;
    }
    /* 1: clear ON (descriptor bit 256). */
    on = vmx_phys_host(env, desc + 32, 1, MMU_DATA_STORE);
    if (on) {
        qatomic_and(on, (uint8_t)~1u);
    } else {
        x86_stb_phys(cs, desc + 32, x86_ldub_phys(cs, desc + 32) & ~1u);
    }
    /* 2: dismiss the notification: write 0 to the local APIC's EOI register. */
    x86_stl_phys(cs, LAPIC_EOI_ADDR, 0);
    /* 3, 4: PIR into VIRR; RVI is the highest of RVI and the posted vectors. */
    top = pir_to_virr(env, desc);
    if (top > vmx_rvi(env)) {
        set_rvi(env, top);
    }
    trace_vmx_posted_interrupt(cs->cpu_index, vector, top);
    /* 5: evaluate; the interrupt, if any, is delivered at this boundary. */
    evaluate_pending(env);
    /* A halted guest stays halted unless the interrupt can wake it. */
    if (env->vmx.ev.guest_hlt && !vmx_apic_virq_due(env)) {
        cs->halted = 1;
        cs->exception_index = EXCP_HLT;
    }
    cpu_loop_exit(cs);
}

/* ---- virtualized x2APIC mode (30.5, patch 0037) ------------------------ */

static bool x2apic_virtualized(CPUX86State *env)
{
    return env->vmx.non_root &&
           (vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_VIRTUALIZE_X2APIC_MODE);
}

/*
 * RDMSR of x2APIC MSR 800H + @index that did not exit: VTPR (808H) always,
 * every MSR of the range with APIC-register virtualization, from the
 * 64 bits at offset @index << 4 of the virtual-APIC page.
 */
bool vmx_x2apic_rdmsr(CPUX86State *env, uint32_t index, uint64_t *val)
{
    if (!x2apic_virtualized(env) || (index != X2APIC_TPR && !reg_virt_on(env))) {
        return false;
    }
    *val = x86_ldq_phys(env_cpu(env), VMCS(env, VIRTUAL_APIC_PAGE_ADDR) + (index << 4));
    return true;
}

/*
 * WRMSR of x2APIC MSR 800H + @index that did not exit: TPR, and with
 * virtual-interrupt delivery EOI and self IPI, are virtualized; any other
 * MSR goes to the local APIC as usual.
 */
bool vmx_x2apic_wrmsr(CPUX86State *env, uint32_t index, uint64_t val, uintptr_t ra)
{
    CPUState *cs = env_cpu(env);
    uint64_t vapic = VMCS(env, VIRTUAL_APIC_PAGE_ADDR);

    if (!x2apic_virtualized(env)) {
        return false;
    }
    switch (index) {
    case X2APIC_TPR:
        if (val >> 8) {
            raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
        }
        x86_stq_phys(cs, vapic + APIC_OFFSET_TPR, val);
        tpr_virtualization(env, ra);
        return true;
    case X2APIC_EOI:
        if (!vid_on(env)) {
            return false;
        }
        if (val) {
            raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
        }
        eoi_virtualization(env, ra);
        return true;
    case X2APIC_SELF_IPI:
        if (!vid_on(env)) {
            return false;
        }
        if (val >> 8) {
            raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
        }
        x86_stq_phys(cs, vapic + APIC_OFFSET_SELF_IPI, val);
        if (!(val & 0xf0)) {
            /* APIC-write emulation of offset 3F0H: vectors 0-15 exit. */
            trap_exit(env, VMX_EXIT_APIC_WRITE, APIC_OFFSET_SELF_IPI, ra);
        }
        self_ipi_virtualization(env, val);
        return true;
    }
    return false;
}
