/*
 * qemu-pml: per-vCPU VMX state, embedded in CPUX86State as env->vmx
 * (qemu-pml/patches/0004).
 */
#ifndef PML_VMX_STATE_H
#define PML_VMX_STATE_H

#include "pml/vmcs-fields.h"

/* Launch state of a VMCS (SDM Vol. 3C 25.1). */
enum vmcs_launch_state {
    VMCS_LAUNCH_CLEAR = 0,
    VMCS_LAUNCH_LAUNCHED = 1,
};

#define VMCS_PTR_INVALID    (~0ull)

typedef struct VMXState {
    bool vmxon;                 /* in VMX operation (root or non-root) */
    bool non_root;              /* in VMX non-root operation */
    uint8_t launch_state;       /* enum vmcs_launch_state of the current VMCS */
    uint64_t vmxon_ptr;         /* physical address of the VMXON region */
    uint64_t current_vmcs;      /* current-VMCS pointer, or VMCS_PTR_INVALID */
    struct vmcs_store vmcs;     /* the current VMCS, cached */
} VMXState;

#endif
