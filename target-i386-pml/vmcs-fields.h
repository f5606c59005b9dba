/*
 * qemu-pml: VMCS field encodings (Intel SDM Vol. 3D, Appendix B) and the
 * VMREAD/VMWRITE access rules (Vol. 3C 25.11.2, 26.11.2).
 */
#ifndef PML_VMCS_FIELDS_H
#define PML_VMCS_FIELDS_H

#include "pml-common.h"
#include "epml-arch.h"

/* Encoding layout (B.1): access type, index, type, width. */
#define VMCS_ENC_HIGH       0x0001u     /* bit 0: high half of a 64-bit field */
#define VMCS_ENC_INDEX(e)   (((e) >> 1) & 0x1ff)
#define VMCS_ENC_TYPE(e)    (((e) >> 10) & 3)
#define VMCS_ENC_WIDTH(e)   (((e) >> 13) & 3)
#define VMCS_ENC_RESERVED   0xffff9000u /* bit 12 and bits 31:15 */

enum vmcs_type {
    VMCS_TYPE_CONTROL = 0,
    VMCS_TYPE_EXIT_INFO = 1,    /* read-only data */
    VMCS_TYPE_GUEST = 2,
    VMCS_TYPE_HOST = 3,
};

enum vmcs_width {
    VMCS_WIDTH_16 = 0,
    VMCS_WIDTH_64 = 1,
    VMCS_WIDTH_32 = 2,
    VMCS_WIDTH_NATURAL = 3,
};

/*
 * Which CPU capability a field depends on: a field whose capability the
 * model lacks does not exist, and VMREAD/VMWRITE fail with VM-instruction
 * error 12 (unsupported VMCS component).
 */
enum vmcs_req {
    VMCS_REQ_NONE = 0,
    VMCS_REQ_VPID,
    VMCS_REQ_EPT,
    VMCS_REQ_PML,
    VMCS_REQ_TPR_SHADOW,
    VMCS_REQ_APIC_ACCESS,
    VMCS_REQ_POSTED_INTR,
    VMCS_REQ_VID,       /* virtual-interrupt delivery */
    VMCS_REQ_VMFUNC,
    VMCS_REQ_EPTP_SWITCH,
    VMCS_REQ_PLE,       /* PAUSE-loop exiting */
    VMCS_REQ_PREEMPT_TIMER,
    VMCS_REQ_XSAVES,
    VMCS_REQ_TSC_SCALING,
    VMCS_REQ_PERF_GLOBAL,   /* load IA32_PERF_GLOBAL_CTRL */
    VMCS_REQ_SHADOW_VMCS,
    VMCS_REQ_VE,        /* EPT-violation #VE */
    VMCS_REQ_EPML,      /* extended PML (docs/epml.md), with tertiary controls */
    VMCS_REQ__MAX
};

#define VMCS_FIELD_LIST(F) \
    /* 16-bit control (B.1.1) */ \
    F(VIRTUAL_PROCESSOR_ID,     0x0000, VPID) \
    F(POSTED_INTR_NV,       0x0002, POSTED_INTR) \
    F(EPTP_INDEX,           0x0004, VE) \
    /* 16-bit guest state (B.1.2) */ \
    F(GUEST_ES_SELECTOR,        0x0800, NONE) \
    F(GUEST_CS_SELECTOR,        0x0802, NONE) \
    F(GUEST_SS_SELECTOR,        0x0804, NONE) \
    F(GUEST_DS_SELECTOR,        0x0806, NONE) \
    F(GUEST_FS_SELECTOR,        0x0808, NONE) \
    F(GUEST_GS_SELECTOR,        0x080a, NONE) \
    F(GUEST_LDTR_SELECTOR,      0x080c, NONE) \
    F(GUEST_TR_SELECTOR,        0x080e, NONE) \
    F(GUEST_INTR_STATUS,        0x0810, VID) \
    F(GUEST_PML_INDEX,      0x0812, PML) \
    /* 16-bit host state (B.1.3) */ \
    F(HOST_ES_SELECTOR,     0x0c00, NONE) \
    F(HOST_CS_SELECTOR,     0x0c02, NONE) \
    F(HOST_SS_SELECTOR,     0x0c04, NONE) \
    F(HOST_DS_SELECTOR,     0x0c06, NONE) \
    F(HOST_FS_SELECTOR,     0x0c08, NONE) \
    F(HOST_GS_SELECTOR,     0x0c0a, NONE) \
    F(HOST_TR_SELECTOR,     0x0c0c, NONE) \
    /* 64-bit control (B.2.1) */ \
    F(IO_BITMAP_A,          0x2000, NONE) \
    F(IO_BITMAP_B,          0x2002, NONE) \
    F(MSR_BITMAP,           0x2004, NONE) \
    F(VM_EXIT_MSR_STORE_ADDR,   0x2006, NONE) \
    F(VM_EXIT_MSR_LOAD_ADDR,    0x2008, NONE) \
    F(VM_ENTRY_MSR_LOAD_ADDR,   0x200a, NONE) \
    F(EXECUTIVE_VMCS_POINTER,   0x200c, NONE) \
    F(PML_ADDRESS,          0x200e, PML) \
    F(TSC_OFFSET,           0x2010, NONE) \
    F(VIRTUAL_APIC_PAGE_ADDR,   0x2012, TPR_SHADOW) \
    F(APIC_ACCESS_ADDR,     0x2014, APIC_ACCESS) \
    F(POSTED_INTR_DESC_ADDR,    0x2016, POSTED_INTR) \
    F(VM_FUNCTION_CONTROL,      0x2018, VMFUNC) \
    F(EPT_POINTER,          0x201a, EPT) \
    F(EOI_EXIT_BITMAP0,     0x201c, VID) \
    F(EOI_EXIT_BITMAP1,     0x201e, VID) \
    F(EOI_EXIT_BITMAP2,     0x2020, VID) \
    F(EOI_EXIT_BITMAP3,     0x2022, VID) \
    F(EPTP_LIST_ADDRESS,        0x2024, EPTP_SWITCH) \
    F(VMREAD_BITMAP,        0x2026, SHADOW_VMCS) \
    F(VMWRITE_BITMAP,       0x2028, SHADOW_VMCS) \
    F(VE_INFO_ADDRESS,      0x202a, VE) \
    F(XSS_EXIT_BITMAP,      0x202c, XSAVES) \
    F(TSC_MULTIPLIER,       0x2032, TSC_SCALING) \
    F(TERTIARY_VM_EXEC_CONTROL, 0x2034, EPML) \
    /* 64-bit control, extended PML (docs/epml.md section 3) */ \
    F(EPML_BUFFER0_ADDR,    EPML_VMCS_BUFFER0, EPML) \
    F(EPML_BUFFER1_ADDR,    EPML_VMCS_BUFFER1, EPML) \
    F(EPML_DESC_ADDR,       EPML_VMCS_DESC, EPML) \
    F(EPML_POST_DESC_ADDR,  EPML_VMCS_POST_DESC, EPML) \
    /* 64-bit read-only data (B.2.2) */ \
    F(GUEST_PHYSICAL_ADDRESS,   0x2400, EPT) \
    /* 64-bit guest state (B.2.3) */ \
    F(VMCS_LINK_POINTER,        0x2800, NONE) \
    F(GUEST_IA32_DEBUGCTL,      0x2802, NONE) \
    F(GUEST_IA32_PAT,       0x2804, NONE) \
    F(GUEST_IA32_EFER,      0x2806, NONE) \
    F(GUEST_IA32_PERF_GLOBAL_CTRL,  0x2808, PERF_GLOBAL) \
    F(GUEST_PDPTE0,         0x280a, EPT) \
    F(GUEST_PDPTE1,         0x280c, EPT) \
    F(GUEST_PDPTE2,         0x280e, EPT) \
    F(GUEST_PDPTE3,         0x2810, EPT) \
    /* 64-bit host state (B.2.4) */ \
    F(HOST_IA32_PAT,        0x2c00, NONE) \
    F(HOST_IA32_EFER,       0x2c02, NONE) \
    F(HOST_IA32_PERF_GLOBAL_CTRL,   0x2c04, PERF_GLOBAL) \
    /* 32-bit control (B.3.1) */ \
    F(PIN_BASED_VM_EXEC_CONTROL,    0x4000, NONE) \
    F(CPU_BASED_VM_EXEC_CONTROL,    0x4002, NONE) \
    F(EXCEPTION_BITMAP,     0x4004, NONE) \
    F(PAGE_FAULT_ERROR_CODE_MASK,   0x4006, NONE) \
    F(PAGE_FAULT_ERROR_CODE_MATCH,  0x4008, NONE) \
    F(CR3_TARGET_COUNT,     0x400a, NONE) \
    F(VM_EXIT_CONTROLS,     0x400c, NONE) \
    F(VM_EXIT_MSR_STORE_COUNT,  0x400e, NONE) \
    F(VM_EXIT_MSR_LOAD_COUNT,   0x4010, NONE) \
    F(VM_ENTRY_CONTROLS,        0x4012, NONE) \
    F(VM_ENTRY_MSR_LOAD_COUNT,  0x4014, NONE) \
    F(VM_ENTRY_INTR_INFO_FIELD, 0x4016, NONE) \
    F(VM_ENTRY_EXCEPTION_ERROR_CODE, 0x4018, NONE) \
    F(VM_ENTRY_INSTRUCTION_LEN, 0x401a, NONE) \
    F(TPR_THRESHOLD,        0x401c, TPR_SHADOW) \
    F(SECONDARY_VM_EXEC_CONTROL,    0x401e, NONE) \
    F(PLE_GAP,          0x4020, PLE) \
    F(PLE_WINDOW,           0x4022, PLE) \
    /* 32-bit control, extended PML */ \
    F(EPML_CONTROLS,        EPML_VMCS_CONTROLS, EPML) \
    F(EPML_BUFFER_SIZE,     EPML_VMCS_BUFFER_SIZE, EPML) \
    F(EPML_NOTIFY_VECTOR,   EPML_VMCS_NOTIFY_VECTOR, EPML) \
    F(EPML_NOTIFY_DEST,     EPML_VMCS_NOTIFY_DEST, EPML) \
    /* 32-bit read-only data (B.3.2) */ \
    F(VM_INSTRUCTION_ERROR,     0x4400, NONE) \
    F(VM_EXIT_REASON,       0x4402, NONE) \
    F(VM_EXIT_INTR_INFO,        0x4404, NONE) \
    F(VM_EXIT_INTR_ERROR_CODE,  0x4406, NONE) \
    F(IDT_VECTORING_INFO_FIELD, 0x4408, NONE) \
    F(IDT_VECTORING_ERROR_CODE, 0x440a, NONE) \
    F(VM_EXIT_INSTRUCTION_LEN,  0x440c, NONE) \
    F(VMX_INSTRUCTION_INFO,     0x440e, NONE) \
    /* 32-bit guest state (B.3.3) */ \
    F(GUEST_ES_LIMIT,       0x4800, NONE) \
    F(GUEST_CS_LIMIT,       0x4802, NONE) \
    F(GUEST_SS_LIMIT,       0x4804, NONE) \
    F(GUEST_DS_LIMIT,       0x4806, NONE) \
    F(GUEST_FS_LIMIT,       0x4808, NONE) \
    F(GUEST_GS_LIMIT,       0x480a, NONE) \
    F(GUEST_LDTR_LIMIT,     0x480c, NONE) \
    F(GUEST_TR_LIMIT,       0x480e, NONE) \
    F(GUEST_GDTR_LIMIT,     0x4810, NONE) \
    F(GUEST_IDTR_LIMIT,     0x4812, NONE) \
    F(GUEST_ES_AR_BYTES,        0x4814, NONE) \
    F(GUEST_CS_AR_BYTES,        0x4816, NONE) \
    F(GUEST_SS_AR_BYTES,        0x4818, NONE) \
    F(GUEST_DS_AR_BYTES,        0x481a, NONE) \
    F(GUEST_FS_AR_BYTES,        0x481c, NONE) \
    F(GUEST_GS_AR_BYTES,        0x481e, NONE) \
    F(GUEST_LDTR_AR_BYTES,      0x4820, NONE) \
    F(GUEST_TR_AR_BYTES,        0x4822, NONE) \
    F(GUEST_INTERRUPTIBILITY_INFO,  0x4824, NONE) \
    F(GUEST_ACTIVITY_STATE,     0x4826, NONE) \
    F(GUEST_SMBASE,         0x4828, NONE) \
    F(GUEST_SYSENTER_CS,        0x482a, NONE) \
    F(VMX_PREEMPTION_TIMER_VALUE,   0x482e, PREEMPT_TIMER) \
    /* 32-bit guest state, extended PML */ \
    F(GUEST_EPML_INDEX,     EPML_VMCS_INDEX, EPML) \
    F(GUEST_EPML_ACTIVE,    EPML_VMCS_ACTIVE, EPML) \
    /* 32-bit host state (B.3.4) */ \
    F(HOST_IA32_SYSENTER_CS,    0x4c00, NONE) \
    /* natural-width control (B.4.1) */ \
    F(CR0_GUEST_HOST_MASK,      0x6000, NONE) \
    F(CR4_GUEST_HOST_MASK,      0x6002, NONE) \
    F(CR0_READ_SHADOW,      0x6004, NONE) \
    F(CR4_READ_SHADOW,      0x6006, NONE) \
    F(CR3_TARGET_VALUE0,        0x6008, NONE) \
    F(CR3_TARGET_VALUE1,        0x600a, NONE) \
    F(CR3_TARGET_VALUE2,        0x600c, NONE) \
    F(CR3_TARGET_VALUE3,        0x600e, NONE) \
    /* natural-width read-only data (B.4.2) */ \
    F(EXIT_QUALIFICATION,       0x6400, NONE) \
    F(IO_RCX,           0x6402, NONE) \
    F(IO_RSI,           0x6404, NONE) \
    F(IO_RDI,           0x6406, NONE) \
    F(IO_RIP,           0x6408, NONE) \
    F(GUEST_LINEAR_ADDRESS,     0x640a, NONE) \
    /* natural-width guest state (B.4.3) */ \
    F(GUEST_CR0,            0x6800, NONE) \
    F(GUEST_CR3,            0x6802, NONE) \
    F(GUEST_CR4,            0x6804, NONE) \
    F(GUEST_ES_BASE,        0x6806, NONE) \
    F(GUEST_CS_BASE,        0x6808, NONE) \
    F(GUEST_SS_BASE,        0x680a, NONE) \
    F(GUEST_DS_BASE,        0x680c, NONE) \
    F(GUEST_FS_BASE,        0x680e, NONE) \
    F(GUEST_GS_BASE,        0x6810, NONE) \
    F(GUEST_LDTR_BASE,      0x6812, NONE) \
    F(GUEST_TR_BASE,        0x6814, NONE) \
    F(GUEST_GDTR_BASE,      0x6816, NONE) \
    F(GUEST_IDTR_BASE,      0x6818, NONE) \
    F(GUEST_DR7,            0x681a, NONE) \
    F(GUEST_RSP,            0x681c, NONE) \
    F(GUEST_RIP,            0x681e, NONE) \
    F(GUEST_RFLAGS,         0x6820, NONE) \
    F(GUEST_PENDING_DBG_EXCEPTIONS, 0x6822, NONE) \
    F(GUEST_SYSENTER_ESP,       0x6824, NONE) \
    F(GUEST_SYSENTER_EIP,       0x6826, NONE) \
    /* natural-width host state (B.4.4) */ \
    F(HOST_CR0,         0x6c00, NONE) \
    F(HOST_CR3,         0x6c02, NONE) \
    F(HOST_CR4,         0x6c04, NONE) \
    F(HOST_FS_BASE,         0x6c06, NONE) \
    F(HOST_GS_BASE,         0x6c08, NONE) \
    F(HOST_TR_BASE,         0x6c0a, NONE) \
    F(HOST_GDTR_BASE,       0x6c0c, NONE) \
    F(HOST_IDTR_BASE,       0x6c0e, NONE) \
    F(HOST_IA32_SYSENTER_ESP,   0x6c10, NONE) \
    F(HOST_IA32_SYSENTER_EIP,   0x6c12, NONE) \
    F(HOST_RSP,         0x6c14, NONE) \
    F(HOST_RIP,         0x6c16, NONE)

/* VMCS_<NAME>: the architectural encoding. */
enum vmcs_encoding {
#define VMCS_ENC_ENUM(name, enc, req) VMCS_##name = enc,
    VMCS_FIELD_LIST(VMCS_ENC_ENUM)
#undef VMCS_ENC_ENUM
};

/* VMCS_ID_<NAME>: dense index into the VMCS cache (struct vmcs_store). */
enum vmcs_field_id {
#define VMCS_ID_ENUM(name, enc, req) VMCS_ID_##name,
    VMCS_FIELD_LIST(VMCS_ID_ENUM)
#undef VMCS_ID_ENUM
    VMCS_NR_FIELDS
};

struct vmcs_field_info {
    const char *name;
    uint16_t encoding;
    uint8_t req;        /* enum vmcs_req */
};

extern const struct vmcs_field_info vmcs_fields[VMCS_NR_FIELDS];

/* The VMCS cache: one 64-bit slot per field, by enum vmcs_field_id. */
struct vmcs_store {
    uint64_t f[VMCS_NR_FIELDS];
};

/*
 * Look up the field an encoding names (either half of a 64-bit field).
 * Returns the field id, or -1 if the encoding names no field we implement.
 */
int vmcs_field_lookup(uint32_t encoding);
/* The field id of an even encoding by a plain search (vmcs_field_lookup()
 * uses a table; unit tests compare the two). */
int vmcs_id_search(uint32_t even_encoding);

/* Width in bytes of what a VMREAD/VMWRITE of @encoding transfers. */
unsigned vmcs_access_width(uint32_t encoding, bool long_mode);

/*
 * VMREAD (26.11.2 semantics on the cached copy): the value of the field or
 * half named by @encoding, zero-extended.  @encoding must be valid.
 */
uint64_t vmcs_read(const struct vmcs_store *vmcs, uint32_t encoding);

/*
 * VMWRITE: store @value in the field or half named by @encoding, truncated
 * to the field's width; writing the high half leaves the low half intact.
 */
void vmcs_write(struct vmcs_store *vmcs, uint32_t encoding, uint64_t value);

/*
 * The same on one field's 64-bit slot, wherever it is kept (a shadow VMCS
 * is accessed in its region, not in the cache): the value VMREAD returns,
 * and the slot after a VMWRITE of @value.
 */
uint64_t vmcs_slot_read(uint64_t slot, uint32_t encoding);
uint64_t vmcs_slot_write(uint64_t slot, uint32_t encoding, uint64_t value);

/* True for the read-only VM-exit information fields (B.1-B.4, type 1). */
static inline bool vmcs_is_exit_info(uint32_t encoding)
{
    return VMCS_ENC_TYPE(encoding) == VMCS_TYPE_EXIT_INFO;
}

/*
 * IA32_VMX_VMCS_ENUM (A.9): bits 9:1 hold the highest index of any field
 * encoding in @vmcs_fields whose requirement @has_req accepts.
 */
uint64_t vmcs_enum_msr(bool (*has_req)(enum vmcs_req req, void *opaque), void *opaque);

#endif
