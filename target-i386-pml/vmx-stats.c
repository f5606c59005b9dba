/*
 * qemu-pml: per-vCPU VM-exit and log statistics (query-pml-stats).
 *
 * Instrumentation: it implements no architecture (exit reasons are those
 * of Intel SDM Vol. 3D, Appendix C, counted as they are delivered).
 *
 * A leaf of the VMX files: the exit path and the logging paths call in
 * here, and nothing here calls back.  The counters answer what a
 * working-set estimator costs the guest it measures: VM exits by basic
 * reason, the external-interrupt exits that were extended-PML
 * notifications, and the 64-byte lines of log memory written.
 */
#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/bitops.h"
#include "cpu.h"
#include "vmx.h"
#include "vmx-internal.h"
#include "vmx-stats.h"

/*
 * Vectors extended PML has sent notifications with, machine-wide: an
 * external-interrupt exit for one of them is counted as a notification
 * exit.  A hypervisor gives the notification a vector of its own (Xen:
 * one allocated for it), so this is exact unless it shares that vector.
 */
static unsigned long notify_vectors[BITS_TO_LONGS(256)];

void vmx_stats_notify_vector(uint8_t vector)
{
    if (!test_bit(vector, notify_vectors)) {
        set_bit_atomic(vector, notify_vectors);
    }
}

void vmx_stats_exit(CPUX86State *env, uint32_t reason, uint32_t intr_info)
{
    uint32_t basic = reason & 0xffff;

    if (basic < VMX_STATS_REASONS) {
        vmx_stats_count(&vmx_stats(env)->exits[basic]);
    }
    /* With "acknowledge interrupt on exit" the vector is in the info. */
    if (basic == VMX_EXIT_EXTERNAL_INTERRUPT && (intr_info & VMX_INTR_INFO_VALID) &&
        test_bit(intr_info & 0xff, notify_vectors)) {
        vmx_stats_count(&vmx_stats(env)->notify_exits);
    }
}

void vmx_stats_log_line(CPUX86State *env)
{
    vmx_stats_count(&vmx_stats(env)->log_lines);
}

/* reset-pml-stats: every counter back to 0 (the monitor, vCPUs running). */
void vmx_stats_reset(CPUX86State *env)
{
    for (size_t i = 0; i < ARRAY_SIZE(env->vmx.stats_space.w); i++) {
        qatomic_set(&env->vmx.stats_space.w[i], 0);
    }
}
