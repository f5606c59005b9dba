/* Unit tests: VMCS field table and VMREAD/VMWRITE rules (SDM Vol. 3D App. B). */
#include "tap.h"
#include "vmcs-fields.h"

static void test_table(void)
{
    int i, j, bad = 0, dup = 0;

    for (i = 0; i < VMCS_NR_FIELDS; i++) {
        uint32_t e = vmcs_fields[i].encoding;

        if ((e & VMCS_ENC_HIGH) || (e & VMCS_ENC_RESERVED) || !vmcs_fields[i].name)
            bad++;
        for (j = 0; j < i; j++)
            if (vmcs_fields[j].encoding == e)
                dup++;
    }
    ok(bad == 0, "every encoding is a full-access encoding without reserved bits (%d bad)", bad);
    ok(dup == 0, "no encoding appears twice (%d duplicates)", dup);
    ok(VMCS_NR_FIELDS > 140, "table holds %d fields", VMCS_NR_FIELDS);
}

static void test_known_encodings(void)
{
    /* Values from the SDM / ../shared/notes/facts.md. */
    ok(VMCS_GUEST_PML_INDEX == 0x0812 && VMCS_PML_ADDRESS == 0x200e,
       "PML fields: guest PML index 0x0812, PML address 0x200E");
    ok(VMCS_ENC_WIDTH(VMCS_GUEST_PML_INDEX) == VMCS_WIDTH_16 &&
       VMCS_ENC_TYPE(VMCS_GUEST_PML_INDEX) == VMCS_TYPE_GUEST,
       "guest PML index decodes as 16-bit guest state");
    ok(VMCS_ENC_WIDTH(VMCS_PML_ADDRESS) == VMCS_WIDTH_64 &&
       VMCS_ENC_TYPE(VMCS_PML_ADDRESS) == VMCS_TYPE_CONTROL,
       "PML address decodes as 64-bit control");
    ok(VMCS_ENC_WIDTH(VMCS_VM_EXIT_REASON) == VMCS_WIDTH_32 &&
       vmcs_is_exit_info(VMCS_VM_EXIT_REASON) && vmcs_is_exit_info(VMCS_EXIT_QUALIFICATION) &&
       vmcs_is_exit_info(VMCS_GUEST_PHYSICAL_ADDRESS),
       "exit reason, qualification and guest-physical address are read-only data");
    ok(!vmcs_is_exit_info(VMCS_GUEST_RIP) && !vmcs_is_exit_info(VMCS_EPT_POINTER) &&
       !vmcs_is_exit_info(VMCS_HOST_RIP), "guest RIP, EPTP and host RIP are writable");
    ok(VMCS_ENC_WIDTH(VMCS_HOST_RIP) == VMCS_WIDTH_NATURAL &&
       VMCS_ENC_TYPE(VMCS_HOST_RIP) == VMCS_TYPE_HOST, "host RIP is natural-width host state");
}

static void test_lookup(void)
{
    int i, wrong = 0;

    for (i = 0; i < VMCS_NR_FIELDS; i++) {
        uint32_t e = vmcs_fields[i].encoding;
        int high = vmcs_field_lookup(e | VMCS_ENC_HIGH);

        if (vmcs_field_lookup(e) != i)
            wrong++;
        if (VMCS_ENC_WIDTH(e) == VMCS_WIDTH_64 ? high != i : high != -1)
            wrong++;
    }
    ok(wrong == 0, "each encoding (and each 64-bit high half) finds its field (%d wrong)", wrong);
    ok(vmcs_field_lookup(0x0006) == -1, "an unimplemented encoding is not found");
    ok(vmcs_field_lookup(VMCS_GUEST_RIP | 0x1000) == -1, "bit 12 set: not found");
    ok(vmcs_field_lookup(VMCS_GUEST_RIP | 0x8000) == -1, "bit 15 set: not found");
    ok(vmcs_field_lookup(VMCS_GUEST_RIP | 0x10000) == -1, "bits above 15 set: not found");
    ok(vmcs_field_lookup(0xffffffffu) == -1, "all ones: not found");
    wrong = 0;
    for (uint32_t e = 0; e < 0x20000; e++) {
        int want = (e & VMCS_ENC_RESERVED) ||
                   ((e & VMCS_ENC_HIGH) && VMCS_ENC_WIDTH(e) != VMCS_WIDTH_64)
                   ? -1 : vmcs_id_search(e & ~VMCS_ENC_HIGH);
        wrong += vmcs_field_lookup(e) != want;
    }
    ok(wrong == 0, "the lookup table agrees with the plain search for every encoding below 20000H (%d differ)",
       wrong);
}

static void test_access(void)
{
    static struct vmcs_store v;

    vmcs_write(&v, VMCS_EPT_POINTER, 0x1122334455667788ull);
    ok(vmcs_read(&v, VMCS_EPT_POINTER) == 0x1122334455667788ull, "64-bit field full read");
    ok(vmcs_read(&v, VMCS_EPT_POINTER | VMCS_ENC_HIGH) == 0x11223344,
       "64-bit field high-half read");
    vmcs_write(&v, VMCS_EPT_POINTER | VMCS_ENC_HIGH, 0xaabbccdd99ull);
    ok(vmcs_read(&v, VMCS_EPT_POINTER) == 0xbbccdd9955667788ull,
       "high-half write stores bits 31:0 of the source, keeps the low half");
    vmcs_write(&v, VMCS_GUEST_PML_INDEX, 0x123456789ull);
    ok(vmcs_read(&v, VMCS_GUEST_PML_INDEX) == 0x6789, "16-bit field truncates writes");
    vmcs_write(&v, VMCS_PIN_BASED_VM_EXEC_CONTROL, ~0ull);
    ok(vmcs_read(&v, VMCS_PIN_BASED_VM_EXEC_CONTROL) == 0xffffffffull, "32-bit field truncates writes");
    vmcs_write(&v, VMCS_GUEST_RIP, ~0ull);
    ok(vmcs_read(&v, VMCS_GUEST_RIP) == ~0ull, "natural-width field keeps 64 bits");
    ok(vmcs_access_width(VMCS_GUEST_RIP, true) == 8 && vmcs_access_width(VMCS_GUEST_RIP, false) == 4,
       "natural width: 8 bytes in 64-bit mode, 4 outside");
    ok(vmcs_access_width(VMCS_EPT_POINTER | VMCS_ENC_HIGH, true) == 4 &&
       vmcs_access_width(VMCS_EPT_POINTER, false) == 8 &&
       vmcs_access_width(VMCS_GUEST_PML_INDEX, true) == 2,
       "access widths of high half, 64-bit and 16-bit fields");
    /* The same rules on a bare slot, as for a shadow VMCS in its region. */
    ok(vmcs_slot_read(0x1122334455667788ull, VMCS_EPT_POINTER | VMCS_ENC_HIGH) == 0x11223344 &&
       vmcs_slot_read(0x1122334455667788ull, VMCS_GUEST_PML_INDEX) == 0x7788,
       "slot read: high half, 16-bit truncation");
    ok(vmcs_slot_write(0x1122334455667788ull, VMCS_EPT_POINTER | VMCS_ENC_HIGH, 0xaabbccddull) ==
       0xaabbccdd55667788ull &&
       vmcs_slot_write(0, VMCS_PIN_BASED_VM_EXEC_CONTROL, ~0ull) == 0xffffffffull,
       "slot write: high half keeps the low half, 32-bit truncation");
}

static bool all_reqs(enum vmcs_req req, void *opaque)
{
    return true;
}

static bool no_epml(enum vmcs_req req, void *opaque)
{
    return req != VMCS_REQ_EPML;
}

static bool no_tsc_scaling(enum vmcs_req req, void *opaque)
{
    return req != VMCS_REQ_TSC_SCALING && req != VMCS_REQ_EPML;
}

static bool basic_only(enum vmcs_req req, void *opaque)
{
    return req == VMCS_REQ_NONE;
}

static void test_enum_msr(void)
{
    ok(vmcs_enum_msr(all_reqs, NULL) == 0x46,
       "VMCS_ENUM with extended PML: EPML posted-notification descriptor, index 35 (0x46)");
    ok(vmcs_enum_msr(no_epml, NULL) == 0x32, "VMCS_ENUM with TSC scaling: index 25 (0x32)");
    ok(vmcs_enum_msr(no_tsc_scaling, NULL) == 0x2e,
       "VMCS_ENUM without TSC scaling: preemption timer, index 23 (0x2e)");
    ok(vmcs_enum_msr(basic_only, NULL) == 0x2a,
       "VMCS_ENUM with only unconditional fields: index 21 (0x2a)");
}

int main(void)
{
    test_table();
    test_known_encodings();
    test_lookup();
    test_access();
    test_enum_msr();
    return tap_done();
}
