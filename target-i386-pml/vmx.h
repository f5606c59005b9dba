/*
 * qemu-pml: the entry points upstream QEMU code calls (qemu-pml/patches/).
 * Everything else of the VMX emulation stays private to target/i386/pml.
 */
#ifndef PML_VMX_H
#define PML_VMX_H

#include "cpu.h"

/* The feature bits TCG can offer in feature word @w (patch 0006). */
uint64_t vmx_tcg_supported_features(FeatureWord w);

/*
 * RDMSR/WRMSR of IA32_FEATURE_CONTROL or a VMX capability MSR.  Return
 * false if @index is not ours; raise #GP(0) (at @ra) where the SDM says
 * so; otherwise perform the access and return true.
 */
bool vmx_rdmsr(CPUX86State *env, uint32_t index, uint64_t *val, uintptr_t ra);
bool vmx_wrmsr(CPUX86State *env, uint32_t index, uint64_t val, uintptr_t ra);

/* MOV to CR0/CR4 in VMX operation: #GP(0) unless FIXED0/FIXED1 allow it. */
void vmx_check_cr_write(CPUX86State *env, int reg, target_ulong val, uintptr_t ra);

#endif
