/*
 * qemu-pml: VM exits (Intel SDM Vol. 3C, chapters 26 and 28).
 *
 * TCG already asks "would this intercept?" at every point SVM needs
 * (cpu_svm_check_intercept_param and friends, emitted while HF_GUEST_MASK
 * is set).  In VMX non-root operation those questions come here
 * (qemu-pml/patches/0009) and are answered with the VMX controls.  An exit
 * is recorded in env->vmx and delivered at EXCP_VMEXIT by vmx_do_exit(),
 * outside of any helper, exactly where SVM delivers #VMEXIT.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "cpu.h"
#include "exec/cpu_ldst.h"
#include "exec/exec-all.h"
#include "exec/cputlb.h"
#include "exec/helper-proto.h"
#include "system/runstate.h"
#include "tcg/helper-tcg.h"
#include "hw/i386/apic.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "pml/trace.h"

/* ---- MSRs named by the MSR-load/store lists (27.4, 28.4, 28.6) ---------- */

static bool vmx_store_msr(CPUX86State *env, uint32_t index, uint64_t *val)
{
    switch (index) {
    case MSR_EFER:
        *val = env->efer;
        return true;
    case MSR_STAR:
        *val = env->star;
        return true;
    case MSR_LSTAR:
        *val = env->lstar;
        return true;
    case MSR_CSTAR:
        *val = env->cstar;
        return true;
    case MSR_FMASK:
        *val = env->fmask;
        return true;
    case MSR_KERNELGSBASE:
        *val = env->kernelgsbase;
        return true;
    case MSR_IA32_SYSENTER_CS:
        *val = env->sysenter_cs;
        return true;
    case MSR_IA32_SYSENTER_ESP:
        *val = env->sysenter_esp;
        return true;
    case MSR_IA32_SYSENTER_EIP:
        *val = env->sysenter_eip;
        return true;
    case MSR_PAT:
        *val = env->pat;
        return true;
    case MSR_TSC_AUX:
        *val = env->tsc_aux;
        return true;
    case MSR_IA32_TSC:
        /* 28.4: the value RDMSR returns in root operation (no TSC offset). */
        *val = cpu_get_tsc(env);
        return true;
    case VMX_MSR_IA32_DEBUGCTL:
        *val = 0;
        return true;
    }
    return false;
}

/* 28.6: VM-exit MSR-load failures are VMX aborts. */
static G_NORETURN void vmx_abort(CPUX86State *env, uint32_t indicator)
{
    CPUState *cs = env_cpu(env);

    if (env->vmx.current_vmcs != VMCS_PTR_INVALID) {
        x86_stl_phys(cs, env->vmx.current_vmcs + VMCS_OFF_ABORT, indicator);
    }
    qemu_log_mask(LOG_GUEST_ERROR, "qemu-pml: VMX abort %u: shutdown\n", indicator);
    /* The processor enters a shutdown-like state: reset, like a triple fault. */
    qemu_system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
    cs->exception_index = EXCP_HLT;
    cs->halted = 1;
    cpu_loop_exit(cs);
}

/* ---- 28.3: saving guest state ------------------------------------------ */

static void save_guest_seg(CPUX86State *env, const SegmentCache *sc, int sel_id,
                           int base_id, int limit_id, int ar_id, bool code_data)
{
    uint32_t ar = vmx_flags_to_ar(sc->flags);

    /*
     * The processor sets a descriptor's accessed flag whenever it loads
     * it, so a usable code or data segment always has it at an exit.  TCG
     * marks data segments but not CS (far jumps, calls, returns, gates):
     * report what hardware would.
     */
    if (code_data && !(ar & VMX_AR_UNUSABLE) && (ar & VMX_AR_S)) {
        ar |= VMX_AR_TYPE_ACCESSED;
    }
    env->vmx.vmcs.f[sel_id] = sc->selector;
    env->vmx.vmcs.f[base_id] = sc->base;
    env->vmx.vmcs.f[limit_id] = sc->limit;
    env->vmx.vmcs.f[ar_id] = ar;
}

#define SAVE_GUEST_SEG(env, sc, NAME, code_data) \
    save_guest_seg(env, sc, VMCS_ID_GUEST_##NAME##_SELECTOR, VMCS_ID_GUEST_##NAME##_BASE, \
                   VMCS_ID_GUEST_##NAME##_LIMIT, VMCS_ID_GUEST_##NAME##_AR_BYTES, code_data)

/* Interruptibility bit 3: (virtual-)NMI blocking, as vmx_nmi_blocked() keeps it. */
static bool guest_nmi_blocking(CPUX86State *env)
{
    uint32_t pin = VMCS(env, PIN_BASED_VM_EXEC_CONTROL);

    if (!(pin & VMX_PIN_BASED_VIRTUAL_NMIS) && (pin & VMX_PIN_BASED_NMI_EXITING)) {
        return env->vmx.nmi_blocked;
    }
    return env->hflags2 & HF2_NMI_MASK;
}

/*
 * NMI blocking in the host after the exit: an exit caused by an NMI
 * leaves NMIs blocked; with "virtual NMIs" nothing else blocks them;
 * otherwise the guest's blocking carries over.
 */
static void update_host_nmi_blocking(CPUX86State *env, bool nmi_exit)
{
    uint32_t pin = VMCS(env, PIN_BASED_VM_EXEC_CONTROL);
    bool blocked;

    if (nmi_exit) {
        blocked = true;
    } else if (pin & VMX_PIN_BASED_VIRTUAL_NMIS) {
        blocked = false;
    } else {
        blocked = guest_nmi_blocking(env);
    }
    if (blocked) {
        env->hflags2 |= HF2_NMI_MASK;
    } else {
        env->hflags2 &= ~HF2_NMI_MASK;
    }
}

/*
 * 28.3.4: with EPT and PAE paging the exit stores the PDPTEs, read here
 * through EPT from the table guest CR3 points to (TCG keeps no PDPTE
 * registers).  An entry EPT does not map is left as it was.
 */
static void save_guest_pdptes(CPUX86State *env)
{
    hwaddr hpa;
    int prot, size, i;

    if (!vmx_ept_enabled_in_vmcs(env) || !(env->cr[0] & CR0_PG_MASK) ||
        !(env->cr[4] & CR4_PAE_MASK) || (env->hflags & HF_LMA_MASK)) {
        env->vmx.pdptes_loaded = false;
        return;
    }
    if (env->vmx.pdptes_loaded) {
        /* The PDPTEs VM entry loaded, still in use (27.3.2.4, 28.3.4). */
        for (i = 0; i < 4; i++) {
            env->vmx.vmcs.f[VMCS_ID_GUEST_PDPTE0 + i] = env->vmx.pdpte[i];
        }
        env->vmx.pdptes_loaded = false;
        return;
    }
    for (i = 0; i < 4; i++) {
        uint64_t gpa = (env->cr[3] & ~0x1full) + 8 * i;

        if (vmx_ept_translate(env, gpa, MMU_DATA_LOAD, &hpa, &prot, &size)) {
            env->vmx.vmcs.f[VMCS_ID_GUEST_PDPTE0 + i] = x86_ldq_phys(env_cpu(env), hpa);
        }
    }
}

static void save_guest_state(CPUX86State *env)
{
    uint32_t exit = VMCS(env, VM_EXIT_CONTROLS);
    uint32_t intr = 0;

    VMCS(env, GUEST_CR0) = env->cr[0];
    VMCS(env, GUEST_CR3) = env->cr[3];
    VMCS(env, GUEST_CR4) = env->cr[4];
    if (exit & VMX_VM_EXIT_SAVE_DEBUG_CONTROLS) {
        VMCS(env, GUEST_DR7) = env->dr[7];
    }
    VMCS(env, GUEST_RSP) = env->regs[R_ESP];
    VMCS(env, GUEST_RIP) = env->eip;
    VMCS(env, GUEST_RFLAGS) = cpu_compute_eflags(env);

    SAVE_GUEST_SEG(env, &env->segs[R_ES], ES, true);
    SAVE_GUEST_SEG(env, &env->segs[R_CS], CS, true);
    SAVE_GUEST_SEG(env, &env->segs[R_SS], SS, true);
    SAVE_GUEST_SEG(env, &env->segs[R_DS], DS, true);
    SAVE_GUEST_SEG(env, &env->segs[R_FS], FS, true);
    SAVE_GUEST_SEG(env, &env->segs[R_GS], GS, true);
    SAVE_GUEST_SEG(env, &env->ldt, LDTR, false);
    SAVE_GUEST_SEG(env, &env->tr, TR, false);
    /* A code segment is never unusable; CS keeps its AR as loaded. */
    VMCS(env, GUEST_CS_AR_BYTES) &= ~VMX_AR_UNUSABLE;
    VMCS(env, GUEST_GDTR_BASE) = env->gdt.base;
    VMCS(env, GUEST_GDTR_LIMIT) = env->gdt.limit;
    VMCS(env, GUEST_IDTR_BASE) = env->idt.base;
    VMCS(env, GUEST_IDTR_LIMIT) = env->idt.limit;

    VMCS(env, GUEST_SYSENTER_CS) = env->sysenter_cs;
    VMCS(env, GUEST_SYSENTER_ESP) = env->sysenter_esp;
    VMCS(env, GUEST_SYSENTER_EIP) = env->sysenter_eip;
    if (exit & VMX_VM_EXIT_SAVE_IA32_PAT) {
        VMCS(env, GUEST_IA32_PAT) = env->pat;
    }
    if (exit & VMX_VM_EXIT_SAVE_IA32_EFER) {
        VMCS(env, GUEST_IA32_EFER) = env->efer;
    }
    /* A.6: IA32_VMX_MISC[5] - exits store EFER.LMA in "IA-32e mode guest". */
    if (vmx_cap_msr(env, MSR_IA32_VMX_MISC) & MSR_VMX_MISC_STORE_LMA) {
        VMCS(env, VM_ENTRY_CONTROLS) = (VMCS(env, VM_ENTRY_CONTROLS) &
                                        ~VMX_VM_ENTRY_IA32E_MODE) |
            ((env->efer & MSR_EFER_LMA) ? VMX_VM_ENTRY_IA32E_MODE : 0);
    }

    if (env->hflags & HF_INHIBIT_IRQ_MASK) {
        intr |= VMX_INTERRUPTIBILITY_STI;
    }
    if (guest_nmi_blocking(env)) {
        intr |= VMX_INTERRUPTIBILITY_NMI;
    }
    VMCS(env, GUEST_INTERRUPTIBILITY_INFO) = intr;
    /*
     * An exit that wakes a halted guest (interrupt, NMI, preemption timer,
     * MTF after HLT...) saves the HLT state: QEMU has already left
     * cs->halted when the event is handled, env->vmx.guest_hlt has not.
     */
    if (env->vmx.wait_sipi) {
        /* Only a SIPI ends it, and its exit saves wait-for-SIPI (27.3.4). */
        VMCS(env, GUEST_ACTIVITY_STATE) = VMX_ACTIVITY_WAIT_SIPI;
    } else {
        VMCS(env, GUEST_ACTIVITY_STATE) = env_cpu(env)->halted || env->vmx.guest_hlt ?
                                          VMX_ACTIVITY_HLT : VMX_ACTIVITY_ACTIVE;
    }
    env->vmx.guest_hlt = false;
    env->vmx.wait_sipi = false;
    VMCS(env, GUEST_PENDING_DBG_EXCEPTIONS) = env->vmx.pending_dbg;
    env->vmx.pending_dbg = 0;
    save_guest_pdptes(env);
}

/* ---- 28.5: loading host state ------------------------------------------ */

void vmx_load_host_state(CPUX86State *env)
{
    uint32_t exit = VMCS(env, VM_EXIT_CONTROLS);
    bool host64 = exit & VMX_VM_EXIT_HOST_ADDR_SPACE_SIZE;
    uint32_t data_flags = DESC_P_MASK | DESC_S_MASK | DESC_W_MASK | DESC_A_MASK |
                          DESC_G_MASK | DESC_B_MASK;
    uint64_t efer = env->efer;
    CPUState *cs = env_cpu(env);
    static const struct {
        X86Seg seg;
        int sel_id;
    } data_segs[] = {
        { R_ES, VMCS_ID_HOST_ES_SELECTOR }, { R_SS, VMCS_ID_HOST_SS_SELECTOR },
        { R_DS, VMCS_ID_HOST_DS_SELECTOR }, { R_FS, VMCS_ID_HOST_FS_SELECTOR },
        { R_GS, VMCS_ID_HOST_GS_SELECTOR },
    };
    int i;

    vmx_events_exit(env);
    vmx_tlb_exit_begin(env);
    env->vmx.non_root = false;
    env->hflags &= ~HF_GUEST_MASK;
    env->hflags2 &= ~HF2_NPT_MASK;
    cpu_reset_interrupt(cs, CPU_INTERRUPT_VIRQ);      /* interrupt window */
    env->tsc_offset = 0;

    if (exit & VMX_VM_EXIT_LOAD_IA32_EFER) {
        efer = VMCS(env, HOST_IA32_EFER);
    } else if (host64) {
        efer |= MSR_EFER_LMA | MSR_EFER_LME;
    } else {
        efer &= ~(MSR_EFER_LMA | MSR_EFER_LME);
    }
    /* 28.5.1: CR0 bits 28:19, 17, 15:6 and ET keep their values. */
    vmx_load_paging_state(env, (VMCS(env, HOST_CR0) & ~0x1ffaffc0ull) |
                               (env->cr[0] & 0x1ffaffc0ull),
                          VMCS(env, HOST_CR3), VMCS(env, HOST_CR4), efer);
    cpu_x86_update_dr7(env, 0x400);
    env->sysenter_cs = VMCS(env, HOST_IA32_SYSENTER_CS);
    env->sysenter_esp = VMCS(env, HOST_IA32_SYSENTER_ESP);
    env->sysenter_eip = VMCS(env, HOST_IA32_SYSENTER_EIP);
    if (exit & VMX_VM_EXIT_LOAD_IA32_PAT) {
        env->pat = VMCS(env, HOST_IA32_PAT);
    }

    /* 28.5.2: segments, flat and present, or unusable when null. */
    cpu_x86_load_seg_cache(env, R_CS, VMCS(env, HOST_CS_SELECTOR), 0, 0xffffffff,
                           DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK | DESC_R_MASK |
                           DESC_A_MASK | DESC_G_MASK |
                           (host64 ? DESC_L_MASK : DESC_B_MASK));
    for (i = 0; i < ARRAY_SIZE(data_segs); i++) {
        uint16_t sel = env->vmx.vmcs.f[data_segs[i].sel_id];
        uint64_t base = data_segs[i].seg == R_FS ? VMCS(env, HOST_FS_BASE) :
                        data_segs[i].seg == R_GS ? VMCS(env, HOST_GS_BASE) : 0;
        bool usable = sel || data_segs[i].seg == R_SS;

        cpu_x86_load_seg_cache(env, data_segs[i].seg, sel, base,
                               usable ? 0xffffffff : 0,
                               usable || data_segs[i].seg == R_SS ? data_flags : 0);
    }
    env->tr.selector = VMCS(env, HOST_TR_SELECTOR);
    env->tr.base = VMCS(env, HOST_TR_BASE);
    env->tr.limit = 0x67;
    env->tr.flags = DESC_P_MASK | (11 << DESC_TYPE_SHIFT);
    env->ldt.selector = 0;
    env->ldt.base = 0;
    env->ldt.limit = 0;
    env->ldt.flags = 0;
    env->gdt.base = VMCS(env, HOST_GDTR_BASE);
    env->gdt.limit = 0xffff;
    env->idt.base = VMCS(env, HOST_IDTR_BASE);
    env->idt.limit = 0xffff;

    env->regs[R_ESP] = VMCS(env, HOST_RSP);
    env->eip = VMCS(env, HOST_RIP);
    vmx_load_rflags(env, 2);
    env->hflags &= ~HF_INHIBIT_IRQ_MASK;
    cs->halted = 0;
    vmx_tlb_exit_end(env);

    /* 28.6: the VM-exit MSR-load list. */
    for (i = 0; i < VMCS(env, VM_EXIT_MSR_LOAD_COUNT); i++) {
        uint64_t a = VMCS(env, VM_EXIT_MSR_LOAD_ADDR) + 16 * i;
        if (x86_ldl_phys(cs, a + 4) ||
            !vmx_load_msr(env, x86_ldl_phys(cs, a), x86_ldq_phys(cs, a + 8))) {
            vmx_abort(env, 4);          /* "failure loading MSRs" */
        }
    }
}

/* A VM-entry failure (27.8): host state is loaded, guest state is not saved. */
G_NORETURN void vmx_entry_failure(CPUX86State *env, uint32_t reason, uint64_t qual,
                                  uintptr_t ra)
{
    CPUState *cs = env_cpu(env);

    if (ra) {
        cpu_restore_state(cs, ra);
    }
    VMCS(env, VM_EXIT_REASON) = reason | VMX_EXIT_REASON_ENTRY_FAILURE;
    VMCS(env, EXIT_QUALIFICATION) = qual;
    VMCS(env, VM_EXIT_INTR_INFO) = 0;
    VMCS(env, IDT_VECTORING_INFO_FIELD) = 0;
    trace_vmx_vmexit(cs->cpu_index, reason | VMX_EXIT_REASON_ENTRY_FAILURE, qual, env->eip,
                     env->cr[3]);
    vmx_load_host_state(env);
    cpu_loop_exit(cs);
}

/* ---- delivering an exit ------------------------------------------------ */

/* IRET ends (virtual-)NMI blocking even when it faults (unless NMI exiting alone). */
static bool iret_unblocks_nmis(CPUX86State *env)
{
    uint32_t pin = VMCS(env, PIN_BASED_VM_EXEC_CONTROL);

    return (pin & VMX_PIN_BASED_VIRTUAL_NMIS) || !(pin & VMX_PIN_BASED_NMI_EXITING);
}

/*
 * An exit raised while a guest IRET executes (a fault it caused, an EPT
 * violation or misconfiguration, PML full): the blocking IRET would end is
 * cleared before the exit, and "NMI unblocking due to IRET" (bit 12 of the
 * interruption information or of the qualification) says it was there.
 */
static void exit_during_iret(CPUX86State *env)
{
    uint32_t reason = env->vmx.pending_reason;
    bool unblocked;

    env->vmx.in_iret = 0;
    if (env->vmx.idt_vectoring || !iret_unblocks_nmis(env) ||
        !(env->hflags2 & HF2_NMI_MASK)) {
        return;
    }
    if (reason == VMX_EXIT_EXCEPTION_NMI) {
        unblocked = (env->vmx.pending_intr_info & VMX_INTR_TYPE_MASK) != VMX_INTR_TYPE_NMI;
        if (unblocked) {
            env->vmx.pending_intr_info |= VMX_INTR_INFO_NMI_UNBLOCKING;
        }
    } else if (reason == VMX_EXIT_EPT_VIOLATION || reason == VMX_EXIT_PML_FULL) {
        unblocked = true;
        env->vmx.pending_qual |= VMX_INTR_INFO_NMI_UNBLOCKING;   /* also bit 12 */
    } else {
        unblocked = reason == VMX_EXIT_EPT_MISCONFIG;
    }
    if (unblocked) {
        env->hflags2 &= ~HF2_NMI_MASK;
    }
}

void vmx_do_exit(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);
    uint32_t reason;
    bool nmi_exit;
    int i;

    if (env->vmx.in_iret) {
        exit_during_iret(env);
    }
    reason = env->vmx.pending_reason;
    nmi_exit = reason == VMX_EXIT_EXCEPTION_NMI &&
               (env->vmx.pending_intr_info & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_NMI;

    VMCS(env, VM_EXIT_REASON) = reason;
    VMCS(env, EXIT_QUALIFICATION) = env->vmx.pending_qual;
    VMCS(env, VM_EXIT_INTR_INFO) = env->vmx.pending_intr_info;
    VMCS(env, VM_EXIT_INTR_ERROR_CODE) = env->vmx.pending_intr_err;
    VMCS(env, VM_EXIT_INSTRUCTION_LEN) = env->vmx.exit_insn_len;
    VMCS(env, VMX_INSTRUCTION_INFO) = env->vmx.pending_insn_info;
    VMCS(env, IDT_VECTORING_INFO_FIELD) = env->vmx.idt_vectoring;
    VMCS(env, IDT_VECTORING_ERROR_CODE) = env->vmx.idt_vectoring_err;
    env->vmx.pending_intr_info = 0;
    env->vmx.pending_intr_err = 0;
    env->vmx.pending_insn_info = 0;
    env->vmx.idt_vectoring = 0;
    trace_vmx_vmexit(cs->cpu_index, reason, env->vmx.pending_qual, env->eip, env->cr[3]);
    vmx_stats_exit(env, reason, VMCS(env, VM_EXIT_INTR_INFO));

    save_guest_state(env);
    vmx_events_save(env);
    update_host_nmi_blocking(env, nmi_exit);
    /* 28.4: the VM-exit MSR-store list. */
    for (i = 0; i < VMCS(env, VM_EXIT_MSR_STORE_COUNT); i++) {
        uint64_t a = VMCS(env, VM_EXIT_MSR_STORE_ADDR) + 16 * i;
        uint64_t val;

        if (x86_ldl_phys(cs, a + 4) || !vmx_store_msr(env, x86_ldl_phys(cs, a), &val)) {
            vmx_abort(env, 2);          /* "failure saving guest MSRs" */
        }
        x86_stq_phys(cs, a + 8, val);
    }
    vmx_load_host_state(env);
}

/* ---- which events exit (chapter 26) ------------------------------------ */

/*
 * INT3 (CC) and INTO (CE) are software exceptions, INT n (CD ib) a
 * software interrupt even for vectors 3 and 4.  TCG passes the vector and
 * the instruction's length: the one-byte forms are the exceptions (a
 * prefixed CC or CE would be taken for INT n).
 */
static bool sw_exception(int vector, unsigned insn_len)
{
    return (vector == EXCP03_INT3 || vector == EXCP04_INTO) && insn_len == 1;
}


/* The general register the intercepted instruction names (translator info). */
int vmx_intercept_gpr(CPUX86State *env)
{
    uint32_t info = env->vmx.intercept_info;

    return (info & 7) | ((info >> 8) & 1) << 3;     /* modrm.rm | REX.B */
}
#define intercept_gpr vmx_intercept_gpr

static uint32_t proc_ctls(CPUX86State *env)
{
    return VMCS(env, CPU_BASED_VM_EXEC_CONTROL);
}

/* 26.1.3: RDMSR/WRMSR and the MSR bitmaps. */
static bool msr_exits(CPUX86State *env, uint32_t index, bool write)
{
    uint64_t base = VMCS(env, MSR_BITMAP) + (write ? 2048 : 0);

    if (!(proc_ctls(env) & VMX_CPU_BASED_USE_MSR_BITMAPS)) {
        return true;
    }
    if (index <= 0x1fff) {
        /* low MSRs: offset 0 (read) / 2048 (write) */
    } else if (index >= 0xc0000000 && index <= 0xc0001fff) {
        base += 1024;
        index -= 0xc0000000;
    } else {
        return true;
    }
    return x86_ldub_phys(env_cpu(env), base + index / 8) & (1 << (index % 8));
}

/* 26.1.3: I/O instructions, unconditional or through the I/O bitmaps. */
static bool io_exits(CPUX86State *env, uint32_t port, int size)
{
    CPUState *cs = env_cpu(env);
    int i;

    if (!(proc_ctls(env) & VMX_CPU_BASED_USE_IO_BITMAPS)) {
        return proc_ctls(env) & VMX_CPU_BASED_UNCOND_IO_EXITING;
    }
    for (i = 0; i < size; i++) {
        uint32_t p = (port + i) & 0xffff;
        uint64_t bitmap = p < 0x8000 ? VMCS(env, IO_BITMAP_A) : VMCS(env, IO_BITMAP_B);

        if (port + i > 0xffff ||
            (x86_ldub_phys(cs, bitmap + (p & 0x7fff) / 8) & (1 << (p % 8)))) {
            return true;
        }
    }
    return false;
}

/* Instructions that exit exactly when one primary control is set (26.1.3). */
static const struct {
    uint32_t svm_type;
    uint32_t control;
    uint16_t reason;
} proc_ctl_exits[] = {
    { SVM_EXIT_HLT, VMX_CPU_BASED_HLT_EXITING, VMX_EXIT_HLT },
    { SVM_EXIT_RDPMC, VMX_CPU_BASED_RDPMC_EXITING, VMX_EXIT_RDPMC },
    { SVM_EXIT_MWAIT, VMX_CPU_BASED_MWAIT_EXITING, VMX_EXIT_MWAIT },
    { SVM_EXIT_MONITOR, VMX_CPU_BASED_MONITOR_EXITING, VMX_EXIT_MONITOR },
    { SVM_EXIT_PAUSE, VMX_CPU_BASED_PAUSE_EXITING, VMX_EXIT_PAUSE },
};

/* In VMX non-root operation TCG's SVM intercept points land here. */
void vmx_check_intercept(CPUX86State *env, uint32_t type, uint64_t param,
                         uintptr_t ra)
{
    uint32_t proc = proc_ctls(env);
    int i;

    if (type == SVM_EXIT_HLT && !(proc & VMX_CPU_BASED_HLT_EXITING)) {
        env->vmx.guest_hlt = true;      /* HLT runs: the guest halts */
    }
    for (i = 0; i < ARRAY_SIZE(proc_ctl_exits); i++) {
        if (proc_ctl_exits[i].svm_type == type) {
            if (proc & proc_ctl_exits[i].control) {
                vmx_vmexit(env, proc_ctl_exits[i].reason, 0, ra);
            }
            return;
        }
    }

    switch (type) {
    case SVM_EXIT_CPUID:
        vmx_vmexit(env, VMX_EXIT_CPUID, 0, ra);
    case SVM_EXIT_INVD:
        vmx_vmexit(env, VMX_EXIT_INVD, 0, ra);
    case SVM_EXIT_RDTSC: {
        /* TCG's RDTSCP goes through the RDTSC helper; the translator said which. */
        bool rdtscp = env->vmx.intercept_info == VMX_INTERCEPT_RDTSCP;

        env->vmx.intercept_info = 0;
        if (proc & VMX_CPU_BASED_RDTSC_EXITING) {
            vmx_vmexit(env, rdtscp ? VMX_EXIT_RDTSCP : VMX_EXIT_RDTSC, 0, ra);
        }
        /*
         * A guest reading the TSC must not see it past the preemption
         * timer's deadline and go on: if the timer has expired, its exit
         * comes at this boundary, before the read.
         */
        vmx_preempt_check(env, ra);
        return;
    }
    case SVM_EXIT_MSR:
        if (msr_exits(env, (uint32_t)env->regs[R_ECX], param)) {
            vmx_vmexit(env, param ? VMX_EXIT_WRMSR : VMX_EXIT_RDMSR, 0, ra);
        }
        return;
    case SVM_EXIT_WBINVD:
        if (vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_WBINVD_EXITING) {
            vmx_vmexit(env, VMX_EXIT_WBINVD, 0, ra);
        }
        return;
    case SVM_EXIT_XSETBV:
        vmx_vmexit(env, VMX_EXIT_XSETBV, 0, ra);
    case SVM_EXIT_INVLPG:
        if (proc & VMX_CPU_BASED_INVLPG_EXITING) {
            vmx_vmexit(env, VMX_EXIT_INVLPG, env->vmx.intercept_addr, ra);
        }
        return;
    case SVM_EXIT_READ_CR0 + 8:
        if (proc & VMX_CPU_BASED_CR8_STORE_EXITING) {
            vmx_vmexit(env, VMX_EXIT_CR_ACCESS, 8 | (1 << 4) | (intercept_gpr(env) << 8), ra);
        }
        return;
    case SVM_EXIT_READ_DR0 ... SVM_EXIT_READ_DR0 + 7:
    case SVM_EXIT_WRITE_DR0 ... SVM_EXIT_WRITE_DR0 + 7:
        /* 28.2.1 Table 28-4: DR number, direction (1 = MOV from DR), GPR. */
        if (proc & VMX_CPU_BASED_MOV_DR_EXITING) {
            bool read = type < SVM_EXIT_WRITE_DR0;
            int dr = type - (read ? SVM_EXIT_READ_DR0 : SVM_EXIT_WRITE_DR0);

            vmx_vmexit(env, VMX_EXIT_DR_ACCESS,
                       dr | (read ? 1 << 4 : 0) | (intercept_gpr(env) << 8), ra);
        }
        return;
    case SVM_EXIT_GDTR_READ:
    case SVM_EXIT_IDTR_READ:
    case SVM_EXIT_GDTR_WRITE:
    case SVM_EXIT_IDTR_WRITE:
    case SVM_EXIT_LDTR_READ:
    case SVM_EXIT_TR_READ:
    case SVM_EXIT_LDTR_WRITE:
    case SVM_EXIT_TR_WRITE:
        /* 26.1.3: descriptor-table exiting; the translator left the operand. */
        if (vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_DESC) {
            bool gdt_idt = type == SVM_EXIT_GDTR_READ || type == SVM_EXIT_IDTR_READ ||
                           type == SVM_EXIT_GDTR_WRITE || type == SVM_EXIT_IDTR_WRITE;

            vmx_operand_exit(env, gdt_idt ? VMX_EXIT_GDTR_IDTR : VMX_EXIT_LDTR_TR, ra);
        }
        return;
    case SVM_EXIT_SHUTDOWN:
        vmx_vmexit(env, VMX_EXIT_TRIPLE_FAULT, 0, ra);
    case SVM_EXIT_EXCP_BASE ... SVM_EXIT_EXCP_BASE + 31: {
        int vector = type - SVM_EXIT_EXCP_BASE;
        bool exits = VMCS(env, EXCEPTION_BITMAP) & (1u << vector);

        trace_vmx_guest_exception(env_cpu(env)->cpu_index, vector, param, env->eip,
                                  env->cr[2], env->old_exception);

        if (vector == EXCP0E_PAGE) {
            /* 25.2: #PF consults the error-code mask and match too. */
            bool match = (param & VMCS(env, PAGE_FAULT_ERROR_CODE_MASK)) ==
                         VMCS(env, PAGE_FAULT_ERROR_CODE_MATCH);
            exits = exits == match;
        }
        if (!exits && vector == EXCP01_DB && (proc & VMX_CPU_BASED_MONITOR_TRAP_FLAG) &&
            (env->eflags & TF_MASK) && (env->dr[6] & DR6_BS)) {
            /*
             * A single-step trap at the same boundary as an MTF VM exit:
             * the exit wins and the trap stays pending (BS in the pending
             * debug exceptions field), not yet in DR6.
             */
            env->dr[6] &= ~DR6_BS;
            env->vmx.pending_dbg = DR6_BS;
            vmx_vmexit(env, VMX_EXIT_MONITOR_TRAP, 0, ra);
        }
        if (!exits) {
            return;
        }
        env->vmx.pending_intr_info = VMX_INTR_INFO_VALID | vector |
            (vector == EXCP02_NMI ? VMX_INTR_TYPE_NMI : VMX_INTR_TYPE_HW_EXCEPTION);
        if (vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 ||
            vector == 21) {
            env->vmx.pending_intr_info |= VMX_INTR_INFO_DELIVER_CODE;
            env->vmx.pending_intr_err = param;
        }
        vmx_vmexit(env, VMX_EXIT_EXCEPTION_NMI,
                   vector == EXCP0E_PAGE ? env->cr[2] : 0, ra);
    }
    case SVM_EXIT_SWINT:
        /*
         * INT3 and INTO are software exceptions: the exception bitmap
         * decides (25.2).  INT n is never intercepted, INT 3 and INT 4
         * (CD 03, CD 04) included.
         */
        {
            int vector = param & 0xff;

            if (sw_exception(vector, param >> 8) &&
                (VMCS(env, EXCEPTION_BITMAP) & (1u << vector))) {
                env->vmx.pending_intr_info = VMX_INTR_INFO_VALID |
                                             VMX_INTR_TYPE_SW_EXCEPTION | vector;
                /* Raised outside a TB: the translator passed the length. */
                vmx_vmexit_len(env, VMX_EXIT_EXCEPTION_NMI, 0, param >> 8, ra);
            }
        }
        return;
    case SVM_EXIT_INTR:
        if (VMCS(env, PIN_BASED_VM_EXEC_CONTROL) & VMX_PIN_BASED_EXT_INTR_MASK) {
            if (VMCS(env, VM_EXIT_CONTROLS) & VMX_VM_EXIT_ACK_INTR_ON_EXIT) {
                int vector;

                /*
                 * Clear the request first: acknowledging raises it again
                 * if the APIC or PIC has a further interrupt pending.
                 */
                env_cpu(env)->interrupt_request &= ~(CPU_INTERRUPT_HARD |
                                                     CPU_INTERRUPT_VIRQ);
                vector = cpu_get_pic_interrupt(env);
                env->vmx.pending_intr_info = VMX_INTR_INFO_VALID |
                                             VMX_INTR_TYPE_EXT_INTR | (vector & 0xff);
            }
            vmx_vmexit(env, VMX_EXIT_EXTERNAL_INTERRUPT, 0, ra);
        }
        return;
    case SVM_EXIT_VINTR:
        if (vmx_intr_window_open(env)) {
            vmx_vmexit(env, VMX_EXIT_INTERRUPT_WINDOW, 0, ra);
        }
        return;
    case SVM_EXIT_NMI:
        if (VMCS(env, PIN_BASED_VM_EXEC_CONTROL) & VMX_PIN_BASED_NMI_EXITING) {
            env_cpu(env)->interrupt_request &= ~CPU_INTERRUPT_NMI;
            env->vmx.pending_intr_info = VMX_INTR_INFO_VALID | VMX_INTR_TYPE_NMI | 2;
            vmx_vmexit(env, VMX_EXIT_EXCEPTION_NMI, 0, ra);
        }
        return;
    case SVM_EXIT_INIT:
        vmx_init_signal(env);           /* vmx-signals.c */
        return;
    case SVM_EXIT_ERR:
        /* An SVM consistency failure has no VMX counterpart: #GP(0). */
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    default:
        /* Not a VMX exit condition (or one not emulated yet). */
        return;
    }
}

/*
 * A debug exception is about to be raised (patch 0022): @old_dr6 is DR6
 * before it, @bits what it sets (B3:0, BD, BS).  Debug exceptions still
 * pending from VM entry (blocked by MOV SS) join them.  With #DB in the
 * exception bitmap it is a VM exit that leaves DR6 alone and reports the
 * bits in the exit qualification (27.1, 28.2.1); otherwise DR6 gets the
 * pending bits too and the #DB goes to the guest.
 */
void vmx_debug_exception(CPUX86State *env, target_ulong old_dr6, target_ulong bits)
{
    if (!env->vmx.non_root) {
        return;
    }
    bits |= env->vmx.pending_dbg & (DR6_BS | DR6_BD | 0xf);
    env->vmx.pending_dbg = 0;
    if (!(VMCS(env, EXCEPTION_BITMAP) & (1u << EXCP01_DB))) {
        env->dr[6] |= bits;
        return;
    }
    trace_vmx_guest_exception(env_cpu(env)->cpu_index, EXCP01_DB, bits, env->eip,
                              env->cr[2], env->old_exception);
    env->dr[6] = old_dr6;
    env->vmx.pending_intr_info = VMX_INTR_INFO_VALID | VMX_INTR_TYPE_HW_EXCEPTION | EXCP01_DB;
    vmx_vmexit(env, VMX_EXIT_EXCEPTION_NMI, bits, 0);
}

/* RDRAND / RDSEED exiting (26.1.3): @info from the translator. */
void helper_vmx_rdrand(CPUX86State *env, uint32_t info)
{
    bool rdseed = info & (1u << 31);

    if (env->vmx.non_root &&
        (vmx_secondary_ctls(env) & (rdseed ? VMX_SECONDARY_EXEC_RDSEED_EXITING :
                                             VMX_SECONDARY_EXEC_RDRAND_EXITING))) {
        env->vmx.pending_insn_info = info & ~(1u << 31);
        vmx_vmexit(env, rdseed ? VMX_EXIT_RDSEED : VMX_EXIT_RDRAND, 0, GETPC());
    }
}

/* 26.1.3 / 28.2.1: I/O instruction exit qualification. */
/*
 * INS/OUTS exits (28.2.1, 28.2.5): the guest-linear address of the
 * string element (ES:rDI for INS, segment:rSI for OUTS, at the current
 * iteration), and, as IA32_VMX_BASIC[54] promises, the instruction
 * information: address size (bits 9:7) and segment (bits 17:15).
 */
static void io_string_info(CPUX86State *env, uint32_t info, bool in)
{
    int asize = (info >> VMX_IO_INFO_ASIZE_SHIFT) & 3;     /* MemOp: 1..3 */
    int seg = (info >> VMX_IO_INFO_SEG_SHIFT) & 7;
    uint64_t off = env->regs[in ? R_EDI : R_ESI];
    uint64_t gla;

    off &= asize == MO_16 ? 0xffff : asize == MO_32 ? 0xffffffffull : ~0ull;
    gla = env->segs[seg].base + off;
    VMCS(env, GUEST_LINEAR_ADDRESS) = in_64bit_mode(env) ? gla : (uint32_t)gla;
    env->vmx.pending_insn_info = ((uint32_t)(asize - 1) << 7) | ((uint32_t)seg << 15);
}

void vmx_check_io(CPUX86State *env, uint32_t port, uint32_t svm_param,
                  uintptr_t ra)
{
    uint32_t info = env->vmx.intercept_info;
    int size = (svm_param >> SVM_IOIO_SIZE_SHIFT) & 7;   /* 1, 2 or 4 */
    uint64_t qual;

    size = size == 4 ? 4 : size == 2 ? 2 : 1;
    if (!io_exits(env, port, size)) {
        return;
    }
    qual = (size - 1) | ((svm_param & SVM_IOIO_TYPE_MASK) ? 8 : 0) |
           ((svm_param & SVM_IOIO_STR_MASK) ? 16 : 0) |
           ((svm_param & SVM_IOIO_REP_MASK) ? 32 : 0) |
           ((uint64_t)port << 16);
    if (info & VMX_IO_INFO_VALID) {
        qual |= (info & VMX_IO_INFO_IMM) ? 64 : 0;      /* operand encoding */
        if (svm_param & SVM_IOIO_STR_MASK) {
            io_string_info(env, info, svm_param & SVM_IOIO_TYPE_MASK);
        }
    }
    vmx_vmexit(env, VMX_EXIT_IO, qual, ra);
}

/*
 * 26.4.2: task switches are not allowed in non-root operation.  TCG's
 * switch_tss calls this (patch 0023) once the checks that come first
 * have passed (task gate, TSS descriptor type, presence, limit, busy
 * flag) and before anything changes.  Qualification (28.2.1): the new
 * TSS's selector and the source: 0 CALL, 1 IRET, 2 JMP, 3 a task gate in
 * the IDT (then the IDT-vectoring information holds the event).
 * @source is QEMU's SWITCH_TSS_JMP (0), _IRET (1) or _CALL (2).
 */
void vmx_task_switch(CPUX86State *env, int tss_selector, int source, uintptr_t ra)
{
    static const uint32_t vmx_source[3] = { 2, 1, 0 };
    uint32_t src;

    if (!env->vmx.non_root) {
        return;
    }
    src = (env->vmx.idt_vectoring & VMX_INTR_INFO_VALID) ? 3 : vmx_source[source % 3];
    vmx_vmexit(env, VMX_EXIT_TASK_SWITCH, (tss_selector & 0xffff) | ((uint64_t)src << 30), ra);
}

/*
 * 28.2.4: an event is being delivered through the guest IDT.  If a VM
 * exit interrupts the delivery, the IDT-vectoring information says which.
 */
void vmx_event_delivery(CPUX86State *env, int intno, int is_int, int error_code,
                        int is_hw, int rm)
{
    uint32_t info = VMX_INTR_INFO_VALID | (intno & 0xff);

    if (is_hw) {
        info |= intno == EXCP02_NMI ? VMX_INTR_TYPE_NMI : VMX_INTR_TYPE_EXT_INTR;
    } else if (is_int) {
        /* 28.2.4: an exit during its delivery reports the INT's length. */
        env->vmx.idt_vectoring_len = env->exception_next_eip - env->eip;
        info |= sw_exception(intno, env->vmx.idt_vectoring_len) ?
                VMX_INTR_TYPE_SW_EXCEPTION : VMX_INTR_TYPE_SW_INTR;
    } else {
        info |= VMX_INTR_TYPE_HW_EXCEPTION;
        if (!rm && (intno == 8 || (intno >= 10 && intno <= 14) || intno == 17 ||
                    intno == 21)) {
            info |= VMX_INTR_INFO_DELIVER_CODE;
            env->vmx.idt_vectoring_err = error_code;
        }
    }
    env->vmx.idt_vectoring = info;
}

void vmx_event_delivered(CPUX86State *env)
{
    env->vmx.idt_vectoring = 0;
    /* 26.5.2: an MTF VM exit follows the delivery of an event. */
    env->vmx.insn_ran = 1;
    env->vmx.guest_hlt = false;         /* an event delivered wakes it */
    /* A fault in IRET, delivered to the guest: IRET unblocked NMIs anyway. */
    if (env->vmx.in_iret) {
        env->vmx.in_iret = 0;
        if (iret_unblocks_nmis(env)) {
            env->hflags2 &= ~HF2_NMI_MASK;
        }
    }
}
