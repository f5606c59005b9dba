/*
 * qemu-pml: INIT and SIPI in VMX operation (Intel SDM Vol. 3C 26.2 and
 * 26.6.2 for non-root operation, 24.8 and 33.2 for root operation).
 *
 * - VMX root operation blocks INIT (SDM 24.8 / 33.2): the signal is
 *   latched, and acted on when VMXOFF leaves VMX operation, or as a VM
 *   exit right after the next VM entry.
 * - In VMX non-root operation an INIT causes a VM exit (26.2, reason 3,
 *   qualification 0) and is consumed by it.
 * - The wait-for-SIPI activity state (24.4.2, entered only by VM entry)
 *   blocks external interrupts, NMIs, INIT and SMIs (26.6.2); a SIPI then
 *   causes a VM exit (reason 4, qualification: the SIPI's vector) and the
 *   saved activity state is still wait-for-SIPI.  A SIPI that finds the
 *   guest active or halted, or the processor in root operation, is
 *   discarded.
 *
 * QEMU raises CPU_INTERRUPT_INIT and CPU_INTERRUPT_SIPI from the APIC;
 * do_cpu_init() and do_cpu_sipi() ask here first (patch 0021), the INIT
 * intercept point asks vmx_init_signal(), and x86_cpu_pending_interrupt
 * filters through vmx_signals_filter().
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "hw/i386/apic_internal.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "trace.h"

/* The INIT intercept point in non-root operation: VM exit, unless blocked. */
void vmx_init_signal(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    if (env->vmx.sig.wait_sipi) {
        return;                 /* blocked: vmx_init_blocked() latches it */
    }
    cs->interrupt_request &= ~CPU_INTERRUPT_INIT;
    env->vmx.sig.init_pending = false;
    trace_vmx_signal(cs->cpu_index, "INIT", "VM exit");
    vmx_vmexit(env, VMX_EXIT_INIT, 0, 0);
}

bool vmx_init_blocked(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    if (!env->vmx.vmxon) {
        return false;
    }
    cs->interrupt_request &= ~CPU_INTERRUPT_INIT;
    env->vmx.sig.init_pending = true;
    trace_vmx_signal(cs->cpu_index, "INIT", "latched (blocked)");
    return true;
}

bool vmx_sipi_signal(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);
    int vector;

    if (!env->vmx.vmxon) {
        return false;
    }
    if (!env->vmx.non_root || !env->vmx.sig.wait_sipi) {
        trace_vmx_signal(cs->cpu_index, "SIPI", "discarded");
        return true;
    }
    vector = APIC_COMMON(X86_CPU(cs)->apic_state)->sipi_vector & 0xff;
    trace_vmx_signal(cs->cpu_index, "SIPI", "VM exit");
    cs->halted = 0;
    vmx_vmexit(env, VMX_EXIT_SIPI, vector, 0);
}

/*
 * Leaving VMX operation (VMXOFF) or VM entry into an active or halted
 * guest: a latched INIT is raised again, so that the next instruction
 * boundary handles it (a reset after VMXOFF, a VM exit after an entry).
 */
void vmx_release_init(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    if (!env->vmx.sig.init_pending || env->vmx.sig.wait_sipi) {
        return;
    }
    env->vmx.sig.init_pending = false;
    qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_INIT);
    cpu_exit(cs);
}

/* VM entry with activity state wait-for-SIPI (26.6.2): sleep until a SIPI. */
G_NORETURN void vmx_enter_wait_sipi(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    env->vmx.sig.wait_sipi = true;
    cs->halted = 1;
    cs->exception_index = EXCP_HLT;
    cpu_loop_exit(cs);
}
