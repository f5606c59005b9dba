/*
 * qemu-pml: IA32_FEATURE_CONTROL and the VMX capability MSRs
 * (Intel SDM Vol. 3D, Appendix A; Vol. 3C 24.7); IA32_ARCH_CAPABILITIES.
 *
 * What a vCPU reports is its CPU model's vmx-* features, intersected (by
 * x86_cpu_filter_features) with vmx_tcg_supported_features(): the
 * controls this emulation implements.
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"

/*
 * What TCG can offer per feature word: the VMX controls this emulation
 * implements (VM entry, the exits of vmx-intercept.c, CR accesses, I/O and MSR
 * bitmaps, EFER/PAT switching, EPT with A/D flags, stock PML, VPID,
 * virtual NMIs, NMI window, MTF, preemption timer, TPR shadow, APIC-access
 * page, APIC-register virtualization, virtual-interrupt delivery, x2APIC
 * virtualization, posted interrupts, VMCS shadowing).  A default1 control
 * listed here may be 0 in the TRUE capability MSRs.  Not yet: VM functions.
 */
uint64_t vmx_tcg_supported_features(FeatureWord w)
{
    switch (w) {
    case FEAT_1_ECX:
        return CPUID_EXT_VMX;
    case FEAT_7_0_EBX:
        return CPUID_7_0_EBX_INVPCID;       /* helper_vmx_invpcid() */
    case FEAT_7_0_EDX:
        return CPUID_7_0_EDX_ARCH_CAPABILITIES;     /* vmx_rdmsr() */
    case FEAT_VMX_BASIC:
        return MSR_VMX_BASIC_INS_OUTS | MSR_VMX_BASIC_TRUE_CTLS;
    case FEAT_VMX_MISC:
        return MSR_VMX_MISC_VMWRITE_VMEXIT | MSR_VMX_MISC_STORE_LMA |
               MSR_VMX_MISC_ACTIVITY_HLT | MSR_VMX_MISC_ACTIVITY_WAIT_SIPI;
    case FEAT_VMX_PINBASED_CTLS:
        return VMX_PIN_BASED_EXT_INTR_MASK | VMX_PIN_BASED_NMI_EXITING |
               VMX_PIN_BASED_VIRTUAL_NMIS | VMX_PIN_BASED_VMX_PREEMPTION_TIMER |
               VMX_PIN_BASED_POSTED_INTR;
    case FEAT_VMX_PROCBASED_CTLS:
        return VMX_CPU_BASED_ACTIVATE_SECONDARY_CONTROLS | VMX_CPU_BASED_USE_TSC_OFFSETING |
               VMX_CPU_BASED_VIRTUAL_INTR_PENDING | VMX_CPU_BASED_HLT_EXITING |
               VMX_CPU_BASED_MWAIT_EXITING | VMX_CPU_BASED_RDPMC_EXITING |
               VMX_CPU_BASED_RDTSC_EXITING | VMX_CPU_BASED_CR3_LOAD_EXITING |
               VMX_CPU_BASED_INVLPG_EXITING | VMX_CPU_BASED_CR8_LOAD_EXITING |
               VMX_CPU_BASED_CR8_STORE_EXITING | VMX_CPU_BASED_MOV_DR_EXITING |
               VMX_CPU_BASED_CR3_STORE_EXITING | VMX_CPU_BASED_UNCOND_IO_EXITING |
               VMX_CPU_BASED_USE_IO_BITMAPS | VMX_CPU_BASED_USE_MSR_BITMAPS |
               VMX_CPU_BASED_MONITOR_EXITING | VMX_CPU_BASED_PAUSE_EXITING |
               VMX_CPU_BASED_VIRTUAL_NMI_PENDING | VMX_CPU_BASED_MONITOR_TRAP_FLAG |
               VMX_CPU_BASED_TPR_SHADOW;
    case FEAT_VMX_SECONDARY_CTLS:
        return VMX_SECONDARY_EXEC_ENABLE_EPT | VMX_SECONDARY_EXEC_RDTSCP |
               VMX_SECONDARY_EXEC_ENABLE_VPID |
               VMX_SECONDARY_EXEC_UNRESTRICTED_GUEST | VMX_SECONDARY_EXEC_ENABLE_PML |
               VMX_SECONDARY_EXEC_DESC | VMX_SECONDARY_EXEC_WBINVD_EXITING |
               VMX_SECONDARY_EXEC_RDRAND_EXITING | VMX_SECONDARY_EXEC_RDSEED_EXITING |
               VMX_SECONDARY_EXEC_ENABLE_INVPCID |
               VMX_SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES |
               VMX_SECONDARY_EXEC_VIRTUALIZE_X2APIC_MODE |
               VMX_SECONDARY_EXEC_APIC_REGISTER_VIRT |
               VMX_SECONDARY_EXEC_VIRTUAL_INTR_DELIVERY |
               VMX_SECONDARY_EXEC_SHADOW_VMCS;
    case FEAT_VMX_EPT_VPID_CAPS:
        return MSR_VMX_EPT_EXECONLY | MSR_VMX_EPT_PAGE_WALK_LENGTH_4 |
               MSR_VMX_EPT_UC | MSR_VMX_EPT_WB | MSR_VMX_EPT_2MB | MSR_VMX_EPT_1GB |
               MSR_VMX_EPT_INVEPT | MSR_VMX_EPT_AD_BITS |
               MSR_VMX_EPT_INVEPT_SINGLE_CONTEXT | MSR_VMX_EPT_INVEPT_ALL_CONTEXT |
               MSR_VMX_EPT_INVVPID | MSR_VMX_EPT_INVVPID_SINGLE_ADDR |
               MSR_VMX_EPT_INVVPID_SINGLE_CONTEXT | MSR_VMX_EPT_INVVPID_ALL_CONTEXT |
               MSR_VMX_EPT_INVVPID_SINGLE_CONTEXT_NOGLOBALS;
    case FEAT_VMX_EXIT_CTLS:
        return VMX_VM_EXIT_SAVE_DEBUG_CONTROLS | VMX_VM_EXIT_HOST_ADDR_SPACE_SIZE |
               VMX_VM_EXIT_ACK_INTR_ON_EXIT | VMX_VM_EXIT_SAVE_IA32_PAT |
               VMX_VM_EXIT_LOAD_IA32_PAT | VMX_VM_EXIT_SAVE_IA32_EFER |
               VMX_VM_EXIT_LOAD_IA32_EFER | VMX_VM_EXIT_SAVE_VMX_PREEMPTION_TIMER;
    case FEAT_VMX_ENTRY_CTLS:
        return VMX_VM_ENTRY_LOAD_DEBUG_CONTROLS | VMX_VM_ENTRY_IA32E_MODE |
               VMX_VM_ENTRY_LOAD_IA32_PAT | VMX_VM_ENTRY_LOAD_IA32_EFER;
    default:
        return 0;
    }
}

static bool vmx_msr_index(uint32_t index)
{
    return (index >= MSR_IA32_VMX_BASIC && index <= MSR_IA32_VMX_VMFUNC) ||
           index == MSR_IA32_VMX_PROCBASED_CTLS3 || index == EPML_MSR_CAP;
}

/* The bits firmware may set in IA32_FEATURE_CONTROL on this model. */
static uint64_t feature_control_writable(CPUX86State *env)
{
    uint64_t bits = FEATURE_CONTROL_LOCKED;

    if (cpu_has_vmx(env)) {
        bits |= FEATURE_CONTROL_VMXON_ENABLED_OUTSIDE_SMX;
    }
    if (env->features[FEAT_1_ECX] & CPUID_EXT_SMX) {
        bits |= FEATURE_CONTROL_VMXON_ENABLED_INSIDE_SMX;
    }
    if (env->mcg_cap & MCG_LMCE_P) {
        bits |= FEATURE_CONTROL_LMCE;
    }
    if (env->features[FEAT_7_0_EBX] & CPUID_7_0_EBX_SGX) {
        bits |= FEATURE_CONTROL_SGX;
    }
    if (env->features[FEAT_7_0_ECX] & CPUID_7_0_ECX_SGX_LC) {
        bits |= FEATURE_CONTROL_SGX_LC;
    }
    return bits;
}

static uint64_t ctl_msr(CPUX86State *env, enum vmx_ctl_field f, FeatureWord w,
                        bool true_msr)
{
    uint32_t optional = env->features[w];

    /* A.4: host address-space size is a free choice on 64-bit CPUs. */
    if (f == VMX_CTL_EXIT && (env->features[FEAT_8000_0001_EDX] & CPUID_EXT2_LM)) {
        optional |= VMX_VM_EXIT_HOST_ADDR_SPACE_SIZE &
                    vmx_tcg_supported_features(FEAT_VMX_EXIT_CTLS);
    }
    /* docs/epml.md section 2: extended PML is a tertiary control. */
    if (f == VMX_CTL_PROCBASED && vmx_epml_supported(env)) {
        optional |= VMX_CPU_BASED_ACTIVATE_TERTIARY_CONTROLS;
    }
    return vmx_ctl_msr(f, optional, true_msr);
}

static bool has_vmcs_req(enum vmcs_req req, void *opaque)
{
    CPUX86State *env = opaque;
    uint32_t proc = env->features[FEAT_VMX_PROCBASED_CTLS];
    uint32_t proc2 = (proc & VMX_CPU_BASED_ACTIVATE_SECONDARY_CONTROLS) ?
                     env->features[FEAT_VMX_SECONDARY_CTLS] : 0;
    uint32_t pin = env->features[FEAT_VMX_PINBASED_CTLS];

    switch (req) {
    case VMCS_REQ_NONE:
        return true;
    case VMCS_REQ_VPID:
        return proc2 & VMX_SECONDARY_EXEC_ENABLE_VPID;
    case VMCS_REQ_EPT:
        return proc2 & VMX_SECONDARY_EXEC_ENABLE_EPT;
    case VMCS_REQ_PML:
        return proc2 & VMX_SECONDARY_EXEC_ENABLE_PML;
    case VMCS_REQ_TPR_SHADOW:
        return proc & VMX_CPU_BASED_TPR_SHADOW;
    case VMCS_REQ_APIC_ACCESS:
        return proc2 & VMX_SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES;
    case VMCS_REQ_POSTED_INTR:
        return pin & VMX_PIN_BASED_POSTED_INTR;
    case VMCS_REQ_VID:
        return proc2 & VMX_SECONDARY_EXEC_VIRTUAL_INTR_DELIVERY;
    case VMCS_REQ_VMFUNC:
        return proc2 & VMX_SECONDARY_EXEC_ENABLE_VMFUNC;
    case VMCS_REQ_EPTP_SWITCH:
        return (proc2 & VMX_SECONDARY_EXEC_ENABLE_VMFUNC) &&
               (env->features[FEAT_VMX_VMFUNC] & MSR_VMX_VMFUNC_EPT_SWITCHING);
    case VMCS_REQ_PLE:
        return proc2 & VMX_SECONDARY_EXEC_PAUSE_LOOP_EXITING;
    case VMCS_REQ_PREEMPT_TIMER:
        return pin & VMX_PIN_BASED_VMX_PREEMPTION_TIMER;
    case VMCS_REQ_XSAVES:
        return proc2 & VMX_SECONDARY_EXEC_XSAVES;
    case VMCS_REQ_TSC_SCALING:
        return proc2 & VMX_SECONDARY_EXEC_TSC_SCALING;
    case VMCS_REQ_PERF_GLOBAL:
        return (env->features[FEAT_VMX_ENTRY_CTLS] & VMX_VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL) ||
               (env->features[FEAT_VMX_EXIT_CTLS] & VMX_VM_EXIT_LOAD_IA32_PERF_GLOBAL_CTRL);
    case VMCS_REQ_SHADOW_VMCS:
        return proc2 & VMX_SECONDARY_EXEC_SHADOW_VMCS;
    case VMCS_REQ_VE:
        return false;           /* EPT-violation #VE is not offered */
    case VMCS_REQ_EPML:
        return vmx_epml_supported(env);
    case VMCS_REQ__MAX:
        break;
    }
    return false;
}

bool vmx_cpu_has_field(CPUX86State *env, int field_id)
{
    return field_id >= 0 &&
           has_vmcs_req((enum vmcs_req)vmcs_fields[field_id].req, env);
}

/*
 * The value of VMX capability MSR @index on this vCPU, or false if the MSR
 * does not exist on it (RDMSR then raises #GP(0)).
 */
static bool vmx_cap_value(CPUX86State *env, uint32_t index, uint64_t *val)
{
    uint64_t basic = env->features[FEAT_VMX_BASIC];
    bool true_ctls = basic & MSR_VMX_BASIC_TRUE_CTLS;
    uint32_t proc = env->features[FEAT_VMX_PROCBASED_CTLS];
    uint32_t proc2 = env->features[FEAT_VMX_SECONDARY_CTLS];

    switch (index) {
    case MSR_IA32_VMX_BASIC:
        /* A.1: revision, region size, WB (6) memory type, features. */
        *val = VMX_VMCS_REVISION | ((uint64_t)VMX_REGION_SIZE << 32) |
               (6ull << 50) | basic;
        return true;
    case MSR_IA32_VMX_PINBASED_CTLS:
    case MSR_IA32_VMX_TRUE_PINBASED_CTLS:
        *val = ctl_msr(env, VMX_CTL_PINBASED, FEAT_VMX_PINBASED_CTLS,
                       index == MSR_IA32_VMX_TRUE_PINBASED_CTLS);
        return index == MSR_IA32_VMX_PINBASED_CTLS || true_ctls;
    case MSR_IA32_VMX_PROCBASED_CTLS:
    case MSR_IA32_VMX_TRUE_PROCBASED_CTLS:
        *val = ctl_msr(env, VMX_CTL_PROCBASED, FEAT_VMX_PROCBASED_CTLS,
                       index == MSR_IA32_VMX_TRUE_PROCBASED_CTLS);
        return index == MSR_IA32_VMX_PROCBASED_CTLS || true_ctls;
    case MSR_IA32_VMX_EXIT_CTLS:
    case MSR_IA32_VMX_TRUE_EXIT_CTLS:
        *val = ctl_msr(env, VMX_CTL_EXIT, FEAT_VMX_EXIT_CTLS,
                       index == MSR_IA32_VMX_TRUE_EXIT_CTLS);
        return index == MSR_IA32_VMX_EXIT_CTLS || true_ctls;
    case MSR_IA32_VMX_ENTRY_CTLS:
    case MSR_IA32_VMX_TRUE_ENTRY_CTLS:
        *val = ctl_msr(env, VMX_CTL_ENTRY, FEAT_VMX_ENTRY_CTLS,
                       index == MSR_IA32_VMX_TRUE_ENTRY_CTLS);
        return index == MSR_IA32_VMX_ENTRY_CTLS || true_ctls;
    case MSR_IA32_VMX_MISC:
        /*
         * A.6: 4 CR3-target values; MSR lists of 512 entries at most; the
         * preemption timer's rate (bits 4:0) when the timer is offered.
         */
        *val = env->features[FEAT_VMX_MISC] | (4ull << 16);
        if (env->features[FEAT_VMX_PINBASED_CTLS] & VMX_PIN_BASED_VMX_PREEMPTION_TIMER) {
            *val |= VMX_PREEMPT_RATE;
        }
        return true;
    case MSR_IA32_VMX_CR0_FIXED0:
        *val = VMX_CR0_FIXED0;
        return true;
    case MSR_IA32_VMX_CR0_FIXED1:
        *val = 0xffffffffull;
        return true;
    case MSR_IA32_VMX_CR4_FIXED0:
        *val = VMX_CR4_FIXED0;
        return true;
    case MSR_IA32_VMX_CR4_FIXED1:
        *val = ~cr4_reserved_bits(env) & 0xffffffffull;
        return true;
    case MSR_IA32_VMX_VMCS_ENUM:
        *val = vmcs_enum_msr(has_vmcs_req, env);
        return true;
    case MSR_IA32_VMX_PROCBASED_CTLS2:
        /* A.3.3: exists only if "activate secondary controls" may be 1. */
        *val = vmx_ctl_msr(VMX_CTL_PROCBASED2, proc2, false);
        return proc & VMX_CPU_BASED_ACTIVATE_SECONDARY_CONTROLS;
    case MSR_IA32_VMX_EPT_VPID_CAP:
        /* A.10: exists if EPT or VPID may be enabled. */
        *val = vmx_ept_vpid_caps(env);
        return (proc & VMX_CPU_BASED_ACTIVATE_SECONDARY_CONTROLS) &&
               (proc2 & (VMX_SECONDARY_EXEC_ENABLE_EPT | VMX_SECONDARY_EXEC_ENABLE_VPID));
    case MSR_IA32_VMX_PROCBASED_CTLS3:
        /* A.3.4: allowed-1 settings of the tertiary controls. */
        *val = EPML_TERTIARY_ENABLE;
        return vmx_epml_supported(env);
    case EPML_MSR_CAP:
        *val = vmx_epml_cap(env);
        return vmx_epml_supported(env);
    case MSR_IA32_VMX_VMFUNC:
        /* A.11: exists if "enable VM functions" may be 1. */
        *val = env->features[FEAT_VMX_VMFUNC];
        return (proc & VMX_CPU_BASED_ACTIVATE_SECONDARY_CONTROLS) &&
               (proc2 & VMX_SECONDARY_EXEC_ENABLE_VMFUNC);
    }
    return false;
}

uint64_t vmx_cap_msr_compute(CPUX86State *env, uint32_t index)
{
    uint32_t n = index - MSR_IA32_VMX_BASIC;
    uint64_t v = 0;

    if (n < ARRAY_SIZE(env->vmx.cap)) {
        if (!(env->vmx.cap_known & (1u << n))) {
            env->vmx.cap[n] = vmx_cap_value(env, index, &v) ? v : 0;
            env->vmx.cap_known |= 1u << n;
        }
        return env->vmx.cap[n];
    }
    return vmx_cap_value(env, index, &v) ? v : 0;
}

/*
 * IA32_ARCH_CAPABILITIES (10AH), present when CPUID.(EAX=7,ECX=0):EDX[29]
 * is (a model that has it, or "+arch-capabilities").  TCG executes nothing
 * speculatively, so of the model's bits it reports the "not affected" ones
 * (RDCL_NO: no Meltdown, so Xen runs its PV dom0 without XPTI, and Linux
 * without PTI); the ones that promise a mechanism (IBRS_ALL, RSBA,
 * SKIP_L1DFL_VMENTRY, TSX_CTRL, FB_CLEAR, RFDS_CLEAR) read 0.
 */
#define ARCH_CAPS_NOT_AFFECTED \
    (MSR_ARCH_CAP_RDCL_NO | MSR_ARCH_CAP_SSB_NO | MSR_ARCH_CAP_MDS_NO | \
     MSR_ARCH_CAP_PSCHANGE_MC_NO | MSR_ARCH_CAP_TAA_NO | \
     MSR_ARCH_CAP_SBDR_SSDP_NO | MSR_ARCH_CAP_FBSDP_NO | \
     MSR_ARCH_CAP_PSDP_NO | MSR_ARCH_CAP_BHI_NO | MSR_ARCH_CAP_PBRSB_NO | \
     MSR_ARCH_CAP_GDS_NO | MSR_ARCH_CAP_RFDS_NO)

static bool has_arch_caps(CPUX86State *env)
{
    return env->features[FEAT_7_0_EDX] & CPUID_7_0_EDX_ARCH_CAPABILITIES;
}

bool vmx_rdmsr(CPUX86State *env, uint32_t index, uint64_t *val, uintptr_t ra)
{
    if (index == MSR_IA32_ARCH_CAPABILITIES) {
        if (!has_arch_caps(env)) {
            return false;       /* upstream's behaviour: reads 0 */
        }
        *val = env->features[FEAT_ARCH_CAPABILITIES] & ARCH_CAPS_NOT_AFFECTED;
        return true;
    }
    if (index == MSR_IA32_FEATURE_CONTROL) {
        if (!cpu_has_vmx(env)) {
            return false;       /* upstream's behaviour for non-VMX models */
        }
        *val = env->msr_ia32_feature_control;
        return true;
    }
    if (!vmx_msr_index(index)) {
        return false;
    }
    /* A.1: the capability MSRs exist only if CPUID.1:ECX.VMX = 1. */
    if (!cpu_has_vmx(env) || !vmx_cap_value(env, index, val)) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    return true;
}

bool vmx_wrmsr(CPUX86State *env, uint32_t index, uint64_t val, uintptr_t ra)
{
    if (index == MSR_IA32_ARCH_CAPABILITIES && has_arch_caps(env)) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);     /* read-only */
    }
    if (index == MSR_IA32_FEATURE_CONTROL) {
        if (!cpu_has_vmx(env)) {
            return false;
        }
        /* Once locked, or with a bit this model lacks: #GP(0). */
        if ((env->msr_ia32_feature_control & FEATURE_CONTROL_LOCKED) ||
            (val & ~feature_control_writable(env))) {
            raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
        }
        env->msr_ia32_feature_control = val;
        return true;
    }
    if (!vmx_msr_index(index)) {
        return false;
    }
    /* The capability MSRs are read-only: WRMSR always raises #GP(0). */
    raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
}
