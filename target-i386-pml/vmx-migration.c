/*
 * qemu-pml: VMX state in the migration stream (and savevm/loadvm).
 *
 * QEMU plumbing: it implements no architecture.  What it carries is the
 * state the SDM keeps inside the processor (VMX operation, the VMXON
 * pointer, the current-VMCS pointer and its cached copy), which a real
 * CPU never migrates.
 *
 * A "cpu/vmx" subsection of the x86 CPU state (patch 0011), sent only
 * while the vCPU is in VMX operation, carries VMX operation, root or
 * non-root, the VMXON region, the current-VMCS pointer and its cached
 * copy.  hflags/hflags2 (HF_GUEST_MASK, HF2_NPT_MASK) travel already.
 * In non-root operation a "cpu/vmx/events" subsection adds the event
 * state of vmx-events.c that is not in the VMCS (when there is some), and
 * "cpu/vmx/apic" / "cpu/vmx/apicv" that of vmx-apic.c.
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "migration/vmstate.h"
#include "vmx.h"
#include "vmx-stats.h"

static bool vmx_state_needed(void *opaque)
{
    X86CPU *cpu = opaque;

    return cpu->env.vmx.vmxon;
}

/*
 * Before the subsections: a stream without "cpu/vmx/apicv" (older, or a
 * VTPR write) has any pending virtualized write at VTPR and no recognized
 * virtual interrupt.
 */
static int vmx_state_pre_load(void *opaque)
{
    X86CPU *cpu = opaque;

    cpu->env.vmx.apic.write_offset = 0x80;
    cpu->env.vmx.apic.virq = false;
    return 0;
}

static int vmx_state_post_load(void *opaque, int version_id)
{
    X86CPU *cpu = opaque;
    CPUX86State *env = &cpu->env;

    if (env->vmx.launch_state > VMCS_LAUNCH_LAUNCHED ||
        (env->vmx.non_root && !env->vmx.vmxon) ||
        (env->vmx.sig.wait_sipi && !env->vmx.non_root)) {
        return -EINVAL;
    }
    /* Interrupt-window exiting is an interrupt request: re-arm it. */
    if (vmx_intr_window_open(env) ||
        (env->vmx.non_root &&
         (env->vmx.vmcs.f[VMCS_ID_CPU_BASED_VM_EXEC_CONTROL] &
          VMX_CPU_BASED_VIRTUAL_INTR_PENDING))) {
        qatomic_or(&CPU(cpu)->interrupt_request, CPU_INTERRUPT_VIRQ);
    }
    vmx_events_post_load(env);
    return 0;
}

/*
 * Non-root event state that neither the VMCS nor hflags hold: blocking by
 * NMI under NMI exiting, a pending MTF exit or debug exception, HLT.
 */
static bool vmx_events_needed(void *opaque)
{
    X86CPU *cpu = opaque;
    VMXState *vmx = &cpu->env.vmx;

    return vmx->non_root && (vmx->ev.nmi_blocked || vmx->ev.mtf_pending || vmx->xlat.insn_ran ||
                             vmx->ev.pending_dbg || vmx->ev.guest_hlt);
}

static const VMStateDescription vmstate_vmx_events = {
    .name = "cpu/vmx/events",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vmx_events_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(env.vmx.ev.nmi_blocked, X86CPU),
        VMSTATE_BOOL(env.vmx.ev.mtf_pending, X86CPU),
        VMSTATE_UINT8(env.vmx.xlat.insn_ran, X86CPU),
        VMSTATE_UINT32(env.vmx.ev.pending_dbg, X86CPU),
        VMSTATE_BOOL(env.vmx.ev.guest_hlt, X86CPU),
        VMSTATE_END_OF_LIST()
    }
};

/* An INIT latched in VMX operation, the wait-for-SIPI state (vmx-signals.c). */
static bool vmx_signals_needed(void *opaque)
{
    X86CPU *cpu = opaque;

    return cpu->env.vmx.sig.init_pending || cpu->env.vmx.sig.wait_sipi;
}

static const VMStateDescription vmstate_vmx_signals = {
    .name = "cpu/vmx/signals",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vmx_signals_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(env.vmx.sig.init_pending, X86CPU),
        VMSTATE_BOOL(env.vmx.sig.wait_sipi, X86CPU),
        VMSTATE_END_OF_LIST()
    }
};

/* PDPTEs loaded by VM entry and still in use (PAE paging under EPT). */
static bool vmx_pdptes_needed(void *opaque)
{
    X86CPU *cpu = opaque;

    return cpu->env.vmx.non_root && cpu->env.vmx.ept.pdptes_loaded;
}

static const VMStateDescription vmstate_vmx_pdptes = {
    .name = "cpu/vmx/pdptes",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vmx_pdptes_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(env.vmx.ept.pdptes_loaded, X86CPU),
        VMSTATE_UINT64_ARRAY(env.vmx.ept.pdpte, X86CPU, 4),
        VMSTATE_END_OF_LIST()
    }
};

/* Pending debug exceptions waiting for the first instruction (MOV SS). */
static bool vmx_dbg_needed(void *opaque)
{
    X86CPU *cpu = opaque;

    return cpu->env.vmx.non_root && cpu->env.vmx.ev.dbg_after_insn;
}

static const VMStateDescription vmstate_vmx_dbg = {
    .name = "cpu/vmx/dbg-after-insn",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vmx_dbg_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(env.vmx.ev.dbg_after_insn, X86CPU),
        VMSTATE_END_OF_LIST()
    }
};

/* A VTPR write awaiting APIC-write emulation, or a TPR exit due (vmx-apic.c). */
static bool vmx_apic_needed(void *opaque)
{
    X86CPU *cpu = opaque;

    return cpu->env.vmx.non_root && (cpu->env.vmx.apic.vtpr_write || cpu->env.vmx.apic.tpr_exit_due);
}

static const VMStateDescription vmstate_vmx_apic = {
    .name = "cpu/vmx/apic",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vmx_apic_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(env.vmx.apic.vtpr_write, X86CPU),
        VMSTATE_BOOL(env.vmx.apic.tpr_exit_due, X86CPU),
        VMSTATE_END_OF_LIST()
    }
};

/*
 * APIC virtualization beyond VTPR: the page offset of a virtualized write
 * awaiting APIC-write emulation, and a recognized virtual interrupt
 * (30.2.1; evaluation is not repeated until its next trigger).  RVI/SVI
 * travel in the VMCS, VIRR/VISR/VPPR in guest memory.
 */
static bool vmx_apicv_needed(void *opaque)
{
    X86CPU *cpu = opaque;
    VMXState *vmx = &cpu->env.vmx;

    return vmx->non_root && (vmx->apic.virq || (vmx->apic.vtpr_write &&
                                                 (vmx->apic.write_offset & 0xff0) != 0x80));
}

static const VMStateDescription vmstate_vmx_apicv = {
    .name = "cpu/vmx/apicv",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vmx_apicv_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(env.vmx.apic.write_offset, X86CPU),
        VMSTATE_BOOL(env.vmx.apic.virq, X86CPU),
        VMSTATE_END_OF_LIST()
    }
};

const VMStateDescription vmstate_vmx = {
    .name = "cpu/vmx",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vmx_state_needed,
    .pre_load = vmx_state_pre_load,
    .post_load = vmx_state_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(env.vmx.vmxon, X86CPU),
        VMSTATE_BOOL(env.vmx.non_root, X86CPU),
        VMSTATE_UINT8(env.vmx.launch_state, X86CPU),
        VMSTATE_UINT64(env.vmx.vmxon_ptr, X86CPU),
        VMSTATE_UINT64(env.vmx.current_vmcs, X86CPU),
        VMSTATE_UINT64_ARRAY(env.vmx.vmcs.f, X86CPU, VMCS_NR_FIELDS),
        /* Two counters of vmx-stats.h, as they have always been sent. */
        VMSTATE_UINT64(env.vmx.stats_space.w[VMX_STATS_WORD(pml_entries)], X86CPU),
        VMSTATE_UINT64(env.vmx.stats_space.w[VMX_STATS_WORD(pml_full_exits)], X86CPU),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_vmx_events,
        &vmstate_vmx_signals,
        &vmstate_vmx_pdptes,
        &vmstate_vmx_apic,
        &vmstate_vmx_apicv,
        &vmstate_vmx_dbg,
        NULL
    }
};
