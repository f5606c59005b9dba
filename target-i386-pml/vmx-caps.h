/*
 * qemu-pml: VMX capability reporting (Intel SDM Vol. 3D, Appendix A).
 */
#ifndef PML_VMX_CAPS_H
#define PML_VMX_CAPS_H

#include "pml-common.h"

/* The five control fields whose allowed settings an MSR pair reports. */
enum vmx_ctl_field {
    VMX_CTL_PINBASED,   /* A.3.1: IA32_VMX_(TRUE_)PINBASED_CTLS */
    VMX_CTL_PROCBASED,  /* A.3.2: IA32_VMX_(TRUE_)PROCBASED_CTLS */
    VMX_CTL_PROCBASED2, /* A.3.3: IA32_VMX_PROCBASED_CTLS2 */
    VMX_CTL_EXIT,       /* A.4:   IA32_VMX_(TRUE_)EXIT_CTLS */
    VMX_CTL_ENTRY,      /* A.5:   IA32_VMX_(TRUE_)ENTRY_CTLS */
};

/* The "default1" class of a control field (A.2): reserved bits that read 1. */
uint32_t vmx_ctl_default1(enum vmx_ctl_field field);

/*
 * The value of a capability MSR for @field: bits 31:0 are the
 * allowed-0 settings (1 = must be 1), bits 63:32 the allowed-1 settings
 * (1 = may be 1).  @optional holds the controls the CPU model implements
 * as free choices, which for default1 bits means "may be 0" in the TRUE
 * MSR.  The non-TRUE MSR (@true_msr false) always reports every default1
 * bit as must-be-1, as CPUs without bit 55 of IA32_VMX_BASIC do.
 */
uint64_t vmx_ctl_msr(enum vmx_ctl_field field, uint32_t optional, bool true_msr);

/* True if @value respects the allowed-0/allowed-1 settings in @msr. */
static inline bool vmx_ctl_allowed(uint64_t msr, uint32_t value)
{
    uint32_t must1 = (uint32_t)msr, may1 = (uint32_t)(msr >> 32);

    return (value & must1) == must1 && (value & ~may1) == 0;
}

/*
 * IA32_VMX_CR0_FIXED0/1 and CR4_FIXED0/1 (A.7, A.8): bits fixed to 1 in
 * VMX operation are set in FIXED0; bits that may be 1 are set in FIXED1.
 * @unrestricted_guest relaxes PE and PG for the guest only, so it does
 * not change these MSRs.
 */
#define VMX_CR0_FIXED0  0x80000021ull   /* PG, NE, PE */
#define VMX_CR4_FIXED0  0x00002000ull   /* VMXE */

/* True if @cr respects FIXED0 (must-be-1) and FIXED1 (may-be-1). */
static inline bool vmx_cr_fixed_ok(uint64_t cr, uint64_t fixed0, uint64_t fixed1)
{
    return (cr & fixed0) == fixed0 && (cr & ~fixed1) == 0;
}

#endif
