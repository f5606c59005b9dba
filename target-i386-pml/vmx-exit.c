/*
 * qemu-pml: VM-exit delivery (Intel SDM Vol. 3C chapter 28: 28.2
 * recording exit information, 28.3 saving guest state, 28.4 the MSR-store
 * list, 28.5 loading host state, 28.6 the MSR-load list and VMX aborts)
 * and VM-entry failures (27.8).
 *
 * Whether something exits is decided elsewhere (vmx-intercept.c,
 * vmx-events.c, vmx-ept.c, vmx-apic.c, vmx-signals.c, vmx-insn.c); the
 * exit is requested with vmx_vmexit() (vmx-base.c), which records it in
 * env->vmx and leaves the helper.  vmx_do_exit() delivers it at
 * EXCP_VMEXIT, outside of any helper, exactly where SVM delivers #VMEXIT.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/cputlb.h"
#include "exec/helper-proto.h"
#include "system/runstate.h"
#include "tcg/helper-tcg.h"
#include "hw/i386/apic.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "vmx-stats.h"
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
        /*
         * 28.4: the value RDMSR returns in root operation (no TSC offset),
         * as of the moment the exit was recognised (vmx_vmexit_len()).
         */
        *val = env->vmx.exit.tsc;
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
        return env->vmx.ev.nmi_blocked;
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
        env->vmx.ept.pdptes_loaded = false;
        return;
    }
    if (env->vmx.ept.pdptes_loaded) {
        /* The PDPTEs VM entry loaded, still in use (27.3.2.4, 28.3.4). */
        for (i = 0; i < 4; i++) {
            env->vmx.vmcs.f[VMCS_ID_GUEST_PDPTE0 + i] = env->vmx.ept.pdpte[i];
        }
        env->vmx.ept.pdptes_loaded = false;
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
     * cs->halted when the event is handled, env->vmx.ev.guest_hlt has not.
     */
    if (env->vmx.sig.wait_sipi) {
        /* Only a SIPI ends it, and its exit saves wait-for-SIPI (27.3.4). */
        VMCS(env, GUEST_ACTIVITY_STATE) = VMX_ACTIVITY_WAIT_SIPI;
    } else {
        VMCS(env, GUEST_ACTIVITY_STATE) = env_cpu(env)->halted || env->vmx.ev.guest_hlt ?
                                          VMX_ACTIVITY_HLT : VMX_ACTIVITY_ACTIVE;
    }
    env->vmx.ev.guest_hlt = false;
    env->vmx.sig.wait_sipi = false;
    VMCS(env, GUEST_PENDING_DBG_EXCEPTIONS) = env->vmx.ev.pending_dbg;
    env->vmx.ev.pending_dbg = 0;
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
    vmx_withdraw_request(cs, CPU_INTERRUPT_VIRQ);     /* interrupt window */
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

    vmx_entry_fail_report(env, VMX_ENTRY_FAIL_EXIT, reason, qual);
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
    uint32_t reason = env->vmx.exit.reason;
    bool unblocked;

    env->vmx.xlat.in_iret = 0;
    if (env->vmx.exit.idt_vectoring || !iret_unblocks_nmis(env) ||
        !(env->hflags2 & HF2_NMI_MASK)) {
        return;
    }
    if (reason == VMX_EXIT_EXCEPTION_NMI) {
        unblocked = (env->vmx.exit.intr_info & VMX_INTR_TYPE_MASK) != VMX_INTR_TYPE_NMI;
        if (unblocked) {
            env->vmx.exit.intr_info |= VMX_INTR_INFO_NMI_UNBLOCKING;
        }
    } else if (reason == VMX_EXIT_EPT_VIOLATION || reason == VMX_EXIT_PML_FULL) {
        unblocked = true;
        env->vmx.exit.qual |= VMX_INTR_INFO_NMI_UNBLOCKING;   /* also bit 12 */
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

    if (env->vmx.xlat.in_iret) {
        exit_during_iret(env);
    }
    reason = env->vmx.exit.reason;
    nmi_exit = reason == VMX_EXIT_EXCEPTION_NMI &&
               (env->vmx.exit.intr_info & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_NMI;

    VMCS(env, VM_EXIT_REASON) = reason;
    VMCS(env, EXIT_QUALIFICATION) = env->vmx.exit.qual;
    VMCS(env, VM_EXIT_INTR_INFO) = env->vmx.exit.intr_info;
    VMCS(env, VM_EXIT_INTR_ERROR_CODE) = env->vmx.exit.intr_err;
    VMCS(env, VM_EXIT_INSTRUCTION_LEN) = env->vmx.xlat.insn_len;
    VMCS(env, VMX_INSTRUCTION_INFO) = env->vmx.exit.insn_info;
    VMCS(env, IDT_VECTORING_INFO_FIELD) = env->vmx.exit.idt_vectoring;
    VMCS(env, IDT_VECTORING_ERROR_CODE) = env->vmx.exit.idt_vectoring_err;
    env->vmx.exit.intr_info = 0;
    env->vmx.exit.intr_err = 0;
    env->vmx.exit.insn_info = 0;
    env->vmx.exit.idt_vectoring = 0;
    trace_vmx_vmexit(cs->cpu_index, reason, env->vmx.exit.qual, env->eip, env->cr[3]);
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

/* ---- IDT-vectoring information (28.2.4) -------------------------------- */

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
        env->vmx.exit.idt_vectoring_len = env->exception_next_eip - env->eip;
        info |= vmx_sw_exception(intno, env->vmx.exit.idt_vectoring_len) ?
                VMX_INTR_TYPE_SW_EXCEPTION : VMX_INTR_TYPE_SW_INTR;
    } else {
        info |= VMX_INTR_TYPE_HW_EXCEPTION;
        if (!rm && (intno == 8 || (intno >= 10 && intno <= 14) || intno == 17 ||
                    intno == 21)) {
            info |= VMX_INTR_INFO_DELIVER_CODE;
            env->vmx.exit.idt_vectoring_err = error_code;
        }
    }
    env->vmx.exit.idt_vectoring = info;
}

void vmx_event_delivered(CPUX86State *env)
{
    env->vmx.exit.idt_vectoring = 0;
    /* 26.5.2: an MTF VM exit follows the delivery of an event. */
    env->vmx.xlat.insn_ran = 1;
    env->vmx.ev.guest_hlt = false;         /* an event delivered wakes it */
    /* A fault in IRET, delivered to the guest: IRET unblocked NMIs anyway. */
    if (env->vmx.xlat.in_iret) {
        env->vmx.xlat.in_iret = 0;
        if (iret_unblocks_nmis(env)) {
            env->hflags2 &= ~HF2_NMI_MASK;
        }
    }
}
