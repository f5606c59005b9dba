/*
 * qemu-pml: stock page-modification logging (Intel SDM Vol. 3C 29.3.6).
 *
 * With "enable PML" and EPT accessed/dirty flags on (vmx_pml_enabled()),
 * the EPT walker (vmx-ept.c) calls vmx_pml_log() before it sets a leaf
 * entry's dirty flag: the guest-physical page goes into the 512-entry
 * log at PML_ADDRESS, which fills downwards from GUEST_PML_INDEX 511.
 * Once the index has wrapped below 0, the walk fails instead and the access
 * becomes a PML-full VM exit (vmx_ept_exit()).  Extended PML, which
 * replaces this log when on, is in vmx-epml.c.
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "vmx-stats.h"
#include "pml/trace.h"

/*
 * Log the guest-physical page @gpa whose EPT dirty flag is about to go
 * from 0 to 1.  Returns false if the log is full: the caller reports a
 * PML-full VM exit before the access happens.
 */
bool vmx_pml_log(CPUX86State *env, uint64_t gpa)
{
    uint16_t index = VMCS(env, GUEST_PML_INDEX);

    if (index > 511) {
        return false;
    }
    x86_stq_phys(env_cpu(env), VMCS(env, PML_ADDRESS) + 8 * index, gpa & ~0xfffull);
    VMCS(env, GUEST_PML_INDEX) = (uint16_t)(index - 1);
    if ((index & 7) == 7) {
        vmx_stats_log_line(env);    /* the log fills downwards: a new line */
    }
    vmx_stats_count(&vmx_stats(env)->pml_entries);
    trace_vmx_pml_log(env_cpu(env)->cpu_index, gpa & ~0xfffull, index);
    return true;
}

