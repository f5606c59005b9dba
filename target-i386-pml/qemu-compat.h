/*
 * qemu-pml: the upstream QEMU headers our files need, for each QEMU series
 * qemu-pml builds against (qemu-pml/upstream.conf: 10.0, the default;
 * qemu-pml/upstream-10.2.conf: 10.2).  Implements no architecture.
 *
 * Files include this after "qemu/osdep.h" (which brings config-host.h and
 * with it QEMU_VERSION_MAJOR/MINOR) and "cpu.h", instead of naming
 * headers that moved between the series.  Keep version tests here, not
 * in the .c files.
 */
#ifndef PML_QEMU_COMPAT_H
#define PML_QEMU_COMPAT_H

#define PML_QEMU_AT_LEAST(major, minor) \
    (QEMU_VERSION_MAJOR > (major) || \
     (QEMU_VERSION_MAJOR == (major) && QEMU_VERSION_MINOR >= (minor)))

#if PML_QEMU_AT_LEAST(10, 1)
/*
 * 10.1 dissolved exec/exec-all.h (cpu_loop_exit*() and the probes went
 * to accel/tcg/), and moved exec/cpu_ldst.h to accel/tcg/cpu-ldst.h and
 * exec/memory.h, exec/address-spaces.h to system/.  TARGET_PAGE_* and
 * the TLB_* flags a probe returns are no longer brought in by cpu.h.
 */
#include "exec/cpu-common.h"
#include "exec/target_page.h"
#include "exec/tlb-flags.h"
#include "accel/tcg/probe.h"
#include "accel/tcg/cpu-ldst.h"
#include "system/memory.h"
#include "system/address-spaces.h"
#else
#include "exec/exec-all.h"
#include "exec/cpu_ldst.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#endif

#endif /* PML_QEMU_COMPAT_H */
