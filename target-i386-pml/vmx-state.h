/*
 * qemu-pml: per-vCPU VMX state, embedded in CPUX86State as env->vmx
 * (qemu-pml/patches/0004).
 */
#ifndef PML_VMX_STATE_H
#define PML_VMX_STATE_H

#include "qemu/seqlock.h"
#include "pml/vmcs-fields.h"

/* Launch state of a VMCS (SDM Vol. 3C 25.1). */
enum vmcs_launch_state {
    VMCS_LAUNCH_CLEAR = 0,
    VMCS_LAUNCH_LAUNCHED = 1,
};

#define VMCS_PTR_INVALID    (~0ull)

/*
 * INVEPT/INVVPID: the translator ORs this into the register operand it
 * passes when the descriptor's segment is SS (a non-canonical address is
 * then #SS, not #GP).
 */
#define VMX_OPERAND_SS      (1u << 8)

/*
 * VMREAD/VMWRITE: the operand-info word the translator passes: bits 3:0
 * the register operand (field encoding), bits 7:4 the r/m register, and
 * either VMX_OPINFO_RM_IS_REG or, for an SS-based memory operand,
 * VMX_OPERAND_SS.
 */
#define VMX_OPINFO_REG(i)       ((i) & 0xf)
#define VMX_OPINFO_RM(i)        (((i) >> 4) & 0xf)
#define VMX_OPINFO_RM_IS_REG    (1u << 9)

/*
 * IN/OUT/INS/OUTS in guest mode: what the translator leaves in
 * intercept_info for an I/O exit (vmx_check_io): an immediate port, the
 * address size (QEMU's MemOp: 1 16-bit, 2 32-bit, 3 64-bit) and the
 * memory operand's segment (R_ES for INS, DS or its override for OUTS).
 */
#define VMX_IO_INFO_VALID   (1u << 31)
#define VMX_IO_INFO_IMM     (1u << 0)
#define VMX_IO_INFO_ASIZE_SHIFT 4
#define VMX_IO_INFO_SEG_SHIFT   8

/* How the last failed VM entry ended (struct vmx_entry_fail). */
enum vmx_entry_fail_kind {
    VMX_ENTRY_FAIL_NONE = 0,        /* no VM entry has failed */
    VMX_ENTRY_FAIL_VMFAIL_INVALID,  /* VMfailInvalid: no current VMCS */
    VMX_ENTRY_FAIL_VMFAIL,          /* VMfailValid(number) */
    VMX_ENTRY_FAIL_EXIT,            /* VM-entry failure: exit reason number, qual */
};

/*
 * The last VM entry of a vCPU that failed a check, and the check that
 * failed it (vmx-base.c, VMX_CHECK() in vmx-internal.h).  Written by the
 * vCPU only, inside a sequence count, so the monitor reads it without
 * stopping the vCPU.  @rule and @expr point to string literals.
 */
struct vmx_entry_fail {
    QemuSeqLock seq;            /* odd while the vCPU writes the record */
    uint8_t kind;               /* enum vmx_entry_fail_kind */
    uint32_t number;            /* VM-instruction error, or basic exit reason */
    uint64_t qual;              /* exit qualification (VM-entry failure) */
    uint64_t vmcs;              /* the VMCS the entry was made with */
    uint64_t count;             /* failed VM entries since the machine started */
    const char *rule;           /* Intel SDM section of the check, e.g. "27.2.1.1" */
    const char *expr;           /* the C condition that named the failure */
};

/* What a set of TCG's TLB was filled under (vmx-tlb.c). */
struct vmx_tlb_tag {
    uint64_t cr0, cr3, cr4, efer, a20;  /* paging state, relevant bits */
    uint64_t eptp;                      /* non-root: EPTP, or 0 without EPT */
    uint64_t apic_access;               /* ... APIC-access page, or ~0 */
    uint16_t vpid;                      /* ... VPID, or 0 without VPID */
    bool valid;
};

typedef struct VMXState {
    bool vmxon;                 /* in VMX operation (root or non-root) */
    bool non_root;              /* in VMX non-root operation */
    uint8_t launch_state;       /* enum vmcs_launch_state of the current VMCS */
    uint64_t vmxon_ptr;         /* physical address of the VMXON region */
    uint64_t current_vmcs;      /* current-VMCS pointer, or VMCS_PTR_INVALID */
    struct vmcs_store vmcs;     /* the current VMCS, cached */

    /* Filled while a VM exit is being prepared (vmx-base.c, vmx-intercept.c). */
    uint32_t exit_insn_len;     /* length of the current instruction (TB data) */
    uint32_t intercept_info;    /* operand info the translator left (modrm...) */
    uint64_t intercept_addr;    /* ... and the linear address (INVLPG) */
    uint32_t intercept_insn_info; /* descriptor-table insns: 28.2.5 format */
    uint32_t lmsw_src;          /* LMSW's source operand (translator) */
    uint32_t pending_reason;    /* exit to deliver at EXCP_VMEXIT */
    uint64_t pending_qual;
    uint32_t pending_intr_info;
    uint32_t pending_intr_err;
    uint32_t pending_insn_info;
    uint32_t idt_vectoring;     /* event being delivered (27.2.4), or 0 */
    uint32_t idt_vectoring_err;
    uint32_t idt_vectoring_len; /* ... its instruction's length (INT n, INT3, INTO) */

    /*
     * Events at instruction boundaries in non-root operation
     * (vmx-events.c): monitor trap flag, NMI window, preemption timer.
     */
    uint8_t insn_ran;           /* set by one-instruction TBs (MTF) */
    bool mtf_pending;           /* MTF VM exit pending (27.7.2, injected type 7) */
    bool nmi_blocked;           /* blocking by NMI under NMI exiting (27.3.2.5) */
    bool preempt_active;        /* "activate VMX-preemption timer" at entry */
    uint64_t preempt_deadline;  /* TSC at which the timer reaches 0 */
    uint32_t pending_dbg;       /* pending debug exceptions to save (28.3.4) */
    bool dbg_after_insn;        /* ... delivered after the next instruction (MOV SS) */
    uint8_t in_iret;            /* a guest IRET is executing (set by its TB) */
    bool guest_hlt;             /* the guest is in HLT (until an event wakes it) */
    bool pdptes_loaded;         /* PAE paging under EPT: PDPTEs from VM entry */
    uint64_t pdpte[4];          /* ... held like the CPU's PDPTE registers */
    bool init_pending;          /* INIT latched while blocked (vmx-signals.c) */
    bool wait_sipi;             /* the guest is in wait-for-SIPI (entered by VM entry) */
    uint8_t apic_write;         /* a VTPR write awaits APIC-write emulation (vmx-apic.c) */
    bool tpr_exit_due;          /* TPR-below-threshold exit at the next boundary */

    /* Why the last EPT translation failed (vmx-ept.c). */
    uint8_t ept_fault;          /* enum ept_fault_kind */
    uint8_t ept_fault_perms;    /* R/W/X the walk allowed, bits 2:0 */
    uint8_t ept_fault_access;   /* 1 read, 2 write, 4 fetch */

    /* TLB sets across VM entries and exits (vmx-tlb.c). */
    bool paging_switch;         /* a transition loads CR0/CR3/CR4: no flush */
    struct vmx_tlb_tag root_tag;
    struct vmx_tlb_tag guest_tag;
    uint64_t ept_tag;           /* EPTP of the MMU_NESTED_IDX entries */

    /* Set while TCG's page walker probes a guest paging structure. */
    bool in_guest_walk;
    /* EPT without A/D: an A/D update the walk could not write (vmx-ept.c). */
    bool walk_refused;
    uint64_t walk_refused_gpa;

    /* PML statistics (vmx-pml.c, vmx-epml.c, vmx-ept.c), per vCPU. */
    uint64_t pml_entries;       /* entries written, stock and extended */
    uint64_t pml_full_exits;    /* VM exits for reason 62 */
    uint64_t epml_reads;        /* extended entries with R (accessed 0->1) */
    uint64_t epml_writes;       /* extended entries with W (dirty 0->1) */
    uint64_t epml_walk;         /* extended entries from the guest page walk */
    uint64_t epml_filtered;     /* walk transitions not logged (filter on) */
    uint64_t epml_handovers;    /* buffers handed to software */
    uint64_t epml_notifies;     /* notification interrupts sent */
    uint64_t epml_drops;        /* entries dropped, both buffers full */

    /* Exit and log statistics (vmx-stats.c), per vCPU. */
#define VMX_STATS_REASONS 80
    uint64_t exits[VMX_STATS_REASONS]; /* VM exits by basic reason */
    uint64_t notify_exits;      /* external-interrupt exits for an EPML notification */
    uint64_t log_lines;         /* 64-byte lines of PML/EPML log memory written */

    /*
     * VM-entry checks (vmx-entry.c): the first failed check of the
     * current VMLAUNCH/VMRESUME, then its outcome.  Not migrated.
     */
    const char *check_rule;
    const char *check_expr;
    struct vmx_entry_fail entry_fail;
} VMXState;

#endif
