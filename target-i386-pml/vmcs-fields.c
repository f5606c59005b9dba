/*
 * qemu-pml: VMCS field table and VMREAD/VMWRITE access rules (Intel SDM
 * Vol. 3D, Appendix B: field encodings and widths; Vol. 3C 25.11.2:
 * reading and writing fields, including the high half of 64-bit fields;
 * IA32_VMX_VMCS_ENUM, Vol. 3D A.9).  Pure logic, no CPU state: built into
 * the host-side unit tests as well.
 */
#include "pml-common.h"
#include "vmcs-fields.h"

const struct vmcs_field_info vmcs_fields[VMCS_NR_FIELDS] = {
#define VMCS_INFO(n, enc, r) \
    [VMCS_ID_##n] = { .name = #n, .encoding = enc, .req = VMCS_REQ_##r },
    VMCS_FIELD_LIST(VMCS_INFO)
#undef VMCS_INFO
};

/* The field id of an even encoding, or -1; the compiler builds the search. */
int vmcs_id_search(uint32_t even_encoding)
{
    switch (even_encoding) {
#define VMCS_CASE(name, enc, r) case enc: return VMCS_ID_##name;
    VMCS_FIELD_LIST(VMCS_CASE)
#undef VMCS_CASE
    default:
        return -1;
    }
}

/*
 * The same as a table for encodings whose index (bits 9:1) is below 64
 * (all of Appendix B's so far): width (14:13) x type (11:10) x index, id + 1
 * (0: no field).  The search above is a dozen unpredictable branches, paid
 * by every VMREAD and VMWRITE, which a hypervisor's exit handler issues by
 * the dozen.  Unit test: test-vmcs-fields (equal for every encoding).
 */
#define VMCS_TABLE_INDEXES 64
static int16_t vmcs_id_table[4][4][VMCS_TABLE_INDEXES];

static void __attribute__((constructor)) vmcs_id_table_init(void)
{
#define VMCS_SLOT(name, enc, r) \
    if ((((enc) >> 1) & 0x1ff) < VMCS_TABLE_INDEXES) { \
        vmcs_id_table[((enc) >> 13) & 3][((enc) >> 10) & 3][((enc) >> 1) & 0x1ff] = \
            VMCS_ID_##name + 1; \
    }
    VMCS_FIELD_LIST(VMCS_SLOT)
#undef VMCS_SLOT
}

static int vmcs_id_of(uint32_t even_encoding)
{
    uint32_t index = (even_encoding >> 1) & 0x1ff;

    /* Only width, type and a small index set (bit 0 is clear here). */
    if (__builtin_expect(!(even_encoding & ~0x6c7eu) && index < VMCS_TABLE_INDEXES, 1)) {
        return vmcs_id_table[(even_encoding >> 13) & 3][(even_encoding >> 10) & 3][index] - 1;
    }
    return vmcs_id_search(even_encoding);
}

int vmcs_field_lookup(uint32_t encoding)
{
    if (encoding & VMCS_ENC_RESERVED) {
        return -1;
    }
    /* Only 64-bit fields have a high half (access type 1). */
    if ((encoding & VMCS_ENC_HIGH) && VMCS_ENC_WIDTH(encoding) != VMCS_WIDTH_64) {
        return -1;
    }
    return vmcs_id_of(encoding & ~VMCS_ENC_HIGH);
}

unsigned vmcs_access_width(uint32_t encoding, bool long_mode)
{
    if (encoding & VMCS_ENC_HIGH) {
        return 4;
    }
    switch (VMCS_ENC_WIDTH(encoding)) {
    case VMCS_WIDTH_16:
        return 2;
    case VMCS_WIDTH_32:
        return 4;
    case VMCS_WIDTH_64:
        return 8;
    default:
        return long_mode ? 8 : 4;
    }
}

static uint64_t vmcs_field_mask(uint32_t encoding)
{
    switch (VMCS_ENC_WIDTH(encoding)) {
    case VMCS_WIDTH_16:
        return 0xffff;
    case VMCS_WIDTH_32:
        return 0xffffffff;
    default:
        return ~0ull;
    }
}

uint64_t vmcs_slot_read(uint64_t slot, uint32_t encoding)
{
    if (encoding & VMCS_ENC_HIGH) {
        return slot >> 32;
    }
    return slot & vmcs_field_mask(encoding);
}

uint64_t vmcs_slot_write(uint64_t slot, uint32_t encoding, uint64_t value)
{
    if (encoding & VMCS_ENC_HIGH) {
        return (uint32_t)slot | ((uint64_t)(uint32_t)value << 32);
    }
    return value & vmcs_field_mask(encoding);
}

uint64_t vmcs_read(const struct vmcs_store *vmcs, uint32_t encoding)
{
    return vmcs_slot_read(vmcs->f[vmcs_field_lookup(encoding)], encoding);
}

void vmcs_write(struct vmcs_store *vmcs, uint32_t encoding, uint64_t value)
{
    uint64_t *slot = &vmcs->f[vmcs_field_lookup(encoding)];

    *slot = vmcs_slot_write(*slot, encoding, value);
}

uint64_t vmcs_enum_msr(bool (*has_req)(enum vmcs_req req, void *opaque), void *opaque)
{
    unsigned max_index = 0;
    int i;

    for (i = 0; i < VMCS_NR_FIELDS; i++) {
        unsigned idx = VMCS_ENC_INDEX(vmcs_fields[i].encoding);

        if (idx > max_index && has_req((enum vmcs_req)vmcs_fields[i].req, opaque)) {
            max_index = idx;
        }
    }
    return (uint64_t)max_index << 1;
}
