/*
 * qemu-pml: QMP query-pml-stats / reset-pml-stats and HMP "info pml".
 */
#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "cpu.h"
#include "hw/core/cpu.h"
#include "monitor/hmp.h"
#include "monitor/hmp-target.h"
#include "monitor/monitor.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-pml-target.h"
#include "qobject/qdict.h"
#include "vmx.h"
#include "vmx-internal.h"

static PmlVcpuStats *pml_vcpu_stats(CPUState *cs)
{
    CPUX86State *env = cpu_env(cs);
    PmlVcpuStats *s = g_new0(PmlVcpuStats, 1);
    uint64_t vmcs = qatomic_read(&env->vmx.current_vmcs);

    s->cpu_index = cs->cpu_index;
    s->vmx_operation = qatomic_read(&env->vmx.vmxon);
    s->non_root = qatomic_read(&env->vmx.non_root);
    s->entries = qatomic_read(&env->vmx.pml_entries);
    s->full_exits = qatomic_read(&env->vmx.pml_full_exits);
    if (s->vmx_operation && vmcs != VMCS_PTR_INVALID) {
        s->pml_enabled = vmx_pml_enabled(env);
        s->has_pml_index = true;
        s->pml_index = (uint16_t)env->vmx.vmcs.f[VMCS_ID_GUEST_PML_INDEX];
    }
    return s;
}

PmlStats *qmp_query_pml_stats(Error **errp)
{
    PmlStats *stats = g_new0(PmlStats, 1);
    PmlVcpuStatsList **tail = &stats->vcpus;
    CPUState *cs;

    CPU_FOREACH(cs) {
        PmlVcpuStats *s = pml_vcpu_stats(cs);

        stats->entries += s->entries;
        stats->full_exits += s->full_exits;
        QAPI_LIST_APPEND(tail, s);
    }
    return stats;
}

void qmp_reset_pml_stats(Error **errp)
{
    CPUState *cs;

    CPU_FOREACH(cs) {
        CPUX86State *env = cpu_env(cs);

        qatomic_set(&env->vmx.pml_entries, 0);
        qatomic_set(&env->vmx.pml_full_exits, 0);
    }
}

void hmp_info_pml(Monitor *mon, const QDict *qdict)
{
    g_autoptr(PmlStats) stats = qmp_query_pml_stats(NULL);
    PmlVcpuStatsList *l;

    monitor_printf(mon, "vCPU  VMX  mode      PML  index  entries       full-exits\n");
    for (l = stats->vcpus; l; l = l->next) {
        PmlVcpuStats *s = l->value;
        char index[8] = "-";

        if (s->has_pml_index) {
            snprintf(index, sizeof(index), "%" PRId64, s->pml_index);
        }
        monitor_printf(mon, "%-4" PRId64 "  %-3s  %-8s  %-3s  %-5s  %-12" PRIu64
                       "  %" PRIu64 "\n", s->cpu_index, s->vmx_operation ? "on" : "off",
                       s->non_root ? "non-root" : (s->vmx_operation ? "root" : "-"),
                       s->pml_enabled ? "on" : "off", index, s->entries, s->full_exits);
    }
    monitor_printf(mon, "total entries %" PRIu64 ", PML-full exits %" PRIu64 "\n",
                   stats->entries, stats->full_exits);
}
