/*
 * qemu-pml: which instructions and events cause VM exits in VMX non-root
 * operation (Intel SDM Vol. 3C chapter 26: 26.1 instructions, 26.2 other
 * causes, 26.4.2 task switches; the controls of 25.6 that select them).
 *
 * TCG already asks "would this intercept?" at every point SVM needs
 * (cpu_svm_check_intercept_param and friends, emitted while HF_GUEST_MASK
 * is set).  In VMX non-root operation those questions come here
 * (qemu-pml/patches/0009) and are answered with the VMX controls.  A yes
 * requests the VM exit (vmx_vmexit(), vmx-base.c); vmx-exit.c delivers it.
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/helper-proto.h"
#include "tcg/helper-tcg.h"
#include "hw/i386/apic.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "pml/trace.h"

/* ---- which events exit (chapter 26) ------------------------------------ */

/* The general register the intercepted instruction names (translator info). */
int vmx_intercept_gpr(CPUX86State *env)
{
    uint32_t info = env->vmx.xlat.info;

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
        env->vmx.ev.guest_hlt = true;      /* HLT runs: the guest halts */
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
        bool rdtscp = env->vmx.xlat.info == VMX_INTERCEPT_RDTSCP;

        env->vmx.xlat.info = 0;
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
            vmx_vmexit(env, VMX_EXIT_INVLPG, env->vmx.xlat.addr, ra);
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
            env->vmx.ev.pending_dbg = DR6_BS;
            vmx_vmexit(env, VMX_EXIT_MONITOR_TRAP, 0, ra);
        }
        if (!exits) {
            return;
        }
        env->vmx.exit.intr_info = VMX_INTR_INFO_VALID | vector |
            (vector == EXCP02_NMI ? VMX_INTR_TYPE_NMI : VMX_INTR_TYPE_HW_EXCEPTION);
        if (vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 ||
            vector == 21) {
            env->vmx.exit.intr_info |= VMX_INTR_INFO_DELIVER_CODE;
            env->vmx.exit.intr_err = param;
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

            if (vmx_sw_exception(vector, param >> 8) &&
                (VMCS(env, EXCEPTION_BITMAP) & (1u << vector))) {
                env->vmx.exit.intr_info = VMX_INTR_INFO_VALID |
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
                /* 30.6: the posted-interrupt notification does not exit. */
                vmx_apic_external_interrupt(env, vector);
                env->vmx.exit.intr_info = VMX_INTR_INFO_VALID |
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
            env->vmx.exit.intr_info = VMX_INTR_INFO_VALID | VMX_INTR_TYPE_NMI | 2;
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
    bits |= env->vmx.ev.pending_dbg & (DR6_BS | DR6_BD | 0xf);
    env->vmx.ev.pending_dbg = 0;
    if (!(VMCS(env, EXCEPTION_BITMAP) & (1u << EXCP01_DB))) {
        env->dr[6] |= bits;
        return;
    }
    trace_vmx_guest_exception(env_cpu(env)->cpu_index, EXCP01_DB, bits, env->eip,
                              env->cr[2], env->old_exception);
    env->dr[6] = old_dr6;
    env->vmx.exit.intr_info = VMX_INTR_INFO_VALID | VMX_INTR_TYPE_HW_EXCEPTION | EXCP01_DB;
    vmx_vmexit(env, VMX_EXIT_EXCEPTION_NMI, bits, 0);
}

/* RDRAND / RDSEED exiting (26.1.3): @info from the translator. */
void helper_vmx_rdrand(CPUX86State *env, uint32_t info)
{
    bool rdseed = info & (1u << 31);

    if (env->vmx.non_root &&
        (vmx_secondary_ctls(env) & (rdseed ? VMX_SECONDARY_EXEC_RDSEED_EXITING :
                                             VMX_SECONDARY_EXEC_RDRAND_EXITING))) {
        env->vmx.exit.insn_info = info & ~(1u << 31);
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
    env->vmx.exit.insn_info = ((uint32_t)(asize - 1) << 7) | ((uint32_t)seg << 15);
}

void vmx_check_io(CPUX86State *env, uint32_t port, uint32_t svm_param,
                  uintptr_t ra)
{
    uint32_t info = env->vmx.xlat.info;
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
    src = (env->vmx.exit.idt_vectoring & VMX_INTR_INFO_VALID) ? 3 : vmx_source[source % 3];
    vmx_vmexit(env, VMX_EXIT_TASK_SWITCH, (tss_selector & 0xffff) | ((uint64_t)src << 30), ra);
}
