/*
 * qemu-pml: the entry points upstream QEMU code calls (qemu-pml/patches/).
 * Everything else of the VMX emulation stays private to target/i386/pml.
 */
#ifndef PML_VMX_H
#define PML_VMX_H

#include "cpu.h"

/* The "cpu/vmx" migration subsection (vmx-migration.c, patch 0011). */
extern const VMStateDescription vmstate_vmx;

/* The feature bits TCG can offer in feature word @w (patch 0006). */
uint64_t vmx_tcg_supported_features(FeatureWord w);

/*
 * RDMSR/WRMSR of IA32_FEATURE_CONTROL or a VMX capability MSR.  Return
 * false if @index is not ours; raise #GP(0) (at @ra) where the SDM says
 * so; otherwise perform the access and return true.
 */
bool vmx_rdmsr(CPUX86State *env, uint32_t index, uint64_t *val, uintptr_t ra);
bool vmx_wrmsr(CPUX86State *env, uint32_t index, uint64_t val, uintptr_t ra);

/*
 * MOV to CRn in VMX operation: #GP(0) in root operation unless FIXED0/
 * FIXED1 allow the value; a VM exit or the guest/host-mask merge in
 * non-root operation.  Returns the value to write.
 */
target_ulong vmx_cr_write(CPUX86State *env, int reg, target_ulong val, uintptr_t ra);

/*
 * VMX non-root operation (patch 0009).  TCG's SVM intercept points call
 * these instead of their SVM bodies while env->vmx.non_root is set.
 */
static inline bool vmx_non_root(CPUX86State *env)
{
    return env->vmx.non_root;
}
void vmx_check_intercept(CPUX86State *env, uint32_t type, uint64_t param,
                         uintptr_t ra);
void vmx_check_io(CPUX86State *env, uint32_t port, uint32_t svm_param,
                  uintptr_t ra);
void vmx_do_exit(CPUX86State *env);
void vmx_event_delivery(CPUX86State *env, int intno, int is_int, int error_code,
                        int is_hw, int rm);
void vmx_event_delivered(CPUX86State *env);

/* x86_cpu_pending_interrupt: external-interrupt exiting ignores RFLAGS.IF. */
static inline bool vmx_intr_exits_regardless_of_if(CPUX86State *env)
{
    return env->vmx.non_root &&
           (env->vmx.vmcs.f[VMCS_ID_PIN_BASED_VM_EXEC_CONTROL] &
            VMX_PIN_BASED_EXT_INTR_MASK) &&
           !(env->hflags & HF_INHIBIT_IRQ_MASK);
}

/*
 * EPT as TCG's stage 2 (patch 0010): fill an MMU_NESTED_IDX entry for
 * guest-physical @gpa, or record why not and return false; the failure
 * then reaches vmx_ept_exit() from x86_cpu_tlb_fill.
 */
bool vmx_ept_enabled(CPUX86State *env);
bool vmx_ept_translate(CPUX86State *env, uint64_t gpa, MMUAccessType access,
                       hwaddr *hpa, int *prot, int *page_size);
/*
 * A guest access's final guest-physical address (patch 0030), translated
 * without an MMU_NESTED_IDX entry: @full gets the host-physical address,
 * EPT's permissions and page size; false as for vmx_ept_translate().
 */
bool vmx_ept_final(CPUX86State *env, uint64_t gpa, MMUAccessType access,
                   CPUTLBEntryFull *full);

/* The working-set oracle (wss-oracle.c, patch 0019). */
extern bool wss_oracle_active;
void wss_oracle_access(CPUX86State *env, uint64_t gpa, MMUAccessType access, int *prot);
void wss_oracle_walk(CPUX86State *env, uint64_t gpa);

G_NORETURN void vmx_ept_exit(CPUX86State *env, bool walk, uint64_t gpa,
                             uint64_t gla, uintptr_t ra);

/*
 * MOV to CR0/CR3/CR4 changed paging state (patch 0029): flush the whole
 * TLB outside VMX operation; in it only the current VPID's mappings, i.e.
 * the current mode's MMU index set (29.4.3.1), and nothing while a VMX
 * transition loads paging state (vmx-tlb.c flushes then).
 */
void vmx_paging_flush(CPUX86State *env);

/*
 * MOV to CR3 loaded a new value (patch 0029): as vmx_paging_flush(), but
 * the tables of the address space left may be set aside for a switch
 * back, and those of the one entered may come back (vmx-tlb.c).
 */
void vmx_cr3_flush(CPUX86State *env);

/*
 * The MMU indices that hold linear and combined mappings, INVLPG's to
 * flush (patch 0057) and what a transition without VPID flushes
 * (vmx-tlb.c): the root set 0..5 and the guest set 8..13 (patch 0029).  MMU_PHYS_IDX and MMU_NESTED_IDX hold physical and
 * guest-physical mappings, which no linear address names.
 */
#define VMX_TLB_ROOT_SET    (0x3fu)
#define VMX_TLB_GUEST_SET   (0x3fu << MMU_GUEST_OFFSET)

static inline uint16_t vmx_linear_sets(void)
{
    return VMX_TLB_ROOT_SET | VMX_TLB_GUEST_SET;
}

/*
 * INVLPG's sets (patch 0057): the linear and combined mappings of the
 * current VPID (SDM Vol. 3C 29.4.3.1, Vol. 3A 4.10.4.1), which TCG holds
 * in the current mode's set only.  The other set holds another VPID's
 * mappings or, with VPID off, ones that each transition to their mode
 * drops or checks (vmx-tlb.c), so an INVLPG has nothing to do there.
 * With EFER.SVME set, both: INVLPGA shares this helper and names a
 * guest's ASID from the host.
 */
static inline uint16_t vmx_invlpg_sets(CPUX86State *env)
{
    if (env->efer & MSR_EFER_SVME) {
        return vmx_linear_sets();
    }
    return env->hflags & HF_GUEST_MASK ? VMX_TLB_GUEST_SET : VMX_TLB_ROOT_SET;
}

/*
 * TCG's page walker read a paging structure at @ram_addr (RAM_ADDR_INVALID:
 * not RAM) for a translation it may enter in the TLB (patch 0049): while
 * VM entries and exits without VPID try to keep TLB sets, the page is
 * watched for writes (vmx-tlb.c).
 */
void vmx_tlb_watch(CPUX86State *env, uint64_t ram_addr);
static inline void vmx_tlb_walked(CPUX86State *env, uint64_t ram_addr)
{
    if (unlikely(env->vmx.tlb.watch)) {
        vmx_tlb_watch(env, ram_addr);
    }
}

/* TCG's page walker is probing a guest paging structure (patch 0015). */
static inline void vmx_ept_guest_walk(CPUX86State *env, bool on)
{
    env->vmx.ept.in_guest_walk = on;
}

/*
 * EPT without A/D flags (patch 0028): the walker needs write access to a
 * guest paging structure only to set an A/D flag.  After a failed store
 * probe, vmx_ept_walk_may_read() says whether to retry as a read; an A/D
 * update EPT does not allow is recorded (vmx_ept_walk_refuse), ends the
 * walk, and vmx_ept_walk_take_refusal() turns it into the EPT violation
 * and returns its guest-physical address.
 */
static inline bool vmx_ept_walk_refused(CPUX86State *env)
{
    return env->vmx.ept.walk_refused;
}
bool vmx_ept_walk_may_read(CPUX86State *env);
void vmx_ept_walk_refuse(CPUX86State *env, uint64_t gpa);
uint64_t vmx_ept_walk_take_refusal(CPUX86State *env);

/* Interrupt-window exiting (26.2 / 26.7.5): RFLAGS.IF = 1, no STI/MOV SS blocking. */
static inline bool vmx_intr_window_open(CPUX86State *env)
{
    return env->vmx.non_root &&
           (env->vmx.vmcs.f[VMCS_ID_CPU_BASED_VM_EXEC_CONTROL] &
            VMX_CPU_BASED_VIRTUAL_INTR_PENDING) &&
           (env->eflags & IF_MASK) && !(env->hflags & HF_INHIBIT_IRQ_MASK);
}

/*
 * VM exits between instructions (vmx-events.c, patch 0014): monitor trap
 * flag, VMX-preemption timer, NMI window.  While one of them may become
 * due, the vCPU keeps this interrupt request set; vmx_event_pending()
 * says whether one is due now and vmx_deliver_event() takes the exit.
 */
#define CPU_INTERRUPT_VMX_EVENT     CPU_INTERRUPT_TGT_EXT_0
bool vmx_event_pending(CPUX86State *env);
void vmx_cpu_reset(CPUState *cs);
void vmx_deliver_event(CPUX86State *env);
void vmx_events_post_load(CPUX86State *env);

/*
 * Whether NMIs are blocked (27.3.2.5).  With "virtual NMIs" HF2_NMI_MASK
 * is virtual-NMI blocking and real NMIs are not blocked in non-root
 * operation; under "NMI exiting" alone, blocking lasts until the VM exit
 * (IRET in the guest does not end it).
 */
static inline bool vmx_nmi_blocked(CPUX86State *env)
{
    uint32_t pin;

    if (!env->vmx.non_root) {
        return env->hflags2 & HF2_NMI_MASK;
    }
    pin = env->vmx.vmcs.f[VMCS_ID_PIN_BASED_VM_EXEC_CONTROL];
    if (pin & VMX_PIN_BASED_VIRTUAL_NMIS) {
        return false;
    }
    if (pin & VMX_PIN_BASED_NMI_EXITING) {
        return env->vmx.ev.nmi_blocked;
    }
    return env->hflags2 & HF2_NMI_MASK;
}

/*
 * INIT and SIPI in VMX operation (vmx-signals.c, patch 0021).
 * vmx_init_blocked(): do_cpu_init() asks first; true if VMX operation
 * blocks the INIT (it is then latched).  vmx_sipi_signal(): do_cpu_sipi()
 * asks first; true if VMX handled the SIPI (a VM exit, which does not
 * return, or discarded).
 */
bool vmx_init_blocked(CPUX86State *env);
bool vmx_sipi_signal(CPUX86State *env);

/*
 * x86_cpu_pending_interrupt, first: in non-root operation an INIT is
 * pending work even for a halted guest (its VM exit wakes it), and the
 * wait-for-SIPI state lets nothing but a SIPI through (26.6.2).  Returns
 * the request to report at once, or 0 to go on with *@req (filtered).
 */
static inline int vmx_signals_pending(CPUX86State *env, int *req)
{
    if (!env->vmx.non_root) {
        return 0;
    }
    if (env->vmx.sig.wait_sipi) {
        *req &= CPU_INTERRUPT_SIPI;
        return 0;
    }
    return *req & CPU_INTERRUPT_INIT;
}

/*
 * TCG is about to raise #DB (single step, breakpoints; patch 0022):
 * @old_dr6 is DR6 before this exception, @bits the B3:0/BD/BS bits it
 * sets.  In non-root operation with #DB intercepted this is a VM exit
 * that does not return and leaves DR6 at @old_dr6.
 */
void vmx_debug_exception(CPUX86State *env, target_ulong old_dr6, target_ulong bits);

/*
 * A task switch is about to happen (patch 0023): in non-root operation a
 * VM exit (26.4.2) that does not return.  @source is QEMU's SWITCH_TSS_*.
 */
void vmx_task_switch(CPUX86State *env, int tss_selector, int source, uintptr_t ra);

/*
 * CLTS (patch 0024): true if non-root operation handles it (TS owned by
 * the host: a VM exit, which does not return, or no change at all).
 */
bool vmx_clts(CPUX86State *env, uintptr_t ra);

/*
 * TCG's PAE walk, level 3 (patch 0026): in non-root operation with EPT,
 * the PDPTEs VM entry loaded from the VMCS (27.3.2.4) stand in for the
 * table at CR3 until the guest writes CR0, CR3 or CR4.  True and *@pte
 * if so.  Only for the guest's own walk (not an SVM nested one).
 */
static inline bool vmx_pae_pdpte(CPUX86State *env, int index, uint64_t *pte)
{
    if (!env->vmx.non_root || !env->vmx.ept.pdptes_loaded) {
        return false;
    }
    *pte = env->vmx.ept.pdpte[index & 3];
    return true;
}

/* "use TPR shadow": CR8 accesses go to the virtual-APIC page (30.3). */
static inline bool vmx_tpr_shadow(CPUX86State *env)
{
    return env->vmx.non_root &&
           (env->vmx.vmcs.f[VMCS_ID_CPU_BASED_VM_EXEC_CONTROL] &
            VMX_CPU_BASED_TPR_SHADOW);
}
target_ulong vmx_read_vtpr(CPUX86State *env);
void vmx_write_vtpr(CPUX86State *env, target_ulong val, uintptr_t ra);

/*
 * "Virtualize APIC accesses" (vmx-apic.c, patch 0027): x86_cpu_tlb_fill
 * passes each non-root fill with the physical address @*paddr it
 * resolved to.  An access on the APIC-access page is sent to the
 * virtual-APIC page (*paddr, *page_size changed) or becomes an
 * APIC-access VM exit; returns false instead when @probe (or for the
 * page walker, whose exit vmx_ept_exit then takes).
 */
bool vmx_apic_access(CPUX86State *env, vaddr addr, int size, MMUAccessType access,
                     int mmu_idx, bool probe, hwaddr *paddr, int *page_size,
                     uintptr_t ra);

/*
 * "Virtualize x2APIC mode" (vmx-apic.c, patch 0037): RDMSR/WRMSR of x2APIC
 * MSR 800H + @index that no MSR bitmap made exit.  True if virtualized
 * (done, or #GP(0) raised at @ra); false to access the local APIC.
 */
bool vmx_x2apic_rdmsr(CPUX86State *env, uint32_t index, uint64_t *val);
bool vmx_x2apic_wrmsr(CPUX86State *env, uint32_t index, uint64_t val, uintptr_t ra);

#endif
