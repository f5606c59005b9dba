/*
 * qemu-pml test support: it implements no architecture.
 *
 * Deliberate defects for mutation runs (docs/ground-truth.md): each breaks
 * one link of the extended-PML pipeline so that a ground truth can be shown
 * to catch it.  Test-only and off unless the environment variable
 * QPML_MUTATE names them (comma-separated); QEMU says so on stderr at the
 * first use, so no result is taken from a mutated emulator by mistake.
 *
 *   invept-noop     INVEPT succeeds but invalidates nothing
 *   drop-buffer     the 4th buffer hand-over reports 0 entries (its
 *                   entries vanish; the dropped counter does not move)
 *   no-walk-filter  the page-walk filter control is ignored
 *
 * Copyright (c) 2026 qemu-pml contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "cpu.h"
#include "vmx-internal.h"

static const struct {
    const char *name;
    unsigned bit;
} mutations[] = {
    { "invept-noop", VMX_MUTATE_INVEPT_NOOP },
    { "drop-buffer", VMX_MUTATE_DROP_BUFFER },
    { "no-walk-filter", VMX_MUTATE_NO_WALK_FILTER },
};

static unsigned parse_mutations(void)
{
    const char *env = getenv("QPML_MUTATE");
    g_auto(GStrv) words = NULL;
    unsigned m = 0;

    if (!env || !*env) {
        return 0;
    }
    words = g_strsplit(env, ",", -1);
    for (char **w = words; *w; w++) {
        size_t i;

        for (i = 0; i < ARRAY_SIZE(mutations); i++) {
            if (!strcmp(*w, mutations[i].name)) {
                m |= mutations[i].bit;
                break;
            }
        }
        if (i == ARRAY_SIZE(mutations)) {
            error_report("QPML_MUTATE: unknown mutation '%s' (invept-noop, drop-buffer, "
                         "no-walk-filter)", *w);
            exit(1);
        }
    }
    error_report("warning: QPML_MUTATE=%s: this emulator is deliberately broken "
                 "(mutation run, docs/ground-truth.md)", env);
    return m;
}

bool vmx_mutated(unsigned m)
{
    static gsize once;
    static unsigned active;

    if (g_once_init_enter(&once)) {
        active = parse_mutations();
        g_once_init_leave(&once, 1);
    }
    return active & m;
}
