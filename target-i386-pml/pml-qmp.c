/*
 * qemu-pml: QMP query-pml-stats / reset-pml-stats / query-vmx-last-failure
 * and HMP "info pml".
 *
 * Monitor glue: it implements no architecture, only reports the per-vCPU
 * counters of the PML, extended-PML and exit paths (vmx-stats.c,
 * env->vmx) to management software.
 */
#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/seqlock.h"
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
#include "vmx-stats.h"

static PmlVcpuStats *pml_vcpu_stats(CPUState *cs)
{
    CPUX86State *env = cpu_env(cs);
    PmlVcpuStats *s = g_new0(PmlVcpuStats, 1);
    uint64_t vmcs = qatomic_read(&env->vmx.current_vmcs);
    VmxExitCountList **reasons = &s->exit_reasons;

    s->cpu_index = cs->cpu_index;
    s->vmx_operation = qatomic_read(&env->vmx.vmxon);
    s->non_root = qatomic_read(&env->vmx.non_root);
    s->entries = qatomic_read(&vmx_stats(env)->pml_entries);
    s->full_exits = qatomic_read(&vmx_stats(env)->pml_full_exits);
    s->reads = qatomic_read(&vmx_stats(env)->epml_reads);
    s->writes = qatomic_read(&vmx_stats(env)->epml_writes);
    s->walk_entries = qatomic_read(&vmx_stats(env)->epml_walk);
    s->filtered = qatomic_read(&vmx_stats(env)->epml_filtered);
    s->handovers = qatomic_read(&vmx_stats(env)->epml_handovers);
    s->notifications = qatomic_read(&vmx_stats(env)->epml_notifies);
    s->drops = qatomic_read(&vmx_stats(env)->epml_drops);
    s->posted = qatomic_read(&vmx_stats(env)->epml_posted);
    s->post_suppressed = qatomic_read(&vmx_stats(env)->epml_post_suppressed);
    s->notify_exits = qatomic_read(&vmx_stats(env)->notify_exits);
    s->log_lines = qatomic_read(&vmx_stats(env)->log_lines);
    for (int r = 0; r < VMX_STATS_REASONS; r++) {
        uint64_t n = qatomic_read(&vmx_stats(env)->exits[r]);

        if (n) {
            VmxExitCount *c = g_new0(VmxExitCount, 1);

            c->reason = r;
            c->count = n;
            QAPI_LIST_APPEND(reasons, c);
            s->exits += n;
        }
    }
    if (s->vmx_operation && vmcs != VMCS_PTR_INVALID) {
        s->pml_enabled = vmx_pml_enabled(env);
        s->has_pml_index = true;
        s->pml_index = (uint16_t)env->vmx.vmcs.f[VMCS_ID_GUEST_PML_INDEX];
        s->epml_enabled = vmx_epml_on(env);
        s->has_epml_active_buffer = s->has_epml_index = true;
        s->epml_active_buffer = (uint32_t)env->vmx.vmcs.f[VMCS_ID_GUEST_EPML_ACTIVE];
        s->epml_index = (uint32_t)env->vmx.vmcs.f[VMCS_ID_GUEST_EPML_INDEX];
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
        stats->reads += s->reads;
        stats->writes += s->writes;
        stats->walk_entries += s->walk_entries;
        stats->filtered += s->filtered;
        stats->handovers += s->handovers;
        stats->notifications += s->notifications;
        stats->drops += s->drops;
        stats->posted += s->posted;
        stats->post_suppressed += s->post_suppressed;
        stats->exits += s->exits;
        stats->notify_exits += s->notify_exits;
        stats->log_lines += s->log_lines;
        QAPI_LIST_APPEND(tail, s);
    }
    return stats;
}

void qmp_reset_pml_stats(Error **errp)
{
    CPUState *cs;

    CPU_FOREACH(cs) {
        vmx_stats_reset(cpu_env(cs));
    }
}

/* ---- query-vmx-last-failure: which VM-entry check failed ------------- */

static VmxLastFailure *vmx_last_failure(CPUState *cs)
{
    CPUX86State *env = cpu_env(cs);
    const struct vmx_entry_fail *f = &env->vmx.check.fail;
    VmxLastFailure *r = g_new0(VmxLastFailure, 1);
    struct vmx_entry_fail copy;
    unsigned start;

    /* The vCPU writes inside a sequence count: retry a torn copy. */
    do {
        start = seqlock_read_begin(&f->seq);
        copy = *f;
    } while (seqlock_read_retry(&f->seq, start));

    r->cpu_index = cs->cpu_index;
    r->failures = copy.count;
    if (copy.kind == VMX_ENTRY_FAIL_NONE) {
        return r;
    }
    r->rule = g_strdup(copy.rule);
    r->expression = g_strdup(copy.expr);
    r->has_result = true;
    switch (copy.kind) {
    case VMX_ENTRY_FAIL_VMFAIL_INVALID:
        r->result = VMX_ENTRY_FAILURE_RESULT_VMFAIL_INVALID;
        return r;
    case VMX_ENTRY_FAIL_VMFAIL:
        r->result = VMX_ENTRY_FAILURE_RESULT_VMFAIL;
        r->has_error = true;
        r->error = copy.number;
        break;
    default:
        r->result = VMX_ENTRY_FAILURE_RESULT_ENTRY_FAILURE;
        r->has_exit_reason = r->has_qualification = true;
        r->exit_reason = copy.number;
        r->qualification = copy.qual;
        break;
    }
    r->has_vmcs = true;
    r->vmcs = copy.vmcs;
    return r;
}

VmxLastFailureList *qmp_query_vmx_last_failure(Error **errp)
{
    VmxLastFailureList *list = NULL, **tail = &list;
    CPUState *cs;

    CPU_FOREACH(cs) {
        QAPI_LIST_APPEND(tail, vmx_last_failure(cs));
    }
    return list;
}

/* HMP: the last VM entry each vCPU failed, and the check that failed it. */
static void hmp_print_last_failures(Monitor *mon)
{
    g_autoptr(VmxLastFailureList) fails = qmp_query_vmx_last_failure(NULL);
    VmxLastFailureList *f;

    for (f = fails; f; f = f->next) {
        VmxLastFailure *v = f->value;
        char outcome[64];

        if (!v->has_result) {
            continue;
        }
        if (v->result == VMX_ENTRY_FAILURE_RESULT_VMFAIL) {
            snprintf(outcome, sizeof(outcome), "VMfailValid(%" PRId64 ")", v->error);
        } else if (v->result == VMX_ENTRY_FAILURE_RESULT_ENTRY_FAILURE) {
            snprintf(outcome, sizeof(outcome), "exit reason %" PRId64
                     " qualification 0x%" PRIx64, v->exit_reason, v->qualification);
        } else {
            snprintf(outcome, sizeof(outcome), "VMfailInvalid");
        }
        monitor_printf(mon, "vCPU %" PRId64 " last failed VM entry (of %" PRIu64
                       "): %s, rule %s: %s\n", v->cpu_index, v->failures, outcome,
                       v->rule, v->expression);
    }
}

void hmp_info_pml(Monitor *mon, const QDict *qdict)
{
    g_autoptr(PmlStats) stats = qmp_query_pml_stats(NULL);
    PmlVcpuStatsList *l;

    monitor_printf(mon, "vCPU  VMX  mode      PML  index  EPML  buf  index   entries     "
                   "reads       writes      walk        filtered    handovers  notify  "
                   "drops       full-exits\n");
    for (l = stats->vcpus; l; l = l->next) {
        PmlVcpuStats *s = l->value;
        char index[8] = "-", buf[4] = "-", eindex[12] = "-";

        if (s->has_pml_index) {
            snprintf(index, sizeof(index), "%" PRId64, s->pml_index);
        }
        if (s->has_epml_index) {
            snprintf(buf, sizeof(buf), "%" PRId64, s->epml_active_buffer & 1);
            snprintf(eindex, sizeof(eindex), "%" PRId64, s->epml_index);
        }
        monitor_printf(mon, "%-4" PRId64 "  %-3s  %-8s  %-3s  %-5s  %-4s  %-3s  %-6s  "
                       "%-10" PRIu64 "  %-10" PRIu64 "  %-10" PRIu64 "  %-10" PRIu64
                       "  %-10" PRIu64 "  %-9" PRIu64 "  %-6" PRIu64 "  %-10" PRIu64
                       "  %" PRIu64 "\n", s->cpu_index, s->vmx_operation ? "on" : "off",
                       s->non_root ? "non-root" : (s->vmx_operation ? "root" : "-"),
                       s->pml_enabled ? "on" : "off", index,
                       s->epml_enabled ? "on" : "off", buf, eindex,
                       s->entries, s->reads, s->writes, s->walk_entries, s->filtered,
                       s->handovers, s->notifications, s->drops, s->full_exits);
    }
    monitor_printf(mon, "total entries %" PRIu64 " (reads %" PRIu64 ", writes %" PRIu64
                   ", walk %" PRIu64 "), filtered %" PRIu64 ", handovers %" PRIu64
                   ", notifications %" PRIu64 ", drops %" PRIu64
                   ", PML-full exits %" PRIu64 "\n",
                   stats->entries, stats->reads, stats->writes, stats->walk_entries,
                   stats->filtered, stats->handovers, stats->notifications,
                   stats->drops, stats->full_exits);
    monitor_printf(mon, "posted notifications %" PRIu64 " (IPI sent), %" PRIu64
                   " suppressed (ON or SN set)\n", stats->posted, stats->post_suppressed);
    monitor_printf(mon, "VM exits %" PRIu64 " (notification interrupts %" PRIu64
                   "), log lines written %" PRIu64 "\n",
                   stats->exits, stats->notify_exits, stats->log_lines);
    for (l = stats->vcpus; l; l = l->next) {
        VmxExitCountList *c;

        if (!l->value->exits) {
            continue;
        }
        monitor_printf(mon, "vCPU %" PRId64 " exits by reason:", l->value->cpu_index);
        for (c = l->value->exit_reasons; c; c = c->next) {
            monitor_printf(mon, " %" PRId64 ":%" PRIu64, c->value->reason, c->value->count);
        }
        monitor_printf(mon, "\n");
    }
    hmp_print_last_failures(mon);
}
