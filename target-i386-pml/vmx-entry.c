/*
 * qemu-pml: VM entry (Intel SDM Vol. 3C, chapter 27).
 *
 * vmx_vm_entry() runs after VMLAUNCH/VMRESUME passed their own checks:
 *   27.2.1 controls  -> VMfailValid(7)
 *   27.2.2 host state -> VMfailValid(8)
 *   27.3.1 guest state -> VM-entry failure, exit reason 33
 *   27.3.2 load guest state, 27.4 MSR loading (failure: reason 34),
 *   27.6 event injection, then VMX non-root operation.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/cputlb.h"
#include "system/runstate.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "pml/trace.h"

static bool vmx_phys_ok(CPUX86State *env, uint64_t addr)
{
    return !(addr >> env_archcpu(env)->phys_bits);
}

static bool pat_valid(uint64_t pat)
{
    int i;

    for (i = 0; i < 8; i++) {
        uint8_t t = pat >> (8 * i);
        if (t > 7 || t == 2 || t == 3) {
            return false;
        }
    }
    return true;
}

static bool ctl_ok(CPUX86State *env, uint32_t value, uint32_t msr, uint32_t true_msr)
{
    bool use_true = vmx_cap_msr(env, MSR_IA32_VMX_BASIC) & MSR_VMX_BASIC_TRUE_CTLS;

    return vmx_ctl_allowed(vmx_cap_msr(env, use_true ? true_msr : msr), value);
}

/* ---- 27.2.1: VMX controls ---------------------------------------------- */

static bool check_event_injection(CPUX86State *env)
{
    uint32_t info = VMCS(env, VM_ENTRY_INTR_INFO_FIELD);
    uint32_t type = info & VMX_INTR_TYPE_MASK;
    uint8_t vector = info;
    bool pe = VMCS(env, GUEST_CR0) & CR0_PE_MASK;

    if (!(info & VMX_INTR_INFO_VALID)) {
        return true;
    }
    if (VMX_CHECK(env, "27.2.1.3", info & 0x7ffff000)) { /* bits 30:12 reserved */
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.3", type == (1u << 8))) {
        return false;                               /* 1 is reserved */
    }
    /* 7 (other event) is a pending MTF VM exit, vector 0, if MTF exists. */
    if (VMX_CHECK(env, "27.2.1.3",
                  type == VMX_INTR_TYPE_OTHER &&
                  (vector != 0 || !(vmx_cap_msr(env, MSR_IA32_VMX_PROCBASED_CTLS) &
                                    ((uint64_t)VMX_CPU_BASED_MONITOR_TRAP_FLAG << 32))))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.3", type == VMX_INTR_TYPE_NMI && vector != 2)) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.3", type == VMX_INTR_TYPE_HW_EXCEPTION && vector > 31)) {
        return false;
    }
    /*
     * 27.2.1.3: "deliver error code" is 1 exactly for hardware exceptions
     * that push one, when unrestricted guest is 0 or CR0.PE is 1.
     */
    if (VMX_CHECK(env, "27.2.1.3",
                  !!(info & VMX_INTR_INFO_DELIVER_CODE) !=
                  ((!vmx_unrestricted_guest(env) || pe) &&
                   type == VMX_INTR_TYPE_HW_EXCEPTION &&
                   (vector == 8 || (vector >= 10 && vector <= 14) ||
                    vector == 17 || vector == 21)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.3",
                  (info & VMX_INTR_INFO_DELIVER_CODE) &&
                  (VMCS(env, VM_ENTRY_EXCEPTION_ERROR_CODE) & 0xffff8000))) {
        return false;
    }
    if (type == VMX_INTR_TYPE_SW_INTR || type == VMX_INTR_TYPE_PRIV_SW_EXCEPTION ||
        type == VMX_INTR_TYPE_SW_EXCEPTION) {
        uint32_t len = VMCS(env, VM_ENTRY_INSTRUCTION_LEN);
        /* zero length is not offered (MISC[30]) */
        if (VMX_CHECK(env, "27.2.1.3", len < 1 || len > 15)) {
            return false;
        }
    }
    return true;
}

static bool msr_area_ok(CPUX86State *env, uint64_t addr, uint32_t count)
{
    /* 27.2.1.2/3: checked only when the list is not empty. */
    return !count || (!(addr & 0xf) && vmx_phys_ok(env, addr) &&
                      vmx_phys_ok(env, addr + (uint64_t)count * 16 - 1));
}

static bool check_controls(CPUX86State *env)
{
    uint32_t pin = VMCS(env, PIN_BASED_VM_EXEC_CONTROL);
    uint32_t proc = VMCS(env, CPU_BASED_VM_EXEC_CONTROL);
    uint32_t proc2 = vmx_secondary_ctls(env);
    uint32_t exit = VMCS(env, VM_EXIT_CONTROLS);
    uint32_t entry = VMCS(env, VM_ENTRY_CONTROLS);

    /* 27.2.1.1: VM-execution controls. */
    if (VMX_CHECK(env, "27.2.1.1",
                  !ctl_ok(env, pin, MSR_IA32_VMX_PINBASED_CTLS,
                          MSR_IA32_VMX_TRUE_PINBASED_CTLS))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  !ctl_ok(env, proc, MSR_IA32_VMX_PROCBASED_CTLS,
                          MSR_IA32_VMX_TRUE_PROCBASED_CTLS))) {
        return false;
    }
    if (proc & VMX_CPU_BASED_ACTIVATE_SECONDARY_CONTROLS) {
        if (VMX_CHECK(env, "27.2.1.1",
                      !vmx_ctl_allowed(vmx_cap_msr(env, MSR_IA32_VMX_PROCBASED_CTLS2), proc2))) {
            return false;
        }
    }
    /* Tertiary controls: a 1 only where IA32_VMX_PROCBASED_CTLS3 allows it. */
    if (VMX_CHECK(env, "27.2.1.1",
                  vmx_tertiary_ctls(env) & ~vmx_cap_msr(env, MSR_IA32_VMX_PROCBASED_CTLS3))) {
        return false;
    }
    if (VMX_CHECK(env, "epml.md 10", vmx_epml_on(env) && !vmx_epml_controls_valid(env))) {
        return false;                   /* docs/epml.md section 10 */
    }
    if (VMX_CHECK(env, "27.2.1.1", VMCS(env, CR3_TARGET_COUNT) > 4)) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (proc & VMX_CPU_BASED_USE_IO_BITMAPS) &&
                  ((VMCS(env, IO_BITMAP_A) & 0xfff) ||
                   !vmx_phys_ok(env, VMCS(env, IO_BITMAP_A)) ||
                   (VMCS(env, IO_BITMAP_B) & 0xfff) ||
                   !vmx_phys_ok(env, VMCS(env, IO_BITMAP_B))))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (proc & VMX_CPU_BASED_USE_MSR_BITMAPS) &&
                  ((VMCS(env, MSR_BITMAP) & 0xfff) ||
                   !vmx_phys_ok(env, VMCS(env, MSR_BITMAP))))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (proc2 & VMX_SECONDARY_EXEC_ENABLE_VPID) && !VMCS(env, VIRTUAL_PROCESSOR_ID))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (proc2 & VMX_SECONDARY_EXEC_ENABLE_EPT) &&
                  !vmx_eptp_valid(env, VMCS(env, EPT_POINTER)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (proc2 & VMX_SECONDARY_EXEC_UNRESTRICTED_GUEST) &&
                  !(proc2 & VMX_SECONDARY_EXEC_ENABLE_EPT))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (proc2 & VMX_SECONDARY_EXEC_ENABLE_PML) &&
                  (!(proc2 & VMX_SECONDARY_EXEC_ENABLE_EPT) ||
                   (VMCS(env, PML_ADDRESS) & 0xfff) ||
                   !vmx_phys_ok(env, VMCS(env, PML_ADDRESS))))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  !(pin & VMX_PIN_BASED_NMI_EXITING) && (pin & VMX_PIN_BASED_VIRTUAL_NMIS))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  !(pin & VMX_PIN_BASED_VIRTUAL_NMIS) &&
                  (proc & VMX_CPU_BASED_VIRTUAL_NMI_PENDING))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1", !vmx_apic_controls_ok(env))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.1",
                  (proc2 & VMX_SECONDARY_EXEC_SHADOW_VMCS) &&
                  ((VMCS(env, VMREAD_BITMAP) & 0xfff) ||
                   !vmx_phys_ok(env, VMCS(env, VMREAD_BITMAP)) ||
                   (VMCS(env, VMWRITE_BITMAP) & 0xfff) ||
                   !vmx_phys_ok(env, VMCS(env, VMWRITE_BITMAP))))) {
        return false;
    }

    /* 27.2.1.2: VM-exit controls. */
    if (VMX_CHECK(env, "27.2.1.2",
                  !ctl_ok(env, exit, MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.2",
                  !(pin & VMX_PIN_BASED_VMX_PREEMPTION_TIMER) &&
                  (exit & VMX_VM_EXIT_SAVE_VMX_PREEMPTION_TIMER))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.2",
                  !msr_area_ok(env, VMCS(env, VM_EXIT_MSR_STORE_ADDR),
                               VMCS(env, VM_EXIT_MSR_STORE_COUNT)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.2",
                  !msr_area_ok(env, VMCS(env, VM_EXIT_MSR_LOAD_ADDR),
                               VMCS(env, VM_EXIT_MSR_LOAD_COUNT)))) {
        return false;
    }

    /* 27.2.1.3: VM-entry controls. */
    if (VMX_CHECK(env, "27.2.1.3",
                  !ctl_ok(env, entry, MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_TRUE_ENTRY_CTLS))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.3", entry & (VMX_VM_ENTRY_SMM | VMX_VM_ENTRY_DEACT_DUAL_MONITOR))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.3", !check_event_injection(env))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.1.3",
                  !msr_area_ok(env, VMCS(env, VM_ENTRY_MSR_LOAD_ADDR),
                               VMCS(env, VM_ENTRY_MSR_LOAD_COUNT)))) {
        return false;
    }
    return true;
}

/* ---- 27.2.2 / 27.2.3: host state --------------------------------------- */

static bool check_host_state(CPUX86State *env)
{
    uint32_t exit = VMCS(env, VM_EXIT_CONTROLS);
    bool host64 = exit & VMX_VM_EXIT_HOST_ADDR_SPACE_SIZE;
    uint64_t cr4 = VMCS(env, HOST_CR4);

    if (VMX_CHECK(env, "27.2.2",
                  !vmx_cr_fixed_ok(VMCS(env, HOST_CR0), vmx_cap_msr(env, MSR_IA32_VMX_CR0_FIXED0),
                                   vmx_cap_msr(env, MSR_IA32_VMX_CR0_FIXED1)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.2",
                  !vmx_cr_fixed_ok(cr4, vmx_cap_msr(env, MSR_IA32_VMX_CR4_FIXED0),
                                   vmx_cap_msr(env, MSR_IA32_VMX_CR4_FIXED1)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.2", !vmx_phys_ok(env, VMCS(env, HOST_CR3)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.2",
                  !vmx_canonical(env, VMCS(env, HOST_IA32_SYSENTER_ESP)) ||
                  !vmx_canonical(env, VMCS(env, HOST_IA32_SYSENTER_EIP)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.2",
                  (exit & VMX_VM_EXIT_LOAD_IA32_PAT) && !pat_valid(VMCS(env, HOST_IA32_PAT)))) {
        return false;
    }
    if (exit & VMX_VM_EXIT_LOAD_IA32_EFER) {
        uint64_t efer = VMCS(env, HOST_IA32_EFER);
        if (VMX_CHECK(env, "27.2.2",
                      (efer & ~(MSR_EFER_SCE | MSR_EFER_LME | MSR_EFER_LMA | MSR_EFER_NXE)) ||
                      !!(efer & MSR_EFER_LMA) != host64 || !!(efer & MSR_EFER_LME) != host64)) {
            return false;
        }
    }
    /* 27.2.3: selectors have RPL = TI = 0; CS and TR are not null. */
    if (VMX_CHECK(env, "27.2.3", VMCS(env, HOST_ES_SELECTOR) & 7) ||
        VMX_CHECK(env, "27.2.3", VMCS(env, HOST_CS_SELECTOR) & 7) ||
        VMX_CHECK(env, "27.2.3", VMCS(env, HOST_SS_SELECTOR) & 7) ||
        VMX_CHECK(env, "27.2.3", VMCS(env, HOST_DS_SELECTOR) & 7) ||
        VMX_CHECK(env, "27.2.3", VMCS(env, HOST_FS_SELECTOR) & 7) ||
        VMX_CHECK(env, "27.2.3", VMCS(env, HOST_GS_SELECTOR) & 7) ||
        VMX_CHECK(env, "27.2.3", VMCS(env, HOST_TR_SELECTOR) & 7)) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.3",
                  !VMCS(env, HOST_CS_SELECTOR) || !VMCS(env, HOST_TR_SELECTOR) ||
                  (!host64 && !VMCS(env, HOST_SS_SELECTOR)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.2.3",
                  !vmx_canonical(env, VMCS(env, HOST_FS_BASE)) ||
                  !vmx_canonical(env, VMCS(env, HOST_GS_BASE)) ||
                  !vmx_canonical(env, VMCS(env, HOST_GDTR_BASE)) ||
                  !vmx_canonical(env, VMCS(env, HOST_IDTR_BASE)) ||
                  !vmx_canonical(env, VMCS(env, HOST_TR_BASE)))) {
        return false;
    }
    /* 27.2.4: address-space size. */
    if (env->hflags & HF_LMA_MASK) {
        if (VMX_CHECK(env, "27.2.4", !host64)) {
            return false;
        }
    } else if (VMX_CHECK(env, "27.2.4",
                         host64 || (VMCS(env, VM_ENTRY_CONTROLS) & VMX_VM_ENTRY_IA32E_MODE))) {
        return false;
    }
    if (host64) {
        if (VMX_CHECK(env, "27.2.4",
                      !(cr4 & CR4_PAE_MASK) || !vmx_canonical(env, VMCS(env, HOST_RIP)))) {
            return false;
        }
    } else if (VMX_CHECK(env, "27.2.4",
                         (cr4 & CR4_PCIDE_MASK) || (VMCS(env, HOST_RIP) >> 32))) {
        return false;
    }
    return true;
}

/* ---- 27.3.1: guest state ----------------------------------------------- */

static bool limit_granularity_ok(uint32_t limit, uint32_t ar)
{
    bool g = ar & (1u << 15);

    if ((limit & 0xfff) != 0xfff && g) {
        return false;
    }
    if ((limit & 0xfff00000) && !g) {
        return false;
    }
    return true;
}

static bool check_guest_segments(CPUX86State *env, bool ia32e, bool unrestricted)
{
    bool pe = VMCS(env, GUEST_CR0) & CR0_PE_MASK;
    uint32_t cs_ar = VMCS(env, GUEST_CS_AR_BYTES);
    uint32_t ss_ar = VMCS(env, GUEST_SS_AR_BYTES);
    uint32_t tr_ar = VMCS(env, GUEST_TR_AR_BYTES);
    uint32_t ldtr_ar = VMCS(env, GUEST_LDTR_AR_BYTES);
    uint32_t cs_type = cs_ar & 0xf;
    static const int ar_id[] = {
        VMCS_ID_GUEST_ES_AR_BYTES, VMCS_ID_GUEST_CS_AR_BYTES, VMCS_ID_GUEST_SS_AR_BYTES,
        VMCS_ID_GUEST_DS_AR_BYTES, VMCS_ID_GUEST_FS_AR_BYTES, VMCS_ID_GUEST_GS_AR_BYTES,
    };
    static const int limit_id[] = {
        VMCS_ID_GUEST_ES_LIMIT, VMCS_ID_GUEST_CS_LIMIT, VMCS_ID_GUEST_SS_LIMIT,
        VMCS_ID_GUEST_DS_LIMIT, VMCS_ID_GUEST_FS_LIMIT, VMCS_ID_GUEST_GS_LIMIT,
    };
    int i;

    if (VMCS(env, GUEST_RFLAGS) & VM_MASK) {
        return true;    /* virtual-8086 guests: checked by 27.3.1.2's v8086 rules */
    }
    /* TR: usable, busy 32/64-bit TSS (64-bit only in IA-32e), S = 0, P = 1. */
    if (VMX_CHECK(env, "27.3.1.2",
                  (VMCS(env, GUEST_TR_SELECTOR) & 4) || (tr_ar & VMX_AR_UNUSABLE) ||
                  (tr_ar & 0x10) || !(tr_ar & 0x80) ||
                  !((tr_ar & 0xf) == 11 || (!ia32e && (tr_ar & 0xf) == 3)) ||
                  (tr_ar & 0xfffe0f00) ||
                  !limit_granularity_ok(VMCS(env, GUEST_TR_LIMIT), tr_ar) ||
                  !vmx_canonical(env, VMCS(env, GUEST_TR_BASE)))) {
        return false;
    }
    /* LDTR: if usable, TI = 0, type 2, S = 0, P = 1. */
    if (VMX_CHECK(env, "27.3.1.2",
                  !(ldtr_ar & VMX_AR_UNUSABLE) &&
                  ((VMCS(env, GUEST_LDTR_SELECTOR) & 4) || (ldtr_ar & 0xf) != 2 ||
                   (ldtr_ar & 0x10) || !(ldtr_ar & 0x80) || (ldtr_ar & 0xfffe0f00) ||
                   !limit_granularity_ok(VMCS(env, GUEST_LDTR_LIMIT), ldtr_ar) ||
                   !vmx_canonical(env, VMCS(env, GUEST_LDTR_BASE))))) {
        return false;
    }
    /* CS: accessed code segment (or, unrestricted, accessed RW data), S, P. */
    if (VMX_CHECK(env, "27.3.1.2",
                  (cs_ar & VMX_AR_UNUSABLE) || !(cs_type == 9 || cs_type == 11 ||
                                                  cs_type == 13 || cs_type == 15 ||
                                                  (unrestricted && cs_type == 3)) ||
                  !(cs_ar & 0x10) || !(cs_ar & 0x80))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.2", cs_type == 3 && ((cs_ar >> 5) & 3))) {
        return false;                       /* type 3: DPL 0 */
    }
    if (VMX_CHECK(env, "27.3.1.2", unrestricted && !pe && ((ss_ar >> 5) & 3))) {
        return false;                       /* real mode: SS.DPL 0 */
    }
    /* DPL rules: non-conforming CS.DPL = SS.DPL; conforming CS.DPL <= SS.DPL. */
    if (VMX_CHECK(env, "27.3.1.2",
                  (cs_type == 9 || cs_type == 11) && pe &&
                  ((cs_ar >> 5) & 3) != ((ss_ar >> 5) & 3))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.2",
                  (cs_type == 13 || cs_type == 15) && pe &&
                  ((cs_ar >> 5) & 3) > ((ss_ar >> 5) & 3))) {
        return false;
    }
    /* SS.RPL = CS.RPL (not checked for an unrestricted guest). */
    if (VMX_CHECK(env, "27.3.1.2",
                  !unrestricted &&
                  (VMCS(env, GUEST_SS_SELECTOR) & 3) != (VMCS(env, GUEST_CS_SELECTOR) & 3))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.2",
                  !(ss_ar & VMX_AR_UNUSABLE) && (ss_ar & 0xf) != 3 && (ss_ar & 0xf) != 7)) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.2", ia32e && (cs_ar & (1u << 13)) && (cs_ar & (1u << 14)))) {
        return false;                       /* L and D both set */
    }
    for (i = 0; i < ARRAY_SIZE(ar_id); i++) {
        uint32_t ar = env->vmx.vmcs.f[ar_id[i]];
        if (ar & VMX_AR_UNUSABLE) {
            continue;
        }
        if (VMX_CHECK(env, "27.3.1.2",
                      !(ar & 0x80) || (ar & 0xfffe0f00) ||
                      !limit_granularity_ok(env->vmx.vmcs.f[limit_id[i]], ar))) {
            return false;
        }
        /* DS/ES/FS/GS: S = 1, accessed, code segments readable. */
        if (VMX_CHECK(env, "27.3.1.2",
                      ar_id[i] != VMCS_ID_GUEST_CS_AR_BYTES &&
                      ar_id[i] != VMCS_ID_GUEST_SS_AR_BYTES &&
                      (!(ar & 0x10) || (!(ar & 1)) || ((ar & 8) && !(ar & 2))))) {
            return false;
        }
    }
    if (VMX_CHECK(env, "27.3.1.2",
                  !vmx_canonical(env, VMCS(env, GUEST_FS_BASE)) ||
                  !vmx_canonical(env, VMCS(env, GUEST_GS_BASE)) ||
                  (VMCS(env, GUEST_CS_BASE) >> 32) ||
                  (!(ss_ar & VMX_AR_UNUSABLE) && (VMCS(env, GUEST_SS_BASE) >> 32)) ||
                  (!(VMCS(env, GUEST_DS_AR_BYTES) & VMX_AR_UNUSABLE) &&
                   (VMCS(env, GUEST_DS_BASE) >> 32)) ||
                  (!(VMCS(env, GUEST_ES_AR_BYTES) & VMX_AR_UNUSABLE) &&
                   (VMCS(env, GUEST_ES_BASE) >> 32)))) {
        return false;
    }
    return true;
}

/*
 * 27.3.1.5, activity state: a supported one; HLT only with SS.DPL 0;
 * active when STI or MOV-SS blocking is on; an injected event must be one
 * the state lets through (HLT: external interrupt, NMI, #DB, #MC, MTF;
 * shutdown: NMI, #MC; wait-for-SIPI: none); no wait-for-SIPI with
 * "entry to SMM".
 */
static bool check_guest_activity_state(CPUX86State *env)
{
    uint32_t activity = VMCS(env, GUEST_ACTIVITY_STATE);
    uint32_t intr = VMCS(env, GUEST_INTERRUPTIBILITY_INFO);
    uint32_t inj = VMCS(env, VM_ENTRY_INTR_INFO_FIELD);
    uint32_t type = inj & VMX_INTR_TYPE_MASK, vector = inj & 0xff;

    if (VMX_CHECK(env, "27.3.1.5",
                  activity > VMX_ACTIVITY_WAIT_SIPI ||
                  (activity &&
                   !(vmx_cap_msr(env, MSR_IA32_VMX_MISC) & (1ull << (5 + activity)))))) {
        return false;
    }
    if (activity == VMX_ACTIVITY_ACTIVE) {
        return true;
    }
    if (VMX_CHECK(env, "27.3.1.5",
                  activity == VMX_ACTIVITY_HLT && ((VMCS(env, GUEST_SS_AR_BYTES) >> 5) & 3))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.5",
                  intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.5",
                  activity == VMX_ACTIVITY_WAIT_SIPI &&
                  (VMCS(env, VM_ENTRY_CONTROLS) & VMX_VM_ENTRY_SMM))) {
        return false;
    }
    if (!(inj & VMX_INTR_INFO_VALID)) {
        return true;
    }
    switch (activity) {
    case VMX_ACTIVITY_HLT:
        return !VMX_CHECK(env, "27.3.1.5",
                          !(type == VMX_INTR_TYPE_EXT_INTR || type == VMX_INTR_TYPE_NMI ||
                            type == VMX_INTR_TYPE_OTHER ||
                            (type == VMX_INTR_TYPE_HW_EXCEPTION &&
                             (vector == EXCP01_DB || vector == EXCP12_MCHK))));
    case VMX_ACTIVITY_SHUTDOWN:
        return !VMX_CHECK(env, "27.3.1.5",
                          !(type == VMX_INTR_TYPE_NMI ||
                            (type == VMX_INTR_TYPE_HW_EXCEPTION && vector == EXCP12_MCHK)));
    default:
        /* Wait-for-SIPI: nothing can be injected. */
        return !VMX_CHECK(env, "27.3.1.5",
                          activity == VMX_ACTIVITY_WAIT_SIPI && (inj & VMX_INTR_INFO_VALID));
    }
}

static bool check_guest_state(CPUX86State *env)
{
    uint32_t entry = VMCS(env, VM_ENTRY_CONTROLS);
    bool ia32e = entry & VMX_VM_ENTRY_IA32E_MODE;
    uint64_t cr0 = VMCS(env, GUEST_CR0), cr4 = VMCS(env, GUEST_CR4);
    uint64_t rflags = VMCS(env, GUEST_RFLAGS), rip = VMCS(env, GUEST_RIP);
    uint32_t intr = VMCS(env, GUEST_INTERRUPTIBILITY_INFO);
    uint32_t inj = VMCS(env, VM_ENTRY_INTR_INFO_FIELD);
    bool unrestricted = vmx_unrestricted_guest(env);

    /* 27.3.1.1: control registers, debug registers and MSRs. */
    if (VMX_CHECK(env, "27.3.1.1",
                  !vmx_cr_fixed_ok(cr0, vmx_cap_msr(env, MSR_IA32_VMX_CR0_FIXED0) &
                                        ~(unrestricted ? CR0_PE_MASK | CR0_PG_MASK : 0),
                                   vmx_cap_msr(env, MSR_IA32_VMX_CR0_FIXED1)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.1",
                  !vmx_cr_fixed_ok(cr4, vmx_cap_msr(env, MSR_IA32_VMX_CR4_FIXED0),
                                   vmx_cap_msr(env, MSR_IA32_VMX_CR4_FIXED1)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.1", (cr0 & CR0_PG_MASK) && !(cr0 & CR0_PE_MASK))) {
        return false;                       /* PG without PE, even unrestricted */
    }
    if (VMX_CHECK(env, "27.3.1.1",
                  ia32e ? !((cr0 & CR0_PG_MASK) && (cr4 & CR4_PAE_MASK)) :
                          (cr4 & CR4_PCIDE_MASK))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.1", !vmx_phys_ok(env, VMCS(env, GUEST_CR3)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.1",
                  (entry & VMX_VM_ENTRY_LOAD_DEBUG_CONTROLS) && (VMCS(env, GUEST_DR7) >> 32))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.1",
                  !vmx_canonical(env, VMCS(env, GUEST_SYSENTER_ESP)) ||
                  !vmx_canonical(env, VMCS(env, GUEST_SYSENTER_EIP)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.1",
                  (entry & VMX_VM_ENTRY_LOAD_IA32_PAT) && !pat_valid(VMCS(env, GUEST_IA32_PAT)))) {
        return false;
    }
    if (entry & VMX_VM_ENTRY_LOAD_IA32_EFER) {
        uint64_t efer = VMCS(env, GUEST_IA32_EFER);
        if (VMX_CHECK(env, "27.3.1.1",
                      (efer & ~(MSR_EFER_SCE | MSR_EFER_LME | MSR_EFER_LMA | MSR_EFER_NXE)) ||
                      !!(efer & MSR_EFER_LMA) != ia32e ||
                      ((cr0 & CR0_PG_MASK) && !!(efer & MSR_EFER_LME) != ia32e))) {
            return false;
        }
    }

    /* 27.3.1.2: segment registers. */
    if (VMX_CHECK(env, "27.3.1.2", !check_guest_segments(env, ia32e, unrestricted))) {
        return false;
    }

    /* 27.3.1.3: descriptor-table registers. */
    if (VMX_CHECK(env, "27.3.1.3",
                  !vmx_canonical(env, VMCS(env, GUEST_GDTR_BASE)) ||
                  !vmx_canonical(env, VMCS(env, GUEST_IDTR_BASE)) ||
                  (VMCS(env, GUEST_GDTR_LIMIT) >> 16) || (VMCS(env, GUEST_IDTR_LIMIT) >> 16))) {
        return false;
    }

    /* 27.3.1.4: RIP and RFLAGS. */
    if (!ia32e || !(VMCS(env, GUEST_CS_AR_BYTES) & (1u << 13))) {
        if (VMX_CHECK(env, "27.3.1.4", rip >> 32)) {
            return false;
        }
    } else if (VMX_CHECK(env, "27.3.1.4", !vmx_canonical(env, rip))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.4", (rflags & ~0x3f7fd7ull) || !(rflags & 2))) {
        return false;                       /* reserved bits 63:22, 15, 5, 3; bit 1 */
    }
    if (VMX_CHECK(env, "27.3.1.4", (rflags & VM_MASK) && (ia32e || !(cr0 & CR0_PE_MASK)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.4",
                  (inj & VMX_INTR_INFO_VALID) &&
                  (inj & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_EXT_INTR && !(rflags & IF_MASK))) {
        return false;
    }

    /* 27.3.1.5: non-register state. */
    if (VMX_CHECK(env, "27.3.1.5", !check_guest_activity_state(env))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.5",
                  (intr & ~0x1full) ||
                  ((intr & VMX_INTERRUPTIBILITY_STI) && (intr & VMX_INTERRUPTIBILITY_MOV_SS)) ||
                  (!(rflags & IF_MASK) && (intr & VMX_INTERRUPTIBILITY_STI)) ||
                  (intr & VMX_INTERRUPTIBILITY_SMI))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.5",
                  (inj & VMX_INTR_INFO_VALID) &&
                  (inj & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_EXT_INTR &&
                  (intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS)))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.5",
                  (inj & VMX_INTR_INFO_VALID) &&
                  (inj & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_NMI &&
                  (intr & VMX_INTERRUPTIBILITY_MOV_SS))) {
        return false;
    }
    /* A virtual NMI cannot be injected while virtual-NMI blocking is on. */
    if (VMX_CHECK(env, "27.3.1.5",
                  (VMCS(env, PIN_BASED_VM_EXEC_CONTROL) & VMX_PIN_BASED_VIRTUAL_NMIS) &&
                  (inj & VMX_INTR_INFO_VALID) &&
                  (inj & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_NMI &&
                  (intr & VMX_INTERRUPTIBILITY_NMI))) {
        return false;
    }
    if (VMX_CHECK(env, "27.3.1.5", VMCS(env, GUEST_PENDING_DBG_EXCEPTIONS) & ~0x1500full)) {
        return false;                       /* bits 3:0, 12, 14, 16 only */
    }
    if (VMX_CHECK(env, "epml.md 10", vmx_epml_on(env) && !vmx_epml_guest_state_valid(env))) {
        return false;                   /* docs/epml.md section 10 */
    }
    return true;
}

/*
 * 27.3.1.5, VMCS link pointer: unless it is FFFFFFFF_FFFFFFFFH, 4 KiB
 * aligned, within the physical-address width, and the region it
 * references has our revision in bits 30:0 and in bit 31 (shadow-VMCS
 * indicator) the setting of "VMCS shadowing".  A failure is a VM-entry
 * failure with qualification 4 (27.8).
 */
static bool check_guest_link_pointer(CPUX86State *env)
{
    uint64_t link = VMCS(env, VMCS_LINK_POINTER);
    bool shadowing = vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_SHADOW_VMCS;
    uint32_t rev;

    if (link == ~0ull) {
        return true;
    }
    if (VMX_CHECK(env, "27.3.1.5", (link & 0xfff) || !vmx_phys_ok(env, link))) {
        return false;
    }
    rev = x86_ldl_phys(env_cpu(env), link);
    return !VMX_CHECK(env, "27.3.1.5",
                      (rev & ~VMCS_REV_SHADOW) != VMX_VMCS_REVISION ||
                      !!(rev & VMCS_REV_SHADOW) != shadowing);
}

/*
 * 27.3.1.6: with PAE paging (CR0.PG, CR4.PAE, not IA-32e mode) the four
 * PDPTEs come from the VMCS (EPT on) or from the table CR3 points to; a
 * present one with a reserved bit set (63:MAXPHYADDR, 8:5, 2:1) fails the
 * entry with exit qualification 2.
 */
static bool check_guest_pdptes(CPUX86State *env)
{
    uint64_t cr0 = VMCS(env, GUEST_CR0), cr4 = VMCS(env, GUEST_CR4);
    uint64_t rsvd = (~0ull << env_archcpu(env)->phys_bits) | 0x1e6ull;
    bool ept = vmx_ept_enabled_in_vmcs(env);
    int i;

    if (!(cr0 & CR0_PG_MASK) || !(cr4 & CR4_PAE_MASK) ||
        (VMCS(env, VM_ENTRY_CONTROLS) & VMX_VM_ENTRY_IA32E_MODE)) {
        return true;
    }
    for (i = 0; i < 4; i++) {
        uint64_t pdpte = ept ? env->vmx.vmcs.f[VMCS_ID_GUEST_PDPTE0 + i] :
                         x86_ldq_phys(env_cpu(env),
                                      (VMCS(env, GUEST_CR3) & ~0x1full) + 8 * i);

        if (VMX_CHECK(env, "27.3.1.6", (pdpte & PG_PRESENT_MASK) && (pdpte & rsvd))) {
            qemu_log_mask(LOG_GUEST_ERROR, "qemu-pml: VM entry: PDPTE%d 0x%" PRIx64
                          " has reserved bits (%s)\n", i, pdpte, ept ? "VMCS" : "CR3");
            return false;
        }
    }
    return true;
}

/* ---- 27.3.2: loading guest state --------------------------------------- */

/*
 * 27.3.2.4: with EPT and PAE paging the PDPTEs come from the VMCS fields
 * and TCG's walker uses them (vmx_pae_pdpte(), patch 0026) instead of
 * the table at CR3, until the guest writes CR0, CR3 or CR4.
 */
static void load_guest_pdptes(CPUX86State *env)
{
    int i;

    env->vmx.ept.pdptes_loaded = vmx_ept_enabled_in_vmcs(env) &&
        (VMCS(env, GUEST_CR0) & CR0_PG_MASK) && (VMCS(env, GUEST_CR4) & CR4_PAE_MASK) &&
        !(VMCS(env, VM_ENTRY_CONTROLS) & VMX_VM_ENTRY_IA32E_MODE);
    for (i = 0; i < 4; i++) {
        env->vmx.ept.pdpte[i] = env->vmx.ept.pdptes_loaded ?
                            env->vmx.vmcs.f[VMCS_ID_GUEST_PDPTE0 + i] : 0;
    }
}

static void load_guest_seg(CPUX86State *env, X86Seg seg, int sel_id, int base_id,
                           int limit_id, int ar_id)
{
    cpu_x86_load_seg_cache(env, seg, env->vmx.vmcs.f[sel_id], env->vmx.vmcs.f[base_id],
                           env->vmx.vmcs.f[limit_id],
                           vmx_ar_to_flags(env->vmx.vmcs.f[ar_id]));
}

#define LOAD_GUEST_SEG(env, seg, NAME) \
    load_guest_seg(env, seg, VMCS_ID_GUEST_##NAME##_SELECTOR, VMCS_ID_GUEST_##NAME##_BASE, \
                   VMCS_ID_GUEST_##NAME##_LIMIT, VMCS_ID_GUEST_##NAME##_AR_BYTES)

static void load_guest_state(CPUX86State *env)
{
    uint32_t entry = VMCS(env, VM_ENTRY_CONTROLS);
    uint32_t intr = VMCS(env, GUEST_INTERRUPTIBILITY_INFO);
    uint64_t efer = env->efer;

    /* EFER first, so CR0.PG and CS.L produce the right hflags. */
    if (entry & VMX_VM_ENTRY_LOAD_IA32_EFER) {
        efer = VMCS(env, GUEST_IA32_EFER);
    } else if (entry & VMX_VM_ENTRY_IA32E_MODE) {
        efer |= MSR_EFER_LMA | MSR_EFER_LME;
    } else {
        efer &= ~(MSR_EFER_LMA | MSR_EFER_LME);
    }
    vmx_load_paging_state(env, VMCS(env, GUEST_CR0), VMCS(env, GUEST_CR3),
                          VMCS(env, GUEST_CR4), efer);
    if (entry & VMX_VM_ENTRY_LOAD_DEBUG_CONTROLS) {
        cpu_x86_update_dr7(env, VMCS(env, GUEST_DR7));
    }
    if (entry & VMX_VM_ENTRY_LOAD_IA32_PAT) {
        env->pat = VMCS(env, GUEST_IA32_PAT);
    }
    env->sysenter_cs = VMCS(env, GUEST_SYSENTER_CS);
    env->sysenter_esp = VMCS(env, GUEST_SYSENTER_ESP);
    env->sysenter_eip = VMCS(env, GUEST_SYSENTER_EIP);

    LOAD_GUEST_SEG(env, R_ES, ES);
    LOAD_GUEST_SEG(env, R_CS, CS);
    LOAD_GUEST_SEG(env, R_SS, SS);
    LOAD_GUEST_SEG(env, R_DS, DS);
    LOAD_GUEST_SEG(env, R_FS, FS);
    LOAD_GUEST_SEG(env, R_GS, GS);
    env->ldt.selector = VMCS(env, GUEST_LDTR_SELECTOR);
    env->ldt.base = VMCS(env, GUEST_LDTR_BASE);
    env->ldt.limit = VMCS(env, GUEST_LDTR_LIMIT);
    env->ldt.flags = vmx_ar_to_flags(VMCS(env, GUEST_LDTR_AR_BYTES));
    env->tr.selector = VMCS(env, GUEST_TR_SELECTOR);
    env->tr.base = VMCS(env, GUEST_TR_BASE);
    env->tr.limit = VMCS(env, GUEST_TR_LIMIT);
    env->tr.flags = vmx_ar_to_flags(VMCS(env, GUEST_TR_AR_BYTES));
    env->gdt.base = VMCS(env, GUEST_GDTR_BASE);
    env->gdt.limit = VMCS(env, GUEST_GDTR_LIMIT);
    env->idt.base = VMCS(env, GUEST_IDTR_BASE);
    env->idt.limit = VMCS(env, GUEST_IDTR_LIMIT);

    env->regs[R_ESP] = VMCS(env, GUEST_RSP);
    env->eip = VMCS(env, GUEST_RIP);
    vmx_load_rflags(env, VMCS(env, GUEST_RFLAGS));

    if (intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS)) {
        env->hflags |= HF_INHIBIT_IRQ_MASK;
    } else {
        env->hflags &= ~HF_INHIBIT_IRQ_MASK;
    }
    /*
     * 27.3.2.5: bit 3 is blocking by NMI, or virtual-NMI blocking with
     * "virtual NMIs" (see vmx_nmi_blocked() for which blocks what).
     */
    env->vmx.ev.nmi_blocked = intr & VMX_INTERRUPTIBILITY_NMI;
    if (intr & VMX_INTERRUPTIBILITY_NMI) {
        env->hflags2 |= HF2_NMI_MASK;
    } else {
        env->hflags2 &= ~HF2_NMI_MASK;
    }
}

/* 27.4: the VM-entry MSR-load list; returns the failing entry (1-based) or 0. */
static uint32_t load_msr_list(CPUX86State *env, uint64_t addr, uint32_t count)
{
    CPUState *cs = env_cpu(env);
    uint32_t i;

    for (i = 0; i < count; i++) {
        uint32_t index = x86_ldl_phys(cs, addr + 16 * i);
        uint32_t reserved = x86_ldl_phys(cs, addr + 16 * i + 4);
        uint64_t val = x86_ldq_phys(cs, addr + 16 * i + 8);

        if (VMX_CHECK(env, "27.4", reserved) ||
            VMX_CHECK(env, "27.4", !vmx_load_msr(env, index, val))) {
            return i + 1;
        }
    }
    return 0;
}

/* 27.6: inject the event in the VM-entry interruption-information field. */
static void inject_event(CPUX86State *env)
{
    uint32_t info = VMCS(env, VM_ENTRY_INTR_INFO_FIELD);
    uint32_t type = info & VMX_INTR_TYPE_MASK;
    int vector = info & 0xff;
    int err = (info & VMX_INTR_INFO_DELIVER_CODE) ?
              (int)VMCS(env, VM_ENTRY_EXCEPTION_ERROR_CODE) : 0;
    CPUState *cs = env_cpu(env);

    if (!(info & VMX_INTR_INFO_VALID)) {
        return;
    }
    /* 27.6.1: the valid bit is cleared on entry, so it reads 0 on exit. */
    VMCS(env, VM_ENTRY_INTR_INFO_FIELD) = info & ~VMX_INTR_INFO_VALID;
    if (type == VMX_INTR_TYPE_OTHER) {
        /* 27.6.2: a pending MTF VM exit, before the first instruction. */
        vmx_events_inject_mtf(env);
        return;
    }
    env->error_code = err;
    env->exception_is_int = type == VMX_INTR_TYPE_SW_INTR ||
                            type == VMX_INTR_TYPE_PRIV_SW_EXCEPTION ||
                            type == VMX_INTR_TYPE_SW_EXCEPTION;
    env->exception_next_eip = env->exception_is_int ?
                              env->eip + VMCS(env, VM_ENTRY_INSTRUCTION_LEN) : -1;
    cs->exception_index = vector;
    if (type == VMX_INTR_TYPE_EXT_INTR) {
        /* Delivered now, in guest context, as a hardware interrupt. */
        do_interrupt_x86_hardirq(env, vector, 1);
        cs->exception_index = -1;
        cpu_loop_exit(cs);
    }
    if (type == VMX_INTR_TYPE_NMI) {
        env->hflags2 |= HF2_NMI_MASK;
    }
    /* Delivered through the guest IDT by the main loop, in guest context. */
    cpu_loop_exit(cs);
}

/*
 * 27.7.3: with no event injected, no blocking by MOV SS and an active
 * guest, pending debug exceptions (B3:0, BS) become a #DB trap before the
 * first guest instruction: a VM exit if the exception bitmap says so
 * (DR6 untouched, the bits in the exit qualification), else delivered
 * through the guest IDT with DR6 updated.
 */
/* 27.7.3: pending debug exceptions in the guest-state area. */
static void deliver_pending_dbg(CPUX86State *env)
{
    uint64_t pending = VMCS(env, GUEST_PENDING_DBG_EXCEPTIONS) & 0x400full;

    if (pending && (VMCS(env, GUEST_INTERRUPTIBILITY_INFO) & VMX_INTERRUPTIBILITY_MOV_SS)) {
        /*
         * Blocked by MOV SS: they are delivered after the first guest
         * instruction (vmx-events.c), or join a #DB it raises
         * (vmx_debug_exception); a VM exit before saves them again.
         */
        env->vmx.ev.pending_dbg = pending;
        vmx_events_dbg_after_insn(env);
        return;
    }
    if (!pending || (VMCS(env, VM_ENTRY_INTR_INFO_FIELD) & VMX_INTR_INFO_VALID) ||
        VMCS(env, GUEST_ACTIVITY_STATE) != VMX_ACTIVITY_ACTIVE) {
        return;
    }
    vmx_raise_pending_dbg(env, pending);
}

void vmx_vm_entry(CPUX86State *env, bool resume, uintptr_t ra)
{
    CPUState *cs = env_cpu(env);
    uint32_t failed_msr;

    vmx_entry_checks_begin(env);
    if (!check_controls(env)) {
        vmx_entry_fail_report(env, VMX_ENTRY_FAIL_VMFAIL, VMXERR_ENTRY_INVALID_CONTROL, 0);
        vmx_fail_valid(env, VMXERR_ENTRY_INVALID_CONTROL);
        return;
    }
    if (!check_host_state(env)) {
        vmx_entry_fail_report(env, VMX_ENTRY_FAIL_VMFAIL, VMXERR_ENTRY_INVALID_HOST_STATE, 0);
        vmx_fail_valid(env, VMXERR_ENTRY_INVALID_HOST_STATE);
        return;
    }
    /* From here the instruction has "succeeded"; RIP moves on in the host. */
    if (!check_guest_state(env)) {
        vmx_entry_failure(env, VMX_EXIT_INVALID_GUEST_STATE, 0, ra);
    }
    if (!check_guest_link_pointer(env)) {
        vmx_entry_failure(env, VMX_EXIT_INVALID_GUEST_STATE, 4, ra);  /* VMCS link pointer */
    }
    if (!check_guest_pdptes(env)) {
        vmx_entry_failure(env, VMX_EXIT_INVALID_GUEST_STATE, 2, ra);  /* PDPTE loading */
    }
    trace_vmx_vmentry(cs->cpu_index, resume, VMCS(env, GUEST_RIP), VMCS(env, GUEST_CR3),
                      env->vmx.current_vmcs);

    /*
     * No cpu_restore_state() here: the translator stored RIP and the
     * flags state before the VMLAUNCH/VMRESUME helper (vmx-translate.c.inc),
     * and the rest comes from the VMCS.  Looking up the translation block
     * cost about a quarter of an exit-and-entry round trip.
     */
    vmx_tlb_entry_begin(env);
    load_guest_state(env);
    load_guest_pdptes(env);
    env->vmx.non_root = true;
    env->hflags |= HF_GUEST_MASK;
    if (vmx_ept_enabled(env)) {
        /* EPT is TCG's stage 2: MMU_NESTED_IDX fills go to vmx-ept.c. */
        env->hflags2 |= HF2_NPT_MASK;
    }
    env->tsc_offset = (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_USE_TSC_OFFSETING) ?
                      VMCS(env, TSC_OFFSET) : 0;
    env->vmx.exit.idt_vectoring = 0;
    vmx_tlb_entry_end(env);

    failed_msr = load_msr_list(env, VMCS(env, VM_ENTRY_MSR_LOAD_ADDR),
                               VMCS(env, VM_ENTRY_MSR_LOAD_COUNT));
    if (failed_msr) {
        vmx_entry_failure(env, VMX_EXIT_MSR_LOADING, failed_msr, 0);
    }
    env->vmx.launch_state = VMCS_LAUNCH_LAUNCHED;
    vmx_events_entry(env);
    vmx_apic_entry(env);
    if (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_VIRTUAL_INTR_PENDING) {
        /* Checked between translation blocks, like an interrupt request. */
        qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_VIRQ);
    }
    deliver_pending_dbg(env);
    if (VMCS(env, GUEST_ACTIVITY_STATE) == VMX_ACTIVITY_WAIT_SIPI) {
        vmx_enter_wait_sipi(env);       /* a latched INIT stays blocked */
    }
    vmx_release_init(env);              /* a latched INIT: VM exit next */
    if (VMCS(env, GUEST_ACTIVITY_STATE) == VMX_ACTIVITY_HLT &&
        !(VMCS(env, VM_ENTRY_INTR_INFO_FIELD) & VMX_INTR_INFO_VALID)) {
        env->vmx.ev.guest_hlt = true;
        cs->halted = 1;
        cs->exception_index = EXCP_HLT;
        cpu_loop_exit(cs);
    }
    inject_event(env);
    cpu_loop_exit(cs);
}
