/*
 * qemu-pml: the entry points upstream TCG code calls (qemu-pml/patches/).
 * Everything else of the VMX emulation stays private to target/i386/pml.
 */
#ifndef PML_VMX_H
#define PML_VMX_H

#include "cpu.h"

/*
 * RDMSR/WRMSR of an MSR that belongs to VMX (IA32_VMX_BASIC..VMFUNC).
 * Return false if @index is not ours; raise #GP(0) (at @ra) where the SDM
 * says so; otherwise perform the access and return true.
 */
bool vmx_rdmsr(CPUX86State *env, uint32_t index, uint64_t *val, uintptr_t ra);
bool vmx_wrmsr(CPUX86State *env, uint32_t index, uint64_t val, uintptr_t ra);

#endif
