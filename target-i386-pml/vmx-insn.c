/*
 * qemu-pml: the VMX instructions (Intel SDM Vol. 3C 31.3; their results,
 * 31.2, are in vmx-base.c; their exits in non-root operation, 26.1.2),
 * INVPCID and RDTSCP there, and MOV to/from CR, CLTS and LMSW in VMX
 * operation (24.8 fixed bits; 26.1.3 exits and 25.3 guest/host masks in
 * non-root operation).
 *
 * Each helper follows the instruction's "Operation" section: the #UD and
 * #GP checks, then VMsucceed / VMfailInvalid / VMfailValid(n).  Register
 * and memory operands are decoded by the translator (vmx-translate.c.inc)
 * and arrive as a linear address plus an operand-info word.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/cputlb.h"
#include "exec/helper-proto.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "pml/trace.h"

/* ---- common checks ----------------------------------------------------- */

static bool in_compat_mode(CPUX86State *env)
{
    return (env->hflags & HF_LMA_MASK) && !(env->hflags & HF_CS64_MASK);
}

/*
 * The checks every VMX instruction but VMXON starts with: #UD outside VMX
 * operation, in real-address or virtual-8086 mode and in compatibility
 * mode; #GP(0) above CPL 0.
 */
static void vmx_insn_ud_check(CPUX86State *env, uintptr_t ra)
{
    if (!env->vmx.vmxon || !(env->cr[0] & CR0_PE_MASK) ||
        (env->eflags & VM_MASK) || in_compat_mode(env)) {
        raise_exception_ra(env, EXCP06_ILLOP, ra);
    }
}

static void vmx_insn_check(CPUX86State *env, uint32_t exit_reason, uintptr_t ra)
{
    vmx_insn_ud_check(env, ra);
    /* 26.1.2: in VMX non-root operation they exit unconditionally. */
    if (env->vmx.non_root) {
        switch (exit_reason) {
        case VMX_EXIT_VMCLEAR: case VMX_EXIT_VMPTRLD: case VMX_EXIT_VMPTRST:
        case VMX_EXIT_VMREAD: case VMX_EXIT_VMWRITE:
        case VMX_EXIT_INVEPT: case VMX_EXIT_INVVPID:
            vmx_operand_exit(env, exit_reason, ra);
        default:
            vmx_vmexit(env, exit_reason, 0, ra);
        }
    }
    if (env->hflags & HF_CPL_MASK) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
}

static bool vmx_bad_phys_addr(CPUX86State *env, uint64_t addr)
{
    X86CPU *cpu = env_archcpu(env);

    return (addr & 0xfff) || (addr >> cpu->phys_bits);
}

/*
 * A memory operand of @len bytes at @a0 in 64-bit mode: non-canonical is
 * #SS(0) through SS (@ops has VMX_OPERAND_SS), #GP(0) otherwise.  (TCG's
 * own check, at the access, always raises #GP.)
 */
static void check_operand_address(CPUX86State *env, target_ulong a0, int len, uint32_t ops,
                                  uintptr_t ra)
{
    if (in_64bit_mode(env) &&
        (!vmx_canonical(env, a0) || !vmx_canonical(env, a0 + len - 1))) {
        raise_exception_err_ra(env, (ops & VMX_OPERAND_SS) ? EXCP0C_STACK : EXCP0D_GPF, 0, ra);
    }
}

static uint64_t vmx_read_m64(CPUX86State *env, target_ulong a0, uint32_t ops, uintptr_t ra)
{
    check_operand_address(env, a0, 8, ops, ra);
    return cpu_ldq_data_ra(env, a0, ra);
}

/* ---- the VMCS region in memory ----------------------------------------- */

/* "VMCS shadowing" may be 1: VMPTRLD accepts a shadow VMCS (24.10.1). */
static bool vmx_shadow_vmcs_offered(CPUX86State *env)
{
    return (vmx_cap_msr(env, MSR_IA32_VMX_PROCBASED_CTLS2) >> 32) &
           VMX_SECONDARY_EXEC_SHADOW_VMCS;
}

static uint32_t vmcs_region_revision(CPUX86State *env, uint64_t addr)
{
    return x86_ldl_phys(env_cpu(env), addr + VMCS_OFF_REVISION);
}

/* Write the cached current VMCS back to its region (VMCLEAR, VMPTRLD, VMXOFF). */
static void vmcs_flush(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);
    uint64_t base = env->vmx.current_vmcs;
    int i;

    if (base == VMCS_PTR_INVALID) {
        return;
    }
    x86_stl_phys(cs, base + VMCS_OFF_LAUNCH, env->vmx.launch_state);
    for (i = 0; i < VMCS_NR_FIELDS; i++) {
        x86_stq_phys(cs, base + VMCS_OFF_FIELDS + 8 * i, env->vmx.vmcs.f[i]);
    }
}

static void vmcs_load(CPUX86State *env, uint64_t base)
{
    CPUState *cs = env_cpu(env);
    int i;

    env->vmx.launch_state =
        x86_ldl_phys(cs, base + VMCS_OFF_LAUNCH) == VMCS_LAUNCH_LAUNCHED ?
        VMCS_LAUNCH_LAUNCHED : VMCS_LAUNCH_CLEAR;
    for (i = 0; i < VMCS_NR_FIELDS; i++) {
        env->vmx.vmcs.f[i] = x86_ldq_phys(cs, base + VMCS_OFF_FIELDS + 8 * i);
    }
}

/* ---- VMXON / VMXOFF ---------------------------------------------------- */

static bool vmx_cr_supported(CPUX86State *env)
{
    return vmx_cr_fixed_ok(env->cr[0], vmx_cap_msr(env, MSR_IA32_VMX_CR0_FIXED0),
                           vmx_cap_msr(env, MSR_IA32_VMX_CR0_FIXED1)) &&
           vmx_cr_fixed_ok(env->cr[4], vmx_cap_msr(env, MSR_IA32_VMX_CR4_FIXED0),
                           vmx_cap_msr(env, MSR_IA32_VMX_CR4_FIXED1));
}

void helper_vmx_vmxon(CPUX86State *env, target_ulong a0, uint32_t ops)
{
    uintptr_t ra = GETPC();
    uint64_t fc = env->msr_ia32_feature_control;
    uint64_t addr;
    uint32_t rev;

    if (!(env->cr[0] & CR0_PE_MASK) || !(env->cr[4] & CR4_VMXE_MASK) ||
        (env->eflags & VM_MASK) || in_compat_mode(env)) {
        raise_exception_ra(env, EXCP06_ILLOP, ra);
    }
    if (env->vmx.vmxon) {
        if (env->vmx.non_root) {
            vmx_operand_exit(env, VMX_EXIT_VMXON, ra);
        }
        if (env->hflags & HF_CPL_MASK) {
            raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
        }
        vmx_vmfail(env, VMXERR_VMXON_IN_ROOT);
        return;
    }
    if ((env->hflags & HF_CPL_MASK) || !vmx_cr_supported(env) ||
        !(fc & FEATURE_CONTROL_LOCKED) ||
        !(fc & FEATURE_CONTROL_VMXON_ENABLED_OUTSIDE_SMX)) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    addr = vmx_read_m64(env, a0, ops, ra);
    if (vmx_bad_phys_addr(env, addr)) {
        vmx_vmfail_invalid(env);
        return;
    }
    rev = vmcs_region_revision(env, addr);
    if (rev != VMX_VMCS_REVISION) {     /* also rejects bit 31 (shadow) */
        vmx_vmfail_invalid(env);
        return;
    }
    env->vmx.vmxon = true;
    vmx_ept_gpa_flush(env);
    env->vmx.non_root = false;
    env->vmx.vmxon_ptr = addr;
    env->vmx.current_vmcs = VMCS_PTR_INVALID;
    trace_vmx_vmxon(env_cpu(env)->cpu_index, addr);
    vmx_vmsucceed(env);
}

void helper_vmx_vmxoff(CPUX86State *env)
{
    vmx_insn_check(env, VMX_EXIT_VMXOFF, GETPC());
    vmcs_flush(env);
    env->vmx.vmxon = false;
    vmx_ept_gpa_flush(env);
    vmx_tlb_unwatch(env);
    trace_vmx_vmxoff(env_cpu(env)->cpu_index);
    vmx_vmsucceed(env);
    vmx_release_init(env);              /* an INIT latched in VMX operation */
}

/* ---- VMCLEAR / VMPTRLD / VMPTRST --------------------------------------- */

/*
 * VMCLEAR and VMPTRLD up to their VMCS-pointer operand: the checks every
 * VMX instruction makes first (exit in non-root operation, #UD, #GP), then
 * the operand: 4 KiB aligned, within the physical-address width, not the
 * VMXON region.  Returns false after VMfail with the instruction's own
 * error number.
 */
static bool vmcs_pointer_operand(CPUX86State *env, uint32_t exit_reason,
                                 target_ulong a0, uint32_t ops, uintptr_t ra,
                                 enum vmx_insn_error bad_addr,
                                 enum vmx_insn_error vmxon_ptr, uint64_t *addr)
{
    vmx_insn_check(env, exit_reason, ra);
    *addr = vmx_read_m64(env, a0, ops, ra);
    if (vmx_bad_phys_addr(env, *addr)) {
        vmx_vmfail(env, bad_addr);
        return false;
    }
    if (*addr == env->vmx.vmxon_ptr) {
        vmx_vmfail(env, vmxon_ptr);
        return false;
    }
    return true;
}

void helper_vmx_vmclear(CPUX86State *env, target_ulong a0, uint32_t ops)
{
    uint64_t addr;

    if (!vmcs_pointer_operand(env, VMX_EXIT_VMCLEAR, a0, ops, GETPC(),
                              VMXERR_VMCLEAR_INVALID_ADDR, VMXERR_VMCLEAR_VMXON_PTR, &addr)) {
        return;
    }
    if (addr == env->vmx.current_vmcs) {
        env->vmx.launch_state = VMCS_LAUNCH_CLEAR;
        vmcs_flush(env);
        env->vmx.current_vmcs = VMCS_PTR_INVALID;
    } else {
        x86_stl_phys(env_cpu(env), addr + VMCS_OFF_LAUNCH, VMCS_LAUNCH_CLEAR);
    }
    trace_vmx_vmclear(env_cpu(env)->cpu_index, addr);
    vmx_vmsucceed(env);
}

void helper_vmx_vmptrld(CPUX86State *env, target_ulong a0, uint32_t ops)
{
    uint64_t addr;
    uint32_t rev;

    if (!vmcs_pointer_operand(env, VMX_EXIT_VMPTRLD, a0, ops, GETPC(),
                              VMXERR_VMPTRLD_INVALID_ADDR, VMXERR_VMPTRLD_VMXON_PTR, &addr)) {
        return;
    }
    /*
     * Bits 30:0 must be our revision; bit 31 (shadow-VMCS indicator) is
     * allowed only if "VMCS shadowing" may be 1 (24.10.1, 31.3 VMPTRLD).
     */
    rev = vmcs_region_revision(env, addr);
    if ((rev & ~VMCS_REV_SHADOW) != VMX_VMCS_REVISION ||
        ((rev & VMCS_REV_SHADOW) && !vmx_shadow_vmcs_offered(env))) {
        vmx_vmfail(env, VMXERR_VMPTRLD_BAD_REVISION);
        return;
    }
    if (addr != env->vmx.current_vmcs) {
        vmcs_flush(env);
        vmcs_load(env, addr);
        env->vmx.current_vmcs = addr;
    }
    trace_vmx_vmptrld(env_cpu(env)->cpu_index, addr);
    vmx_vmsucceed(env);
}

void helper_vmx_vmptrst(CPUX86State *env, target_ulong a0, uint32_t ops)
{
    uintptr_t ra = GETPC();

    vmx_insn_check(env, VMX_EXIT_VMPTRST, ra);
    check_operand_address(env, a0, 8, ops, ra);
    cpu_stq_data_ra(env, a0, env->vmx.current_vmcs, ra);
    vmx_vmsucceed(env);
}

/* ---- VMREAD / VMWRITE -------------------------------------------------- */


/*
 * Find the field a VMREAD/VMWRITE names, or fail with error 12.  In 64-bit
 * mode the encoding register is 64 bits wide; bits 63:32 must be clear.
 */
static int vmx_field_operand(CPUX86State *env, uint32_t info)
{
    uint64_t enc = env->regs[VMX_OPINFO_REG(info)];
    int id;

    if (!in_64bit_mode(env)) {
        enc = (uint32_t)enc;
    }
    id = enc >> 32 ? -1 : vmcs_field_lookup((uint32_t)enc);
    if (id < 0 || !vmx_cpu_has_field(env, id)) {
        vmx_fail_valid(env, VMXERR_UNSUPPORTED_COMPONENT);
        return -1;
    }
    return id;
}

/*
 * VMREAD/VMWRITE after their operand checks: VMfailInvalid without a
 * current VMCS, VMfailValid(12) for a field the model does not have.
 * Returns the field's encoding, or -1 once the instruction has failed.
 */
static int64_t vmcs_field_checked(CPUX86State *env, uint32_t info)
{
    if (env->vmx.current_vmcs == VMCS_PTR_INVALID) {
        vmx_vmfail_invalid(env);
        return -1;
    }
    if (vmx_field_operand(env, info) < 0) {
        return -1;
    }
    return (uint32_t)env->regs[VMX_OPINFO_REG(info)];
}

/*
 * VMREAD's destination and VMWRITE's source: a register, or memory of
 * the operand size (64 bits in 64-bit mode, else 32).
 */
static void rm_operand_store(CPUX86State *env, target_ulong a0, uint32_t info,
                             uint64_t val, uintptr_t ra)
{
    bool long_op = in_64bit_mode(env);

    if (info & VMX_OPINFO_RM_IS_REG) {
        env->regs[VMX_OPINFO_RM(info)] = long_op ? val : (uint32_t)val;
    } else if (long_op) {
        check_operand_address(env, a0, 8, info, ra);
        cpu_stq_data_ra(env, a0, val, ra);
    } else {
        cpu_stl_data_ra(env, a0, (uint32_t)val, ra);
    }
}

static uint64_t rm_operand_load(CPUX86State *env, target_ulong a0, uint32_t info,
                                uintptr_t ra)
{
    bool long_op = in_64bit_mode(env);
    uint64_t val;

    if (info & VMX_OPINFO_RM_IS_REG) {
        val = env->regs[VMX_OPINFO_RM(info)];
    } else if (long_op) {
        check_operand_address(env, a0, 8, info, ra);
        val = cpu_ldq_data_ra(env, a0, ra);
    } else {
        val = cpu_ldl_data_ra(env, a0, ra);
    }
    return long_op ? val : (uint32_t)val;
}

/* ---- VMCS shadowing (25.10, 31.3 VMREAD/VMWRITE) ----------------------- */

/*
 * VMREAD/VMWRITE up to their VMCS accesses: #UD, then in non-root
 * operation a VM exit unless "VMCS shadowing" is 1, the encoding has
 * bits 63:15 (31:15 outside 64-bit mode) clear and its bit 14:0 in the
 * VMREAD/VMWRITE bitmap is clear; then #GP(0) above CPL 0.  Returns true
 * if the instruction goes to the shadow VMCS the link pointer references.
 */
static bool vmx_rw_check(CPUX86State *env, uint32_t exit_reason, uint32_t info,
                         uintptr_t ra)
{
    uint64_t enc = env->regs[VMX_OPINFO_REG(info)];
    uint64_t bitmap;

    vmx_insn_ud_check(env, ra);
    if (env->vmx.non_root) {
        if (!in_64bit_mode(env)) {
            enc = (uint32_t)enc;
        }
        if (!(vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_SHADOW_VMCS) || (enc >> 15)) {
            vmx_operand_exit(env, exit_reason, ra);
        }
        bitmap = exit_reason == VMX_EXIT_VMREAD ? VMCS(env, VMREAD_BITMAP) :
                                                  VMCS(env, VMWRITE_BITMAP);
        if (x86_ldub_phys(env_cpu(env), bitmap + (enc >> 3)) & (1u << (enc & 7))) {
            vmx_operand_exit(env, exit_reason, ra);
        }
    }
    if (env->hflags & HF_CPL_MASK) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    return env->vmx.non_root;
}

/*
 * The field a shadowed VMREAD/VMWRITE names, in the VMCS the link
 * pointer references: VMfailInvalid if the link pointer is not valid,
 * VMfailValid(12) (in the current VMCS) for a field the model does not
 * have.  Returns the slot's physical address, or 0 once the instruction
 * has failed.
 */
static hwaddr shadow_field_slot(CPUX86State *env, uint32_t info)
{
    uint64_t link = VMCS(env, VMCS_LINK_POINTER);
    int id;

    if (link == ~0ull) {
        vmx_vmfail_invalid(env);
        return 0;
    }
    id = vmx_field_operand(env, info);
    if (id < 0) {
        return 0;
    }
    return link + VMCS_OFF_FIELDS + 8 * id;
}

/* ---- VMREAD / VMWRITE -------------------------------------------------- */

void helper_vmx_vmread(CPUX86State *env, target_ulong a0, uint32_t info)
{
    uintptr_t ra = GETPC();
    CPUState *cs = env_cpu(env);
    uint64_t val;
    int64_t enc;
    hwaddr slot;

    if (vmx_rw_check(env, VMX_EXIT_VMREAD, info, ra)) {
        slot = shadow_field_slot(env, info);
        if (!slot) {
            return;
        }
        enc = (uint32_t)env->regs[VMX_OPINFO_REG(info)];
        val = vmcs_slot_read(x86_ldq_phys(cs, slot), enc);
    } else {
        enc = vmcs_field_checked(env, info);
        if (enc < 0) {
            return;
        }
        val = vmcs_read(&env->vmx.vmcs, enc);
    }
    rm_operand_store(env, a0, info, val, ra);
    vmx_vmsucceed(env);
}

void helper_vmx_vmwrite(CPUX86State *env, target_ulong a0, uint32_t info)
{
    uintptr_t ra = GETPC();
    CPUState *cs = env_cpu(env);
    bool shadowed;
    uint64_t val;
    int64_t enc;
    hwaddr slot = 0;

    shadowed = vmx_rw_check(env, VMX_EXIT_VMWRITE, info, ra);
    /* The source operand is read before the VMCS checks (it may fault). */
    val = rm_operand_load(env, a0, info, ra);
    if (shadowed) {
        slot = shadow_field_slot(env, info);
        if (!slot) {
            return;
        }
        enc = (uint32_t)env->regs[VMX_OPINFO_REG(info)];
    } else {
        enc = vmcs_field_checked(env, info);
        if (enc < 0) {
            return;
        }
    }
    if (vmcs_is_exit_info(enc) &&
        !(vmx_cap_msr(env, MSR_IA32_VMX_MISC) & MSR_VMX_MISC_VMWRITE_VMEXIT)) {
        vmx_fail_valid(env, VMXERR_VMWRITE_READ_ONLY);
        return;
    }
    if (shadowed) {
        x86_stq_phys(cs, slot, vmcs_slot_write(x86_ldq_phys(cs, slot), enc, val));
    } else {
        vmcs_write(&env->vmx.vmcs, enc, val);
    }
    vmx_vmsucceed(env);
}

/* ---- VMCALL, VMLAUNCH, VMRESUME ---------------------------------------- */

void helper_vmx_vmcall(CPUX86State *env)
{
    /* 31.3 VMCALL: the VM exit comes before the mode checks. */
    if (env->vmx.non_root) {
        vmx_vmexit(env, VMX_EXIT_VMCALL, 0, GETPC());
    }
    vmx_insn_check(env, VMX_EXIT_VMCALL, GETPC());
    /* No dual-monitor treatment of SMIs: VMfail(VMCALL in root). */
    vmx_vmfail(env, VMXERR_VMCALL_IN_ROOT);
}

void helper_vmx_vmlaunch(CPUX86State *env, uint32_t resume)
{
    uintptr_t ra = GETPC();

    vmx_insn_check(env, resume ? VMX_EXIT_VMRESUME : VMX_EXIT_VMLAUNCH, ra);
    /* 27.1: the basic checks, named like those of vmx-entry.c. */
    vmx_entry_checks_begin(env);
    if (VMX_CHECK(env, "27.1", env->vmx.current_vmcs == VMCS_PTR_INVALID)) {
        vmx_entry_fail_report(env, VMX_ENTRY_FAIL_VMFAIL_INVALID, 0, 0);
        vmx_vmfail_invalid(env);
        return;
    }
    if (VMX_CHECK(env, "27.1",
                  vmcs_region_revision(env, env->vmx.current_vmcs) & VMCS_REV_SHADOW)) {
        /* 31.3: the current VMCS is a shadow VMCS. */
        vmx_entry_fail_report(env, VMX_ENTRY_FAIL_VMFAIL_INVALID, 0, 0);
        vmx_vmfail_invalid(env);
        return;
    }
    if (VMX_CHECK(env, "27.1", env->hflags & HF_INHIBIT_IRQ_MASK)) {
        /* 31.3: blocking by MOV SS is checked first (error 26). */
        vmx_entry_fail_report(env, VMX_ENTRY_FAIL_VMFAIL, VMXERR_ENTRY_MOV_SS_BLOCKING, 0);
        vmx_fail_valid(env, VMXERR_ENTRY_MOV_SS_BLOCKING);
        return;
    }
    if (VMX_CHECK(env, "27.1", !resume && env->vmx.launch_state != VMCS_LAUNCH_CLEAR)) {
        vmx_entry_fail_report(env, VMX_ENTRY_FAIL_VMFAIL, VMXERR_VMLAUNCH_NONCLEAR, 0);
        vmx_fail_valid(env, VMXERR_VMLAUNCH_NONCLEAR);
        return;
    }
    if (VMX_CHECK(env, "27.1", resume && env->vmx.launch_state != VMCS_LAUNCH_LAUNCHED)) {
        vmx_entry_fail_report(env, VMX_ENTRY_FAIL_VMFAIL, VMXERR_VMRESUME_NONLAUNCHED, 0);
        vmx_fail_valid(env, VMXERR_VMRESUME_NONLAUNCHED);
        return;
    }
    vmx_vm_entry(env, resume, ra);
}

/* ---- INVEPT / INVVPID (31.3) ------------------------------------------- */

/*
 * INVEPT/INVVPID up to their type: #UD unless the model offers the
 * instruction, then the checks every VMX instruction makes; the type is
 * the register operand (32 bits outside 64-bit mode).
 */
static uint64_t inv_type(CPUX86State *env, bool offered, uint32_t exit_reason,
                         uint32_t reg, uintptr_t ra)
{
    if (!offered) {
        raise_exception_ra(env, EXCP06_ILLOP, ra);
    }
    vmx_insn_check(env, exit_reason, ra);
    reg &= ~VMX_OPERAND_SS;
    return in_64bit_mode(env) ? env->regs[reg] : (uint32_t)env->regs[reg];
}

/*
 * ... and their 128-bit descriptor at @a0, read whole once the type is
 * known good.  Its segment is SS if the translator marked @reg so: in
 * 64-bit mode a non-canonical address is then #SS(0), else #GP(0) (SDM
 * Vol. 3C 31.3, "64-Bit Mode Exceptions"), before anything is read.
 */
static void inv_descriptor(CPUX86State *env, target_ulong a0, uint32_t reg,
                           uintptr_t ra, uint64_t desc[2])
{
    check_operand_address(env, a0, 16, reg & VMX_OPERAND_SS, ra);
    desc[0] = cpu_ldq_data_ra(env, a0, ra);
    desc[1] = cpu_ldq_data_ra(env, a0 + 8, ra);
}

void helper_vmx_invept(CPUX86State *env, target_ulong a0, uint32_t reg)
{
    uintptr_t ra = GETPC();
    uint64_t cap = vmx_ept_vpid_caps(env);
    uint64_t type, desc[2];

    type = inv_type(env, cap & MSR_VMX_EPT_INVEPT, VMX_EXIT_INVEPT, reg, ra);
    if (!((type == 1 && (cap & MSR_VMX_EPT_INVEPT_SINGLE_CONTEXT)) ||
          (type == 2 && (cap & MSR_VMX_EPT_INVEPT_ALL_CONTEXT)))) {
        vmx_vmfail(env, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    inv_descriptor(env, a0, reg, ra, desc);
    if (type == 1 && !vmx_eptp_valid(env, desc[0])) {
        vmx_vmfail(env, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    /* Guest mappings are not tagged by EPTP here: invalidate them all. */
    if (!vmx_mutated(VMX_MUTATE_INVEPT_NOOP)) {
        vmx_invalidate_guest_tlb(env);
        vmx_ept_gpa_flush(env);
    }
    vmx_vmsucceed(env);
}

void helper_vmx_invvpid(CPUX86State *env, target_ulong a0, uint32_t reg)
{
    uintptr_t ra = GETPC();
    uint64_t cap = vmx_ept_vpid_caps(env);
    uint64_t type, desc[2];
    uint16_t vpid;

    type = inv_type(env, cap & MSR_VMX_EPT_INVVPID, VMX_EXIT_INVVPID, reg, ra);
    if (type > 3 || !(cap & (MSR_VMX_EPT_INVVPID_SINGLE_ADDR << type))) {
        vmx_vmfail(env, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    inv_descriptor(env, a0, reg, ra, desc);
    vpid = desc[0];
    if ((desc[0] >> 16) || (type != 2 && vpid == 0) ||
        (type == 0 && !vmx_canonical(env, desc[1]))) {
        vmx_vmfail(env, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    /* VPIDs do not tag TCG's TLB: invalidating more is architecturally fine. */
    vmx_invalidate_guest_tlb(env);
    vmx_vmsucceed(env);
}

/* ---- RDTSCP and RDPID in non-root operation (25.3) ---------------------- */

void helper_vmx_rdtscp(CPUX86State *env, uint32_t rdtscp)
{
    if (!env->vmx.non_root) {
        return;
    }
    if (!(vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_RDTSCP)) {
        raise_exception_ra(env, EXCP06_ILLOP, GETPC());
    }
    if (rdtscp) {
        env->vmx.xlat.info = VMX_INTERCEPT_RDTSCP;  /* for the RDTSC intercept */
    }
}

/* ---- control registers in VMX operation -------------------------------- */


/* 28.2.1, Table 28-3: exit qualification for a MOV to/from CR. */
static G_NORETURN void cr_access_exit(CPUX86State *env, int cr, int access, uintptr_t ra)
{
    vmx_vmexit(env, VMX_EXIT_CR_ACCESS,
               cr | (access << 4) | (vmx_intercept_gpr(env) << 8), ra);
}

/*
 * LMSW in non-root operation (26.1.3, 25.3): exit if the source sets PE
 * where the host owns PE and the read shadow has it clear, or differs
 * from the read shadow in a host-owned bit of MP, EM, TS.  Qualification
 * (28.2.1): access type 3, bit 6 for a memory operand (its linear address
 * in the guest-linear address field), the source in bits 31:16.
 * Otherwise only the guest-owned bits of 3:0 change, and PE is never
 * cleared.  Returns CR0's new value.
 */
static target_ulong lmsw_write(CPUX86State *env, uintptr_t ra)
{
    uint64_t mask = VMCS(env, CR0_GUEST_HOST_MASK) & 0xf;
    uint64_t shadow = VMCS(env, CR0_READ_SHADOW);
    uint32_t src = env->vmx.xlat.lmsw_src & 0xffff;
    bool mem = ((env->vmx.xlat.info >> 6) & 3) != 3;
    target_ulong cr0 = env->cr[0];

    if (((mask & 1) && (src & 1) && !(shadow & 1)) || (mask & 0xe & (src ^ shadow))) {
        if (mem) {
            VMCS(env, GUEST_LINEAR_ADDRESS) = in_64bit_mode(env) ? env->vmx.xlat.addr :
                                              (uint32_t)env->vmx.xlat.addr;
        }
        vmx_vmexit(env, VMX_EXIT_CR_ACCESS,
                   0 | (3 << 4) | (mem ? 1 << 6 : 0) | ((uint64_t)src << 16), ra);
    }
    return (cr0 & ~(0xf & ~mask)) | (src & 0xf & ~mask) | (cr0 & CR0_PE_MASK);
}

/*
 * CLTS in non-root operation (26.1.3, 25.3): with TS owned by the host,
 * an exit if the read shadow has TS set (access type 2), else nothing
 * changes.  Returns true if handled here (no return for the exit).
 */
bool vmx_clts(CPUX86State *env, uintptr_t ra)
{
    if (!env->vmx.non_root || !(VMCS(env, CR0_GUEST_HOST_MASK) & CR0_TS_MASK)) {
        return false;
    }
    if (VMCS(env, CR0_READ_SHADOW) & CR0_TS_MASK) {
        vmx_vmexit(env, VMX_EXIT_CR_ACCESS, 0 | (2 << 4), ra);
    }
    return true;
}

/* LMSW (0F 01 /6) reaches helper_write_crN like MOV to CR0 does. */
static bool is_lmsw(CPUX86State *env)
{
    return ((env->vmx.xlat.info >> 3) & 7) == 6;
}

/*
 * MOV to CR0/CR3/CR4/CR8.  Root operation: the FIXED0/FIXED1 rules
 * (24.8), #GP(0) otherwise.  Non-root operation: exit where 26.1.3 says
 * so; else bits owned by the host (set in the guest/host mask) keep their
 * value.  Returns the value to write.
 */
static target_ulong cr_write_nonroot(CPUX86State *env, int reg, target_ulong val,
                                     uintptr_t ra);

target_ulong vmx_cr_write(CPUX86State *env, int reg, target_ulong val, uintptr_t ra)
{
    uint32_t fixed0, fixed1;

    if (!env->vmx.vmxon) {
        return val;
    }
    if (!env->vmx.non_root) {
        if (reg != 0 && reg != 4) {
            return val;
        }
        fixed0 = reg == 0 ? MSR_IA32_VMX_CR0_FIXED0 : MSR_IA32_VMX_CR4_FIXED0;
        fixed1 = reg == 0 ? MSR_IA32_VMX_CR0_FIXED1 : MSR_IA32_VMX_CR4_FIXED1;
        if (!vmx_cr_fixed_ok(val, vmx_cap_msr(env, fixed0), vmx_cap_msr(env, fixed1))) {
            raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
        }
        return val;
    }
    val = cr_write_nonroot(env, reg, val, ra);
    if (reg != 8) {
        /*
         * The write goes ahead (no exit): the CPU reloads its PDPTEs from
         * CR3's table; TCG's walker reads the table itself from now on.
         */
        env->vmx.ept.pdptes_loaded = false;
    }
    return val;
}

/* vmx_cr_write() in non-root operation: an exit, or the value to write. */
static target_ulong cr_write_nonroot(CPUX86State *env, int reg, target_ulong val,
                                     uintptr_t ra)
{
    uint32_t fixed0, fixed1;
    uint64_t mask, shadow;
    int i, n;

    if (reg == 0 && is_lmsw(env)) {
        return lmsw_write(env, ra);
    }
    switch (reg) {
    case 0:
    case 4:
        mask = reg == 0 ? VMCS(env, CR0_GUEST_HOST_MASK) : VMCS(env, CR4_GUEST_HOST_MASK);
        shadow = reg == 0 ? VMCS(env, CR0_READ_SHADOW) : VMCS(env, CR4_READ_SHADOW);
        if ((val ^ shadow) & mask) {
            cr_access_exit(env, reg, 0, ra);
        }
        val = (val & ~mask) | (env->cr[reg] & mask);
        /* 25.3: guest-owned bits obey FIXED0/1, but for PE/PG when unrestricted. */
        fixed0 = reg == 0 ? MSR_IA32_VMX_CR0_FIXED0 : MSR_IA32_VMX_CR4_FIXED0;
        fixed1 = reg == 0 ? MSR_IA32_VMX_CR0_FIXED1 : MSR_IA32_VMX_CR4_FIXED1;
        if (!vmx_cr_fixed_ok(val, vmx_cap_msr(env, fixed0) &
                             ~(reg == 0 && vmx_unrestricted_guest(env) ?
                               CR0_PE_MASK | CR0_PG_MASK : 0),
                             vmx_cap_msr(env, fixed1))) {
            raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
        }
        return val;
    case 3:
        if (!(VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_CR3_LOAD_EXITING)) {
            return val;
        }
        n = VMCS(env, CR3_TARGET_COUNT);
        for (i = 0; i < n && i < 4; i++) {
            if (env->vmx.vmcs.f[VMCS_ID_CR3_TARGET_VALUE0 + i] == val) {
                return val;
            }
        }
        cr_access_exit(env, 3, 0, ra);
    case 8:
        if (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_CR8_LOAD_EXITING) {
            cr_access_exit(env, 8, 0, ra);
        }
        return val;
    }
    return val;
}

/* MOV from CR in non-root: CR3/CR8-store exiting; CR0/CR4 read shadows. */
target_ulong helper_vmx_read_cr(CPUX86State *env, uint32_t reg)
{
    uintptr_t ra = GETPC();
    uint64_t mask, shadow;

    if (!env->vmx.non_root) {
        return env->cr[reg];
    }
    switch (reg) {
    case 0:
    case 4:
        mask = reg == 0 ? VMCS(env, CR0_GUEST_HOST_MASK) : VMCS(env, CR4_GUEST_HOST_MASK);
        shadow = reg == 0 ? VMCS(env, CR0_READ_SHADOW) : VMCS(env, CR4_READ_SHADOW);
        return (env->cr[reg] & ~mask) | (shadow & mask);
    case 3:
        if (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_CR3_STORE_EXITING) {
            cr_access_exit(env, 3, 1, ra);
        }
        return env->cr[3];
    }
    return env->cr[reg];
}

/*
 * INVPCID (SDM Vol. 2A; in VMX non-root operation 26.1.2/26.1.3).  TCG
 * keeps no PCIDs: type 0 flushes the address in every address space,
 * the other types flush everything, which covers what each must drop.
 */
void helper_vmx_invpcid(CPUX86State *env, target_ulong addr, uint32_t reg,
                        uint32_t info, target_ulong disp)
{
    uintptr_t ra = GETPC();
    CPUState *cs = env_cpu(env);
    uint64_t type, desc_lo, desc_hi;
    int la_bits = (env->cr[4] & CR4_LA57_MASK) ? 57 : 48;

    if ((env->eflags & VM_MASK) ||
        (env->vmx.non_root &&
         !(vmx_secondary_ctls(env) & VMX_SECONDARY_EXEC_ENABLE_INVPCID))) {
        raise_exception_ra(env, EXCP06_ILLOP, ra);
    }
    if (env->hflags & HF_CPL_MASK) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    if (env->vmx.non_root &&
        (VMCS(env, CPU_BASED_VM_EXEC_CONTROL) & VMX_CPU_BASED_INVLPG_EXITING)) {
        env->vmx.exit.insn_info = info;
        vmx_vmexit(env, VMX_EXIT_INVPCID, disp, ra);
    }
    type = (env->hflags & HF_CS64_MASK) ? env->regs[reg] : (uint32_t)env->regs[reg];
    if (type > 3) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    desc_lo = cpu_ldq_data_ra(env, addr, ra);
    desc_hi = cpu_ldq_data_ra(env, addr + 8, ra);
    /*
     * Bits 63:12 of the descriptor are reserved; PCID is bits 11:0; the
     * type-0 address must be canonical for the current paging mode.
     */
    if ((desc_lo >> 12) ||
        (type == 0 &&
         (int64_t)(desc_hi << (64 - la_bits)) >> (64 - la_bits) != (int64_t)desc_hi) ||
        (type <= 1 && (desc_lo & 0xfff) && !(env->cr[4] & CR4_PCIDE_MASK))) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    if (type == 0) {
        tlb_flush_page(cs, desc_hi);
    } else {
        tlb_flush(cs);
    }
}
