/*
 * qemu-pml: the helpers every VMX file shares (Intel SDM Vol. 3C:
 * 31.2 VMX instruction results; 27.3.2, 27.4, 28.5, 28.6 loading state
 * and MSRs at VM entry and VM exit; 28.1, 28.2 recording a VM exit;
 * chapter 27: recording which VM-entry check failed).
 *
 * This is the bottom layer of target-i386-pml/: the feature files
 * (entry, exit, intercept, events, EPT, PML, APIC, signals, instructions)
 * call in here, and nothing here calls a feature file; it uses QEMU core
 * functions and, at most, the leaves vmcs-fields.c, vmx-caps.c,
 * vmx-stats.c, vmx-mutate.c and vmx-tlb.c.  tests/check-layering.py
 * keeps it that way.
 *
 * A VM exit is requested here (vmx_vmexit(): the exit is recorded in
 * env->vmx and the CPU loop is left) and delivered by vmx_do_exit() in
 * vmx-exit.c.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/cputlb.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "pml/trace.h"

/* ---- addresses ---------------------------------------------------------- */

/*
 * The host address of L1-physical @addr through the physical-address TLB
 * (a store probe also marks the page dirty), or NULL if it is not RAM:
 * the caller then goes through the address space.  EPT tables and log
 * buffers are a handful of pages, so the TLB keeps them.  Its RAM
 * address goes to @ram_addr (RAM_ADDR_INVALID if not RAM).
 */
static void *phys_host(CPUX86State *env, hwaddr addr, int size, MMUAccessType access,
                       uint64_t *ram_addr)
{
    CPUTLBEntryFull *full;
    void *host;
    int flags;

    /* A plain hit (RAM, dirty, no watchpoint) needs no more (patch 0060). */
    host = probe_access_plain_mmu(env, addr, access, MMU_PHYS_IDX, &full);
    if (host) {
        *ram_addr = addr + full->xlat_section;
        return host;
    }
    flags = probe_access_full_mmu(env, addr, size, access, MMU_PHYS_IDX, &host, &full);
    if ((flags & TLB_INVALID_MASK) || !host) {
        *ram_addr = RAM_ADDR_INVALID;
        return NULL;
    }
    *ram_addr = addr + full->xlat_section;
    return host;
}

/*
 * For the emulator's own stores (log entries, posted-interrupt
 * descriptors) and loads.  The probe is a page walker's, which leaves a
 * watched paging structure watched (patch 0049); a store here is a real
 * write, so it ends the watch and advances ram_list.paging_gen itself.
 */
void *vmx_phys_host(CPUX86State *env, hwaddr addr, int size, MMUAccessType access)
{
    uint64_t ram_addr;
    void *host = phys_host(env, addr, size, access, &ram_addr);

    if (host && access == MMU_DATA_STORE) {
        tlb_paging_store(ram_addr);
    }
    return host;
}

/*
 * For the EPT walk: a load reads a paging structure (watched while
 * vmx-tlb.c keeps TLB sets), a store sets an accessed or dirty flag,
 * which changes no translation.
 */
void *vmx_phys_host_walk(CPUX86State *env, hwaddr addr, int size, MMUAccessType access)
{
    uint64_t ram_addr;
    void *host = phys_host(env, addr, size, access, &ram_addr);

    if (access == MMU_DATA_LOAD) {
        vmx_tlb_walked(env, ram_addr);
    }
    return host;
}

/* ---- software exceptions and software interrupts ----------------------- */

/*
 * INT3 (CC) and INTO (CE) are software exceptions, INT n (CD ib) a
 * software interrupt even for vectors 3 and 4.  TCG passes the vector and
 * the instruction's length: the one-byte forms are the exceptions (a
 * prefixed CC or CE would be taken for INT n).
 */
bool vmx_sw_exception(int vector, unsigned insn_len)
{
    return (vector == EXCP03_INT3 || vector == EXCP04_INTO) && insn_len == 1;
}

/* ---- loading processor state at VM entry and VM exit (27.3.2, 28.5) --- */

/*
 * Switch CR0/CR3/CR4/EFER as one step (VM entry and VM exit): EFER first,
 * CR0 written without PG so QEMU's CR0 update does not toggle long mode
 * itself, then EFER again so LMA and the hidden flags match the new state.
 */
void vmx_load_paging_state(CPUX86State *env, uint64_t cr0, uint64_t cr3,
                           uint64_t cr4, uint64_t efer)
{
    cpu_load_efer(env, efer);
    env->cr[0] = cr0 & ~CR0_PG_MASK;
    cpu_x86_update_cr4(env, cr4);
    cpu_x86_update_cr0(env, cr0);
    cpu_x86_update_cr3(env, cr3);
    cpu_load_efer(env, efer);
}

/*
 * TCG keeps the arithmetic flags and DF outside env->eflags (CC_SRC/CC_OP,
 * env->df): cpu_load_eflags() puts them there, and they must not also stay
 * in env->eflags, where every later RFLAGS image (PUSHF, an interrupt
 * frame, the next VM exit) would OR them in.
 */
void vmx_load_rflags(CPUX86State *env, uint64_t rflags)
{
    env->eflags = 0;
    cpu_load_eflags(env, rflags, ~(CC_O | CC_S | CC_Z | CC_A | CC_P | CC_C | DF_MASK));
}

/* ---- MSRs named by the MSR-load lists (27.4, 28.6) --------------------- */

bool vmx_load_msr(CPUX86State *env, uint32_t index, uint64_t val)
{
    switch (index) {
    case MSR_EFER:
        if (val & ~(MSR_EFER_SCE | MSR_EFER_LME | MSR_EFER_LMA | MSR_EFER_NXE)) {
            return false;
        }
        cpu_load_efer(env, val);
        return true;
    case MSR_STAR:
        env->star = val;
        return true;
    case MSR_LSTAR:
        if (!vmx_canonical(env, val)) {
            return false;
        }
        env->lstar = val;
        return true;
    case MSR_CSTAR:
        if (!vmx_canonical(env, val)) {
            return false;
        }
        env->cstar = val;
        return true;
    case MSR_FMASK:
        env->fmask = val;
        return true;
    case MSR_KERNELGSBASE:
        if (!vmx_canonical(env, val)) {
            return false;
        }
        env->kernelgsbase = val;
        return true;
    case MSR_IA32_SYSENTER_CS:
        env->sysenter_cs = val & 0xffff;
        return true;
    case MSR_IA32_SYSENTER_ESP:
        env->sysenter_esp = val;
        return true;
    case MSR_IA32_SYSENTER_EIP:
        env->sysenter_eip = val;
        return true;
    case MSR_PAT:
        env->pat = val;
        return true;
    case MSR_TSC_AUX:
        env->tsc_aux = val;
        return true;
    case VMX_MSR_IA32_DEBUGCTL:
        return !(val & ~0x3ull);        /* TCG keeps no LBR state */
    case MSR_IA32_TSC:
        /* Accepted, but TCG does not model TSC writes (nor does its WRMSR). */
        qemu_log_mask(LOG_UNIMP, "qemu-pml: IA32_TSC in an MSR-load list is ignored\n");
        return true;
    }
    /* FS/GS base, x2APIC and SMM MSRs may not be loaded (27.4); others are
     * not implemented by the list loader yet. */
    qemu_log_mask(LOG_UNIMP, "qemu-pml: MSR-load list entry 0x%x refused\n", index);
    return false;
}

/* ---- VMX instruction results (31.2) ------------------------------------ */

static void vmx_set_flags(CPUX86State *env, uint32_t set)
{
    /* CF, PF, AF, ZF, SF and OF are all written (the translator assumes
     * the helper leaves CC_OP_EFLAGS). */
    env->cc_src = set;
    env->cc_op = CC_OP_EFLAGS;
    env->eflags &= ~(CC_C | CC_P | CC_A | CC_Z | CC_S | CC_O);
}

void vmx_vmsucceed(CPUX86State *env)
{
    vmx_set_flags(env, 0);
}

void vmx_vmfail_invalid(CPUX86State *env)
{
    vmx_set_flags(env, CC_C);
}

void vmx_fail_valid(CPUX86State *env, enum vmx_insn_error err)
{
    vmx_set_flags(env, CC_Z);
    env->vmx.vmcs.f[VMCS_ID_VM_INSTRUCTION_ERROR] = err;
}

/* ---- naming the VM-entry check that failed (chapter 27) ---------------- */

bool vmx_entry_check_failed(CPUX86State *env, const char *rule, const char *expr)
{
    /* The first check noted is the innermost: its caller's wrapper keeps it. */
    if (!env->vmx.check.rule) {
        env->vmx.check.rule = rule;
        env->vmx.check.expr = expr;
    }
    return true;
}

void vmx_entry_checks_begin(CPUX86State *env)
{
    /* Also forgets a note left by a check used outside VM entry (INVEPT). */
    env->vmx.check.rule = NULL;
    env->vmx.check.expr = NULL;
}

static const char *entry_fail_kind_name(enum vmx_entry_fail_kind kind)
{
    switch (kind) {
    case VMX_ENTRY_FAIL_VMFAIL_INVALID:
        return "VMfailInvalid";
    case VMX_ENTRY_FAIL_VMFAIL:
        return "VMfailValid";
    case VMX_ENTRY_FAIL_EXIT:
        return "VM-entry failure, exit reason";
    default:
        return "none";
    }
}

void vmx_entry_fail_report(CPUX86State *env, enum vmx_entry_fail_kind kind,
                           uint32_t number, uint64_t qual)
{
    struct vmx_entry_fail *f = &env->vmx.check.fail;
    /* Every failing check names itself; this is only a safety net. */
    const char *rule = env->vmx.check.rule ?: "unnamed";
    const char *expr = env->vmx.check.expr ?: "";

    seqlock_write_begin(&f->seq);
    f->kind = kind;
    f->number = number;
    f->qual = qual;
    f->vmcs = env->vmx.current_vmcs;
    f->count++;
    f->rule = rule;
    f->expr = expr;
    seqlock_write_end(&f->seq);
    env->vmx.check.rule = NULL;
    env->vmx.check.expr = NULL;

    trace_vmx_entry_check_failed(env_cpu(env)->cpu_index, rule, expr,
                                 entry_fail_kind_name(kind), number, qual);
    qemu_log_mask(LOG_GUEST_ERROR, "qemu-pml: VM entry on cpu %d: %s %u (qualification 0x%"
                  PRIx64 "): rule %s: %s\n", env_cpu(env)->cpu_index,
                  entry_fail_kind_name(kind), number, qual, rule, expr);
}

/* VMfail(n): VMfailValid if there is a current VMCS, else VMfailInvalid. */
void vmx_vmfail(CPUX86State *env, enum vmx_insn_error err)
{
    if (env->vmx.current_vmcs != VMCS_PTR_INVALID) {
        vmx_fail_valid(env, err);
    } else {
        vmx_vmfail_invalid(env);
    }
}

/* ---- requesting a VM exit (delivered by vmx_do_exit(), vmx-exit.c) ----- */

/*
 * Record an exit and leave the helper; vmx_do_exit() completes it from
 * x86_cpu_do_interrupt (EXCP_VMEXIT), like SVM's do_vmexit.
 */
G_NORETURN void vmx_vmexit_len(CPUX86State *env, uint32_t reason, uint64_t qual,
                               uint32_t insn_len, uintptr_t ra)
{
    CPUState *cs = env_cpu(env);

    /*
     * The IA32_TSC value of the MSR-store list (28.4) is read when the
     * exit is recognised, not after the emulator's own bookkeeping, so
     * that it follows the guest's last RDTSC as closely as on hardware.
     */
    env->vmx.exit.tsc = cpu_get_tsc(env);
    if (ra) {
        cpu_restore_state(cs, ra);      /* also sets exit_insn_len */
    } else if (!insn_len && (env->vmx.exit.idt_vectoring & VMX_INTR_INFO_VALID) &&
               ((env->vmx.exit.idt_vectoring & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_SW_INTR ||
                (env->vmx.exit.idt_vectoring & VMX_INTR_TYPE_MASK) == VMX_INTR_TYPE_SW_EXCEPTION)) {
        /* During delivery of a software interrupt or exception (28.2.4). */
        env->vmx.xlat.insn_len = env->vmx.exit.idt_vectoring_len;
    } else {
        env->vmx.xlat.insn_len = insn_len;
    }
    env->vmx.exit.reason = reason;
    env->vmx.exit.qual = qual;
    cs->exception_index = EXCP_VMEXIT;
    /* An exit during event delivery ends that delivery (no double fault). */
    env->old_exception = -1;
    cpu_loop_exit(cs);
}

G_NORETURN void vmx_vmexit(CPUX86State *env, uint32_t reason, uint64_t qual,
                           uintptr_t ra)
{
    vmx_vmexit_len(env, reason, qual, 0, ra);
}

/*
 * An exit for an instruction whose translator left its operand (28.2.1,
 * 28.2.5): the instruction information and, as exit qualification, the
 * displacement (descriptor-table and VMX instructions).
 */
G_NORETURN void vmx_operand_exit(CPUX86State *env, uint32_t reason, uintptr_t ra)
{
    env->vmx.exit.insn_info = env->vmx.xlat.insn_info;
    vmx_vmexit(env, reason, env->vmx.xlat.addr, ra);
}
