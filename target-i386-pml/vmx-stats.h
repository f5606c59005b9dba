/*
 * qemu-pml: the per-vCPU counters behind query-pml-stats (vmx-stats.c).
 *
 * Instrumentation, not architecture.  The counters live in the space
 * VMXState reserves for them (env->vmx.stats_space, vmx-state.h), but
 * their layout is defined here, outside cpu.h's include path: adding or
 * changing a counter rebuilds only the files that include this header
 * (the ones that count, migrate or report), not every user of cpu.h.
 *
 * One writer per counter (its vCPU), readers in the monitor: writes go
 * through vmx_stats_count(), reads through qatomic_read().
 */
#ifndef PML_VMX_STATS_H
#define PML_VMX_STATS_H

#include "qemu/atomic.h"

#define VMX_STATS_REASONS 80    /* basic exit reasons counted one by one */

typedef struct VMXStats {
    /* PML and extended PML (vmx-pml.c, vmx-epml.c, vmx-ept.c). */
    uint64_t pml_entries;       /* entries written, stock and extended */
    uint64_t pml_full_exits;    /* VM exits for reason 62 */
    uint64_t epml_reads;        /* extended entries with R (accessed 0->1) */
    uint64_t epml_writes;       /* extended entries with W (dirty 0->1) */
    uint64_t epml_walk;         /* extended entries from the guest page walk */
    uint64_t epml_filtered;     /* walk transitions not logged (filter on) */
    uint64_t epml_handovers;    /* buffers handed to software */
    uint64_t epml_notifies;     /* notification interrupts sent */
    uint64_t epml_drops;        /* entries dropped, both buffers full */
    uint64_t epml_posted;       /* posted notifications that sent NV (set ON) */
    uint64_t epml_post_suppressed; /* posted with ON or SN already set: no IPI */

    /* Exits and log memory (vmx-stats.c). */
    uint64_t notify_exits;      /* external-interrupt exits for an EPML notification */
    uint64_t log_lines;         /* 64-byte lines of PML/EPML log memory written */
    uint64_t exits[VMX_STATS_REASONS]; /* VM exits by basic reason */
} VMXStats;

/* Counters only, so that the reserved words can be reset one by one. */
QEMU_BUILD_BUG_ON(sizeof(VMXStats) % sizeof(uint64_t));
QEMU_BUILD_BUG_MSG(sizeof(VMXStats) > sizeof(((VMXState *)0)->stats_space),
                   "VMXStats outgrew VMX_STATS_WORDS (vmx-state.h): raise it");

/* Index of a counter in env->vmx.stats_space.w[] (vmx-migration.c). */
#define VMX_STATS_WORD(field)   (offsetof(VMXStats, field) / sizeof(uint64_t))

static inline VMXStats *vmx_stats(CPUX86State *env)
{
    return (VMXStats *)env->vmx.stats_space.w;
}

static inline void vmx_stats_count(uint64_t *c)
{
    qatomic_set(c, *c + 1);     /* one writer (the vCPU); the monitor reads */
}

/* vmx-stats.c (a leaf of the VMX files: calls nothing back). */
void vmx_stats_exit(CPUX86State *env, uint32_t reason, uint32_t intr_info);
void vmx_stats_notify_vector(uint8_t vector);
void vmx_stats_log_line(CPUX86State *env);
void vmx_stats_reset(CPUX86State *env);

#endif
