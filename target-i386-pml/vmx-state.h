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

/*
 * What the translated code leaves for a VM exit or a boundary event
 * (vmx-translate.c.inc, patches 0008 and 0014): TCG stores straight into
 * these, so their offsets are part of the generated code.
 */
struct vmx_xlat {
    uint32_t insn_len;          /* length of the current instruction (TB data) */
    uint32_t info;              /* operand info (modrm...), see VMX_OPINFO_* */
    uint64_t addr;              /* ... and the linear address (INVLPG) */
    uint32_t insn_info;         /* descriptor-table insns: 28.2.5 format */
    uint32_t lmsw_src;          /* LMSW's source operand */
    uint8_t insn_ran;           /* set by one-instruction TBs (MTF) */
    uint8_t in_iret;            /* a guest IRET is executing */
};

/* The VM exit being prepared (vmx-base.c, vmx-intercept.c, vmx-exit.c). */
struct vmx_exit_prep {
    uint32_t reason;            /* exit to deliver at EXCP_VMEXIT */
    uint64_t qual;
    uint32_t intr_info;
    uint32_t intr_err;
    uint32_t insn_info;
    uint32_t idt_vectoring;     /* event being delivered (27.2.4), or 0 */
    uint32_t idt_vectoring_err;
    uint32_t idt_vectoring_len; /* ... its instruction's length (INT n, INT3, INTO) */
    uint64_t tsc;               /* TSC when the exit was recognised (28.4) */
};

/*
 * Events at instruction boundaries in non-root operation and the
 * activity state (vmx-events.c): monitor trap flag, NMI window,
 * preemption timer, pending debug exceptions, HLT.
 */
struct vmx_boundary {
    bool mtf_pending;           /* MTF VM exit pending (27.7.2, injected type 7) */
    bool nmi_blocked;           /* blocking by NMI under NMI exiting (27.3.2.5) */
    bool preempt_active;        /* "activate VMX-preemption timer" at entry */
    uint64_t preempt_deadline;  /* TSC at which the timer reaches 0 */
    uint32_t pending_dbg;       /* pending debug exceptions to save (28.3.4) */
    bool dbg_after_insn;        /* ... delivered after the next instruction (MOV SS) */
    bool guest_hlt;             /* the guest is in HLT (until an event wakes it) */
};

/* INIT and SIPI in VMX operation (vmx-signals.c). */
struct vmx_signals {
    bool init_pending;          /* INIT latched while blocked */
    bool wait_sipi;             /* the guest is in wait-for-SIPI (entered by VM entry) */
};

/*
 * APIC virtualization (vmx-apic.c).  RVI and SVI live in the VMCS's guest
 * interrupt status, the virtual APIC's registers in the virtual-APIC page;
 * this is what the processor holds besides them.
 */
struct vmx_apic_virt {
    uint8_t vtpr_write;         /* a virtualized write awaits APIC-write emulation */
    bool tpr_exit_due;          /* TPR-below-threshold exit at the next boundary */
    uint16_t write_offset;      /* ... page offset of that write (30.4.3.2) */
    bool virq;                  /* a virtual interrupt is recognized (30.2.1) */
};

/* The guest's translation under EPT (vmx-ept.c). */
struct vmx_ept_walk {
    bool pdptes_loaded;         /* PAE paging under EPT: PDPTEs from VM entry */
    uint64_t pdpte[4];          /* ... held like the CPU's PDPTE registers */
    uint8_t fault;              /* why the last EPT translation failed: enum ept_fault_kind */
    uint8_t fault_perms;        /* R/W/X the walk allowed, bits 2:0 */
    uint8_t fault_access;       /* 1 read, 2 write, 4 fetch */
    bool in_guest_walk;         /* TCG's page walker probes a guest paging structure */
    bool walk_refused;          /* EPT without A/D: an A/D update the walk could not write */
    uint64_t walk_refused_gpa;
};

/* TLB sets across VM entries and exits (vmx-tlb.c). */
struct vmx_tlb_sets {
    bool paging_switch;         /* a transition loads CR0/CR3/CR4: no flush */
    struct vmx_tlb_tag root;
    struct vmx_tlb_tag guest;
    uint64_t ept;               /* EPTP of the MMU_NESTED_IDX entries */
    /*
     * Without VPID: keeping the root and guest sets across a transition
     * when no paging structure they were walked through has been written
     * (DIRTY_MEMORY_PAGING, ram_list.paging_gen).
     */
    uint8_t watch;              /* walks watch the pages they read, for: */
#define VMX_TLB_WATCH_NOVPID    1   /* ... transitions without VPID */
#define VMX_TLB_WATCH_CR3       2   /* ... MOV to CR3 (below) */
    bool whole;                 /* every entry of both sets was watched */
    uint64_t gen;               /* ram_list.paging_gen at the last transition */
    uint32_t written;           /* transitions in a row that found a write */
    uint32_t backoff;           /* transitions left with watching off */
    /*
     * MOV to CR3: the tables of the address space left are set aside
     * (patch 0056) and come back when the guest switches back, if no
     * paging structure has been written since (vmx-tlb.c).  Index 0 is
     * the root set, 1 the guest set.
     */
    bool cr3_whole[2];          /* every live entry was watched */
    struct vmx_tlb_tag cr3_tag[2];  /* paging state they were filled under */
    uint64_t cr3_gen;           /* ram_list.paging_gen at the last switch */
    uint32_t cr3_written;       /* switches in a row that found a write */
    uint32_t cr3_backoff;       /* switches left with watching off */
};

/*
 * VM-entry checks (vmx-base.c): the first failed check of the current
 * VMLAUNCH/VMRESUME, then its outcome.  Not migrated.
 */
struct vmx_checks {
    const char *rule;
    const char *expr;
    struct vmx_entry_fail fail;
};

/*
 * Room for the query-pml-stats counters, whose layout (VMXStats) is in
 * vmx-stats.h, outside cpu.h's include path: a new counter rebuilds only
 * the files that count or report it.  Raise this only when VMXStats
 * outgrows it (a build assertion there says so).
 */
#define VMX_STATS_WORDS 128

typedef struct VMXState {
    bool vmxon;                 /* in VMX operation (root or non-root) */
    bool non_root;              /* in VMX non-root operation */
    uint8_t launch_state;       /* enum vmcs_launch_state of the current VMCS */
    uint64_t vmxon_ptr;         /* physical address of the VMXON region */
    uint64_t current_vmcs;      /* current-VMCS pointer, or VMCS_PTR_INVALID */
    struct vmcs_store vmcs;     /* the current VMCS, cached */

    struct vmx_xlat xlat;
    struct vmx_exit_prep exit;
    struct vmx_boundary ev;
    struct vmx_signals sig;
    struct vmx_apic_virt apic;
    struct vmx_ept_walk ept;
    struct vmx_tlb_sets tlb;
    struct vmx_checks check;
    struct { uint64_t w[VMX_STATS_WORDS]; } stats_space;
    /*
     * Capability MSRs 480H-492H as vmx_cap_msr() computed them (bit n of
     * @cap_known: 480H + n is in @cap).  They depend only on the model,
     * fixed when the vCPU is realized; VM entry reads them for its checks.
     */
    uint32_t cap_known;
    uint64_t cap[19];
} VMXState;

#endif
