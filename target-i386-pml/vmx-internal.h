/*
 * qemu-pml: definitions shared by the VMX emulation files.
 */
#ifndef PML_VMX_INTERNAL_H
#define PML_VMX_INTERNAL_H

#include "cpu.h"
#include "vmcs-fields.h"
#include "vmx-caps.h"

/*
 * Our VMCS region layout (implementation-specific, SDM Vol. 3C 25.2):
 * the architectural revision identifier and abort indicator, then the
 * launch state, then one 64-bit slot per field in vmcs_fields[] order.
 */
#define VMX_VMCS_REVISION       0x504d4c01u     /* "PML" 01; bit 31 clear */
#define VMX_REGION_SIZE         4096
#define VMCS_OFF_REVISION       0
#define VMCS_OFF_ABORT          4
#define VMCS_OFF_LAUNCH         8
#define VMCS_OFF_FIELDS         16
QEMU_BUILD_BUG_ON(VMCS_OFF_FIELDS + 8 * VMCS_NR_FIELDS > VMX_REGION_SIZE);

/* VM-instruction error numbers (SDM Vol. 3C 31.4). */
enum vmx_insn_error {
    VMXERR_VMCALL_IN_ROOT = 1,
    VMXERR_VMCLEAR_INVALID_ADDR = 2,
    VMXERR_VMCLEAR_VMXON_PTR = 3,
    VMXERR_VMLAUNCH_NONCLEAR = 4,
    VMXERR_VMRESUME_NONLAUNCHED = 5,
    VMXERR_VMRESUME_AFTER_VMXOFF = 6,
    VMXERR_ENTRY_INVALID_CONTROL = 7,
    VMXERR_ENTRY_INVALID_HOST_STATE = 8,
    VMXERR_VMPTRLD_INVALID_ADDR = 9,
    VMXERR_VMPTRLD_VMXON_PTR = 10,
    VMXERR_VMPTRLD_BAD_REVISION = 11,
    VMXERR_UNSUPPORTED_COMPONENT = 12,
    VMXERR_VMWRITE_READ_ONLY = 13,
    VMXERR_VMXON_IN_ROOT = 15,
    VMXERR_ENTRY_MOV_SS_BLOCKING = 26,
    VMXERR_INVALID_INVEPT_INVVPID = 28,
};

/* The control-field capability of this vCPU, as its MSRs report it. */
uint64_t vmx_cap_msr(CPUX86State *env, uint32_t index);
bool vmx_cpu_has_field(CPUX86State *env, int field_id);

#endif
