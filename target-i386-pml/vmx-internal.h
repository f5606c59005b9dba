/*
 * qemu-pml: definitions shared by the VMX emulation files.
 */
#ifndef PML_VMX_INTERNAL_H
#define PML_VMX_INTERNAL_H

#include "cpu.h"
#include "vmcs-fields.h"
#include "vmx-caps.h"

/*
 * Our VMCS region layout (implementation-specific, SDM Vol. 3C 25.2):
 * the architectural revision identifier and abort indicator, then the
 * launch state, then one 64-bit slot per field in vmcs_fields[] order.
 */
#define VMX_VMCS_REVISION       0x504d4c01u     /* "PML" 01; bit 31 clear */
#define VMCS_REV_SHADOW         0x80000000u     /* shadow-VMCS indicator (24.2) */
#define VMX_REGION_SIZE         4096
#define VMCS_OFF_REVISION       0
#define VMCS_OFF_ABORT          4
#define VMCS_OFF_LAUNCH         8
#define VMCS_OFF_FIELDS         16

#define VMX_MSR_IA32_DEBUGCTL   0x1d9   /* not among upstream cpu.h MSRs */
QEMU_BUILD_BUG_ON(VMCS_OFF_FIELDS + 8 * VMCS_NR_FIELDS > VMX_REGION_SIZE);

/* VM-instruction error numbers (SDM Vol. 3C 31.4). */
enum vmx_insn_error {
    VMXERR_VMCALL_IN_ROOT = 1,
    VMXERR_VMCLEAR_INVALID_ADDR = 2,
    VMXERR_VMCLEAR_VMXON_PTR = 3,
    VMXERR_VMLAUNCH_NONCLEAR = 4,
    VMXERR_VMRESUME_NONLAUNCHED = 5,
    VMXERR_VMRESUME_AFTER_VMXOFF = 6,
    VMXERR_ENTRY_INVALID_CONTROL = 7,
    VMXERR_ENTRY_INVALID_HOST_STATE = 8,
    VMXERR_VMPTRLD_INVALID_ADDR = 9,
    VMXERR_VMPTRLD_VMXON_PTR = 10,
    VMXERR_VMPTRLD_BAD_REVISION = 11,
    VMXERR_UNSUPPORTED_COMPONENT = 12,
    VMXERR_VMWRITE_READ_ONLY = 13,
    VMXERR_VMXON_IN_ROOT = 15,
    VMXERR_ENTRY_MOV_SS_BLOCKING = 26,
    VMXERR_INVALID_INVEPT_INVVPID = 28,
};

/* Basic exit reasons (SDM Vol. 3D, Appendix C). */
enum vmx_exit_reason {
    VMX_EXIT_EXCEPTION_NMI = 0,
    VMX_EXIT_EXTERNAL_INTERRUPT = 1,
    VMX_EXIT_TRIPLE_FAULT = 2,
    VMX_EXIT_INIT = 3,
    VMX_EXIT_SIPI = 4,
    VMX_EXIT_INTERRUPT_WINDOW = 7,
    VMX_EXIT_NMI_WINDOW = 8,
    VMX_EXIT_TASK_SWITCH = 9,
    VMX_EXIT_CPUID = 10,
    VMX_EXIT_GETSEC = 11,
    VMX_EXIT_HLT = 12,
    VMX_EXIT_INVD = 13,
    VMX_EXIT_INVLPG = 14,
    VMX_EXIT_RDPMC = 15,
    VMX_EXIT_RDTSC = 16,
    VMX_EXIT_RSM = 17,
    VMX_EXIT_VMCALL = 18,
    VMX_EXIT_VMCLEAR = 19,
    VMX_EXIT_VMLAUNCH = 20,
    VMX_EXIT_VMPTRLD = 21,
    VMX_EXIT_VMPTRST = 22,
    VMX_EXIT_VMREAD = 23,
    VMX_EXIT_VMRESUME = 24,
    VMX_EXIT_VMWRITE = 25,
    VMX_EXIT_VMXOFF = 26,
    VMX_EXIT_VMXON = 27,
    VMX_EXIT_CR_ACCESS = 28,
    VMX_EXIT_DR_ACCESS = 29,
    VMX_EXIT_IO = 30,
    VMX_EXIT_RDMSR = 31,
    VMX_EXIT_WRMSR = 32,
    VMX_EXIT_INVALID_GUEST_STATE = 33,
    VMX_EXIT_MSR_LOADING = 34,
    VMX_EXIT_MWAIT = 36,
    VMX_EXIT_MONITOR_TRAP = 37,
    VMX_EXIT_MONITOR = 39,
    VMX_EXIT_PAUSE = 40,
    VMX_EXIT_MCE_DURING_ENTRY = 41,
    VMX_EXIT_TPR_BELOW_THRESHOLD = 43,
    VMX_EXIT_APIC_ACCESS = 44,
    VMX_EXIT_EOI_INDUCED = 45,
    VMX_EXIT_GDTR_IDTR = 46,
    VMX_EXIT_LDTR_TR = 47,
    VMX_EXIT_EPT_VIOLATION = 48,
    VMX_EXIT_EPT_MISCONFIG = 49,
    VMX_EXIT_INVEPT = 50,
    VMX_EXIT_RDTSCP = 51,
    VMX_EXIT_PREEMPTION_TIMER = 52,
    VMX_EXIT_INVVPID = 53,
    VMX_EXIT_WBINVD = 54,
    VMX_EXIT_XSETBV = 55,
    VMX_EXIT_APIC_WRITE = 56,
    VMX_EXIT_RDRAND = 57,
    VMX_EXIT_INVPCID = 58,
    VMX_EXIT_RDSEED = 61,
    VMX_EXIT_PML_FULL = 62,
    VMX_EXIT_XSAVES = 63,
    VMX_EXIT_XRSTORS = 64,
};

#define VMX_EXIT_REASON_ENTRY_FAILURE   (1u << 31)

/* Interruption-information format (24.8.3, 24.9.2). */
#define VMX_INTR_INFO_VALID             (1u << 31)
#define VMX_INTR_INFO_DELIVER_CODE      (1u << 11)
#define VMX_INTR_INFO_NMI_UNBLOCKING    (1u << 12)
#define VMX_INTR_TYPE_EXT_INTR          (0u << 8)
#define VMX_INTR_TYPE_NMI               (2u << 8)
#define VMX_INTR_TYPE_HW_EXCEPTION      (3u << 8)
#define VMX_INTR_TYPE_SW_INTR           (4u << 8)
#define VMX_INTR_TYPE_PRIV_SW_EXCEPTION (5u << 8)
#define VMX_INTR_TYPE_SW_EXCEPTION      (6u << 8)
#define VMX_INTR_TYPE_OTHER             (7u << 8)
#define VMX_INTR_TYPE_MASK              (7u << 8)

/* Guest interruptibility state (24.4.2). */
#define VMX_INTERRUPTIBILITY_STI        (1u << 0)
#define VMX_INTERRUPTIBILITY_MOV_SS     (1u << 1)
#define VMX_INTERRUPTIBILITY_SMI        (1u << 2)
#define VMX_INTERRUPTIBILITY_NMI        (1u << 3)

/* Guest activity state (24.4.2). */
#define VMX_ACTIVITY_ACTIVE             0
#define VMX_ACTIVITY_HLT                1
#define VMX_ACTIVITY_SHUTDOWN           2
#define VMX_ACTIVITY_WAIT_SIPI          3

/* env->vmx.xlat.info: an RDTSC intercept that is really RDTSCP. */
#define VMX_INTERCEPT_RDTSCP            (1u << 16)

/* Shorthands for the cached current VMCS. */
#define VMCS(env, name)     ((env)->vmx.vmcs.f[VMCS_ID_##name])

/*
 * Segment access rights: the VMCS format (24.4.1: type 3:0, S 4, DPL 6:5,
 * P 7, AVL 12, L 13, D/B 14, G 15, unusable 16) against QEMU's descriptor
 * flags (the high dword of a descriptor, bits 8..23).
 */
#define VMX_AR_UNUSABLE     (1u << 16)
#define VMX_AR_TYPE_ACCESSED (1u << 0)
#define VMX_AR_S            (1u << 4)

static inline uint32_t vmx_ar_to_flags(uint32_t ar)
{
    uint32_t flags = ((ar & 0xff) << 8) | ((ar & 0xf000) << 8);

    return (ar & VMX_AR_UNUSABLE) ? flags & ~DESC_P_MASK : flags;
}

static inline uint32_t vmx_flags_to_ar(uint32_t flags)
{
    uint32_t ar = ((flags >> 8) & 0xff) | ((flags >> 8) & 0xf000);

    return (flags & DESC_P_MASK) ? ar : ar | VMX_AR_UNUSABLE;
}

/*
 * Withdraw interrupt requests @mask.  cpu_reset_interrupt() takes QEMU's
 * big lock; every VM exit withdraws requests that are almost never set,
 * so look first.  A request another thread raises after the look is one
 * raised after the withdrawal, as with the lock.
 */
static inline void vmx_withdraw_request(CPUState *cs, int mask)
{
    if (qatomic_read(&cs->interrupt_request) & mask) {
        cpu_reset_interrupt(cs, mask);
    }
}

/*
 * The control-field capability of this vCPU, as its MSRs report it.
 * Computed once per MSR (vmx_cap_msr_compute()); VM entry's checks read
 * a dozen of them, so the cached case is inline.
 */
uint64_t vmx_cap_msr_compute(CPUX86State *env, uint32_t index);
static inline uint64_t vmx_cap_msr(CPUX86State *env, uint32_t index)
{
    uint32_t n = index - MSR_IA32_VMX_BASIC;

    if (likely(n < ARRAY_SIZE(env->vmx.cap) && (env->vmx.cap_known & (1u << n)))) {
        return env->vmx.cap[n];
    }
    return vmx_cap_msr_compute(env, index);
}
bool vmx_cpu_has_field(CPUX86State *env, int field_id);

/* The secondary controls of the current VMCS; 0 unless activated (24.6.2). */
static inline uint32_t vmx_secondary_ctls(CPUX86State *env)
{
    return (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_ACTIVATE_SECONDARY_CONTROLS) ?
           VMCS(env, SECONDARY_VM_EXEC_CONTROL) : 0;
}

static inline bool vmx_unrestricted_guest(CPUX86State *env)
{
    return vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_UNRESTRICTED_GUEST;
}

/* "enable EPT" in the current VMCS (whether or not in non-root operation). */
static inline bool vmx_ept_enabled_in_vmcs(CPUX86State *env)
{
    return vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_ENABLE_EPT;
}

/* EPTP bit 6: EPT accessed/dirty flags (24.6.11). */
#define EPTP_AD         (1ull << 6)

/* PML logs dirty 0->1 transitions: "enable PML" with EPT A/D (29.3.6). */
static inline bool vmx_pml_enabled(CPUX86State *env)
{
    return (vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_ENABLE_PML) &&
           (VMCS(env, EPT_POINTER) & EPTP_AD);
}

/*
 * ---- vmx-base.c: helpers shared by the feature files ---------------------
 * The bottom layer: it calls no other file here but the leaves
 * (vmcs-fields.c, vmx-caps.c, vmx-stats.c, vmx-mutate.c, vmx-tlb.c);
 * tests/check-layering.py checks it.
 */

/* Canonical for the processor's linear-address width (5-level paging). */
static inline bool vmx_canonical(CPUX86State *env, uint64_t addr)
{
    int bits = (env->features[FEAT_7_0_ECX] & CPUID_7_0_ECX_LA57) ? 57 : 48;

    return (int64_t)(addr << (64 - bits)) >> (64 - bits) == (int64_t)addr;
}
/* Host pointer to L1-physical @addr, or NULL if it is not RAM. */
void *vmx_phys_host(CPUX86State *env, hwaddr addr, int size, MMUAccessType access);
void *vmx_phys_host_walk(CPUX86State *env, hwaddr addr, int size, MMUAccessType access);
/* Load CR0/CR3/CR4/EFER as one step (VM entry and VM exit). */
void vmx_load_paging_state(CPUX86State *env, uint64_t cr0, uint64_t cr3,
                           uint64_t cr4, uint64_t efer);
/* Load RFLAGS whole at VM entry and VM exit. */
void vmx_load_rflags(CPUX86State *env, uint64_t rflags);
/* One entry of a VM-entry or VM-exit MSR-load list; false if refused. */
bool vmx_load_msr(CPUX86State *env, uint32_t index, uint64_t val);
/* INT3/INTO (one byte) are software exceptions; INT n is a software interrupt. */
bool vmx_sw_exception(int vector, unsigned insn_len);

/*
 * Naming the VM-entry check that failed (chapter 27).  Every check of VM
 * entry is written as
 *
 *     if (VMX_CHECK(env, "<SDM section>", <condition that is a failure>)) {
 *         return false;
 *     }
 *
 * VMX_CHECK() is the condition; when it holds, the section and the text of
 * the condition are noted as the check that failed this entry, unless an
 * earlier (inner) check of the same entry was noted first.  A function
 * that is itself a check (it notes its own rule) is wrapped the same way
 * by its caller, so every "return false" of a check names a rule.  The
 * entry code then reports the outcome with vmx_entry_fail_report(): trace
 * event vmx_entry_check_failed, -d guest_errors, and env->vmx.check.fail
 * for QMP query-vmx-last-failure.
 */
#define VMX_CHECK(env, rule, cond) \
    (unlikely(cond) ? vmx_entry_check_failed(env, rule, #cond) : false)

/* Note @rule and @expr as the failed check of this entry; returns true. */
bool vmx_entry_check_failed(CPUX86State *env, const char *rule, const char *expr);
/* A VMLAUNCH/VMRESUME starts: no check has failed yet. */
void vmx_entry_checks_begin(CPUX86State *env);
/*
 * The entry failed (kind, VM-instruction error or exit reason, exit
 * qualification): record it with the check noted, and trace it.
 */
void vmx_entry_fail_report(CPUX86State *env, enum vmx_entry_fail_kind kind,
                           uint32_t number, uint64_t qual);

/* VMX instruction results (31.2): VMsucceed, VMfailInvalid, VMfailValid(n), VMfail(n). */
void vmx_vmsucceed(CPUX86State *env);
void vmx_vmfail_invalid(CPUX86State *env);
void vmx_fail_valid(CPUX86State *env, enum vmx_insn_error err);
void vmx_vmfail(CPUX86State *env, enum vmx_insn_error err);

/*
 * Request a VM exit: record it in env->vmx and leave the CPU loop;
 * vmx_do_exit() (vmx-exit.c) delivers it at EXCP_VMEXIT.
 */
G_NORETURN void vmx_vmexit(CPUX86State *env, uint32_t reason, uint64_t qual,
                           uintptr_t ra);
G_NORETURN void vmx_vmexit_len(CPUX86State *env, uint32_t reason, uint64_t qual,
                               uint32_t insn_len, uintptr_t ra);
G_NORETURN void vmx_operand_exit(CPUX86State *env, uint32_t reason, uintptr_t ra);

/* ---- extended PML (docs/epml.md) ---------------------------------------- */

/*
 * The architecture's constants (MSR, VMCS encodings, controls, entry bits,
 * descriptor offsets) are include/epml-arch.h's, shared with Xen and the
 * host tests; here only what is this emulation's own.
 */
#define VMX_CPU_BASED_ACTIVATE_TERTIARY_CONTROLS (1u << 17)
#define MSR_IA32_VMX_PROCBASED_CTLS3    0x492

/* IA32_VMX_EPML_CAP[3:0]: qemu-pml's largest buffer, 4 KiB << 9 = 2 MiB. */
#define EPML_MAX_SIZE_SHIFT     9

/* The model offers extended PML (-cpu ...,epml=on) and VMX. */
static inline bool vmx_epml_supported(CPUX86State *env)
{
    return cpu_has_vmx(env) && env_archcpu(env)->pml_ext;
}

/* The tertiary controls of the current VMCS; 0 unless activated. */
static inline uint64_t vmx_tertiary_ctls(CPUX86State *env)
{
    return (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_ACTIVATE_TERTIARY_CONTROLS) ?
           VMCS(env, TERTIARY_VM_EXEC_CONTROL) : 0;
}

/* "enable extended PML" in the current VMCS. */
static inline bool vmx_epml_on(CPUX86State *env)
{
    return vmx_tertiary_ctls(env) & EPML_TERTIARY_ENABLE;
}

/* vmx-mutate.c: deliberate defects for mutation runs, off by default */
#define VMX_MUTATE_INVEPT_NOOP      (1u << 0)
#define VMX_MUTATE_DROP_BUFFER      (1u << 1)
#define VMX_MUTATE_NO_WALK_FILTER   (1u << 2)
bool vmx_mutated(unsigned m);

/* vmx-stats.c: counters for query-pml-stats, declared in vmx-stats.h. */

/* vmx-ept.c: empty this vCPU's guest-physical mapping cache */
void vmx_ept_gpa_flush(CPUX86State *env);

/*
 * vmx-pml.c: log guest-physical @gpa, whose EPT dirty flag is about to be
 * set; false if the log is full (a PML-full exit before the access).
 */
bool vmx_pml_log(CPUX86State *env, uint64_t gpa);

/* vmx-epml.c */
bool vmx_epml_walk_filtered(CPUX86State *env, bool transition);
uint64_t vmx_epml_cap(CPUX86State *env);
uint32_t vmx_epml_entries_per_buffer(CPUX86State *env);
bool vmx_epml_controls_valid(CPUX86State *env);
bool vmx_epml_guest_state_valid(CPUX86State *env);
/*
 * An access is about to set leaf EPT flags (@set_a accessed, @set_d dirty)
 * of the entry at host-physical @epte_addr (a leaf at @level, 1..3) for
 * guest-physical @gpa; @walk if the guest page walk made it.  Log it as
 * the EPML controls say.  Returns false if it cannot be logged and must
 * cause a PML-full VM exit before the access (section 9).
 */
bool vmx_epml_log(CPUX86State *env, uint64_t gpa, bool set_a, bool set_d,
                  bool walk, hwaddr epte_addr, int level);

/* vmx-entry.c */
void vmx_vm_entry(CPUX86State *env, bool resume, uintptr_t ra);

/* vmx-events.c */
#define VMX_PREEMPT_RATE    5   /* IA32_VMX_MISC[4:0]: TSC bit that counts */
void vmx_events_entry(CPUX86State *env);
void vmx_events_inject_mtf(CPUX86State *env);
void vmx_events_dbg_after_insn(CPUX86State *env);
void vmx_events_save(CPUX86State *env);
void vmx_events_exit(CPUX86State *env);
void vmx_preempt_check(CPUX86State *env, uintptr_t ra);
G_NORETURN void vmx_raise_pending_dbg(CPUX86State *env, uint64_t pending);

/* vmx-tlb.c */
void vmx_tlb_entry_begin(CPUX86State *env);
void vmx_tlb_entry_end(CPUX86State *env);
void vmx_tlb_exit_begin(CPUX86State *env);
void vmx_tlb_exit_end(CPUX86State *env);
void vmx_tlb_unwatch(CPUX86State *env);

/* vmx-apic.c */
bool vmx_apic_controls_ok(CPUX86State *env);
void vmx_apic_entry(CPUX86State *env);
void vmx_apic_exit(CPUX86State *env);
void vmx_apic_post_load(CPUX86State *env);
/* APIC-write emulation or a TPR-below-threshold exit is due at this boundary. */
bool vmx_apic_trap_due(CPUX86State *env);
/* Do it: may take the trap-like exit (43, 45, 56), which does not return. */
void vmx_apic_trap(CPUX86State *env);
/* A recognized virtual interrupt can be delivered now (30.2.2). */
bool vmx_apic_virq_due(CPUX86State *env);
void vmx_apic_deliver_virq(CPUX86State *env);
/*
 * An external interrupt with vector @vector was acknowledged in non-root
 * operation: if it is the posted-interrupt notification vector, process
 * the posted interrupts (30.6) and go on with the guest (no return);
 * otherwise return, and the caller takes the VM exit.
 */
void vmx_apic_external_interrupt(CPUX86State *env, int vector);
G_NORETURN void vmx_apic_access_gpa(CPUX86State *env, uint64_t gpa, uintptr_t ra);

/* vmx-ept.c */
enum ept_fault_kind {
    EPT_FAULT_VIOLATION = 0,
    EPT_FAULT_MISCONFIG = 1,
    EPT_FAULT_PML_FULL = 2,
    EPT_FAULT_APIC_ACCESS = 3,     /* the walker reached the APIC-access page */
};
bool vmx_eptp_valid(CPUX86State *env, uint64_t eptp);
uint64_t vmx_ept_vpid_caps(CPUX86State *env);
void vmx_invalidate_guest_tlb(CPUX86State *env);

/* 64-bit mode: IA-32e mode with a 64-bit code segment. */
static inline bool in_64bit_mode(CPUX86State *env)
{
    return env->hflags & HF_CS64_MASK;
}

/* vmx-signals.c */
void vmx_init_signal(CPUX86State *env);
void vmx_release_init(CPUX86State *env);
G_NORETURN void vmx_enter_wait_sipi(CPUX86State *env);

/* vmx-exit.c */
G_NORETURN void vmx_entry_failure(CPUX86State *env, uint32_t reason, uint64_t qual,
                                  uintptr_t ra);
void vmx_load_host_state(CPUX86State *env);

/* vmx-intercept.c: the general register an intercepted instruction names */
int vmx_intercept_gpr(CPUX86State *env);

#endif
