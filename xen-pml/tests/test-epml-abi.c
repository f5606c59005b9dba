/*
 * TAP: the shared extended-PML definitions (include/epml-arch.h, used by
 * QEMU's emulation and Xen; include/epml-domctl.h, used by Xen and
 * xen-epml) have the sizes, offsets and values the specification and the
 * domctl ABI say.
 *
 * Layouts are checked twice: at compile time (_Static_assert: a wrong
 * layout does not build) and at run time (a line per check).  The
 * architectural values are compared with literals copied from
 * docs/epml.md and, where the document has a table, with the table itself,
 * read at run time (EPML_DOC, set by meson).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epml-arch.h"
#include "epml-domctl.h"
#include "../../target-i386-pml/tests/tap.h"

/*
 * The domctl ABI, on x86-64 (what Xen and xen-epml are built for):
 * xen_domctl's union is 128 bytes.
 */
_Static_assert(sizeof(struct xen_epml_page) == 16, "xen_epml_page");
_Static_assert(offsetof(struct xen_epml_page, flags) == 8, "page.flags");
_Static_assert(offsetof(struct xen_epml_page, reads) == 12, "page.reads");
_Static_assert(offsetof(struct xen_epml_page, writes) == 14, "page.writes");
_Static_assert(sizeof(struct xen_domctl_epml_op) == 128, "epml_op");
_Static_assert(offsetof(struct xen_domctl_epml_op, nr) == 16, "op.nr");
_Static_assert(offsetof(struct xen_domctl_epml_op, pages) == 24, "op.pages");
_Static_assert(offsetof(struct xen_domctl_epml_op, window) == 32, "op.window");
_Static_assert(offsetof(struct xen_domctl_epml_op, slow_resets) == 112,
               "op.slow_resets");
_Static_assert(offsetof(struct xen_domctl_epml_op, notifications) == 120,
               "op.notifications");

/* The architecture's structures (docs/epml.md sections 5 and 7). */
_Static_assert(sizeof(struct epml_entry) == EPML_ENTRY_SIZE, "entry");
_Static_assert(sizeof(struct epml_desc) == EPML_DESC_SIZE, "descriptor");
_Static_assert(offsetof(struct epml_desc, state[1]) == EPML_DESC_STATE(1),
               "desc.state[1]");
_Static_assert(offsetof(struct epml_desc, count[0]) == EPML_DESC_COUNT(0),
               "desc.count[0]");
_Static_assert(offsetof(struct epml_desc, dropped) == EPML_DESC_DROPPED,
               "desc.dropped");
_Static_assert(offsetof(struct epml_desc, handovers) == EPML_DESC_HANDOVERS,
               "desc.handovers");

#define OFF(s, f) ((unsigned long)offsetof(struct s, f))

static char *doc;

static void read_doc(void)
{
#ifdef EPML_DOC
    FILE *f = fopen(EPML_DOC, "r");
    long n;

    if (!f) {
        return;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    doc = calloc(1, n + 1);
    if (doc && fread(doc, 1, n, f) != (size_t)n) {
        free(doc);
        doc = NULL;
    }
    fclose(f);
#endif
}

/*
 * A number from docs/epml.md's tables: in the first row holding "| @cell",
 * column @col (0: the first), as hex ("2040H") or decimal ("4:3" gives 4).
 * -1: no document; -2: no such row.
 */
static long doc_cell(const char *cell, int col)
{
    char pat[128];
    const char *p, *h;

    if (!doc) {
        return -1;
    }
    snprintf(pat, sizeof(pat), "| %s", cell);
    p = strstr(doc, pat);
    if (!p) {
        return -2;
    }
    while (p > doc && p[-1] != '\n') {
        p--;
    }
    for (int i = 0; i <= col; i++) {
        p = strchr(p, '|');
        if (!p) {
            return -2;
        }
        p++;
    }
    p += strspn(p, " ");
    h = p + strspn(p, "0123456789abcdefABCDEF");
    return strtol(p, NULL, *h == 'H' ? 16 : 10);
}

static void doc_check(const char *cell, int col, long want, const char *what)
{
    long v = doc_cell(cell, col);

    if (v == -1) {
        printf("ok %d - # SKIP docs/epml.md not readable: %s\n", ++tap_n, what);
        return;
    }
    ok(v == want, "docs/epml.md: %s: %ld (header: %ld)", what, v, want);
}

/* docs/epml.md holds @text verbatim (for ranges a number cannot show). */
static void doc_has(const char *text, const char *what)
{
    if (!doc) {
        printf("ok %d - # SKIP docs/epml.md not readable: %s\n", ++tap_n, what);
        return;
    }
    ok(strstr(doc, text) != NULL, "docs/epml.md: %s: \"%s\"", what, text);
}

int main(void)
{
    read_doc();

    /* Domctl ABI, at run time too. */
    ok(sizeof(struct xen_epml_page) == 16, "sizeof(struct xen_epml_page) == 16");
    ok(OFF(xen_epml_page, flags) == 8 && OFF(xen_epml_page, reads) == 12 &&
       OFF(xen_epml_page, writes) == 14, "xen_epml_page: flags 8, reads 12, writes 14");
    ok(sizeof(struct xen_domctl_epml_op) == 128,
       "sizeof(struct xen_domctl_epml_op) == 128 (xen_domctl's union)");
    ok(OFF(xen_domctl_epml_op, nr) == 16 && OFF(xen_domctl_epml_op, pages) == 24 &&
       OFF(xen_domctl_epml_op, window) == 32 && OFF(xen_domctl_epml_op, dropped) == 96 &&
       OFF(xen_domctl_epml_op, notifications) == 120 &&
       OFF(xen_domctl_epml_op, full_exits) == 124,
       "xen_domctl_epml_op: nr 16, pages 24, window 32, dropped 96, notifications 120");
    ok(XEN_DOMCTL_epml_op == 87 && VIRQ_EPML == 14,
       "XEN_DOMCTL_epml_op 87, VIRQ_EPML 14");
    ok(XEN_DOMCTL_EPML_ENABLE == 0 && XEN_DOMCTL_EPML_DISABLE == 1 &&
       XEN_DOMCTL_EPML_INFO == 2 && XEN_DOMCTL_EPML_COLLECT == 3 &&
       XEN_DOMCTL_EPML_NEW_WINDOW == 4 && XEN_DOMCTL_EPML_COLLECT_NEXT == 5,
       "op numbers 0..5");
    ok(XEN_DOMCTL_EPML_READS == 1 && XEN_DOMCTL_EPML_WRITES == 2 &&
       XEN_DOMCTL_EPML_FILTER_WALK == 4 && XEN_EPML_PAGE_READ == 1 &&
       XEN_EPML_PAGE_WRITTEN == 2, "ENABLE flags and page flags");

    /* Section 2: enumeration. */
    ok(EPML_TERTIARY_ENABLE == 1ULL << 63, "enable extended PML: tertiary bit 63");
    ok(EPML_MSR_CAP == 0x4a0, "IA32_VMX_EPML_CAP is MSR 4A0H");
    ok(EPML_CAP_MAX_SIZE_MASK == 0xf && EPML_CAP_READ == 1ULL << 8 &&
       EPML_CAP_FILTER_WALK == 1ULL << 9 && EPML_CAP_EPTE == 1ULL << 10 &&
       EPML_CAP_NOTIFY == 1ULL << 11 && EPML_CAP_DROP == 1ULL << 12 &&
       EPML_CAP_POST == 1ULL << 13,
       "capability bits 3:0, 8..13");
    ok(EPML_CAP_RESERVED == ~(EPML_CAP_MAX_SIZE_MASK | EPML_CAP_READ |
                              EPML_CAP_FILTER_WALK | EPML_CAP_EPTE |
                              EPML_CAP_NOTIFY | EPML_CAP_DROP | EPML_CAP_POST),
       "capability reserved bits: 63:14, 7:4");
    doc_has("| 63:14, 7:4 | reserved (0) |", "capability: reserved bits");
    doc_check("read logging", 0, 8, "capability: read logging bit");
    doc_check("page-walk filtering", 0, 9, "capability: walk filter bit");
    doc_check("EPT-entry address in log", 0, 10, "capability: EPT-entry bit");
    doc_check("notification interrupt", 0, 11, "capability: notify bit");
    doc_check("drop-when-full policy", 0, 12, "capability: drop bit");
    doc_check("posted notification (", 0, 13, "capability: posted-notification bit");

    /* Section 3: VMCS field encodings, against the document's table. */
    ok(EPML_VMCS_TERTIARY_CTLS == 0x2034 && EPML_VMCS_BUFFER0 == 0x2040 &&
       EPML_VMCS_BUFFER1 == 0x2042 && EPML_VMCS_DESC == 0x2044 &&
       EPML_VMCS_POST_DESC == 0x2046 &&
       EPML_VMCS_CONTROLS == 0x4030 && EPML_VMCS_BUFFER_SIZE == 0x4032 &&
       EPML_VMCS_NOTIFY_VECTOR == 0x4034 && EPML_VMCS_NOTIFY_DEST == 0x4036 &&
       EPML_VMCS_INDEX == 0x4840 && EPML_VMCS_ACTIVE == 0x4842,
       "VMCS encodings 2034H, 2040H-2046H, 4030H-4036H, 4840H, 4842H");
    doc_check("tertiary VM-execution controls |", 1, EPML_VMCS_TERTIARY_CTLS, "tertiary controls");
    doc_check("EPML buffer 0 address |", 1, EPML_VMCS_BUFFER0, "buffer 0 address");
    doc_check("EPML buffer 1 address |", 1, EPML_VMCS_BUFFER1, "buffer 1 address");
    doc_check("EPML descriptor address |", 1, EPML_VMCS_DESC, "descriptor address");
    doc_check("EPML posted-notification descriptor address |", 1, EPML_VMCS_POST_DESC,
              "posted-notification descriptor address");
    doc_check("EPML controls |", 1, EPML_VMCS_CONTROLS, "EPML controls");
    doc_check("EPML buffer size |", 1, EPML_VMCS_BUFFER_SIZE, "buffer size");
    doc_check("EPML notification vector |", 1, EPML_VMCS_NOTIFY_VECTOR, "notification vector");
    doc_check("EPML notification destination |", 1, EPML_VMCS_NOTIFY_DEST,
              "notification destination");
    doc_check("EPML index |", 1, EPML_VMCS_INDEX, "EPML index");
    doc_check("EPML active buffer |", 1, EPML_VMCS_ACTIVE, "EPML active buffer");

    /* Section 4: controls. */
    ok(EPML_CTL_LOG_WRITE == 1 && EPML_CTL_LOG_READ == 2 && EPML_CTL_FILTER_WALK == 4 &&
       EPML_CTL_LOG_EPTE == 8 && EPML_CTL_NOTIFY == 16 && EPML_CTL_DROP == 32 &&
       EPML_CTL_POST == 64, "controls: bits 0..6");
    ok(EPML_CTL_VALID == (EPML_CTL_LOG_WRITE | EPML_CTL_LOG_READ | EPML_CTL_FILTER_WALK |
                          EPML_CTL_LOG_EPTE | EPML_CTL_NOTIFY | EPML_CTL_DROP |
                          EPML_CTL_POST),
       "controls: bits 31:7 reserved");
    doc_has("| 31:7 | reserved | must be 0 |", "controls: reserved bits");
    doc_has("EPML controls bits 31:7 must be 0", "section 10: reserved controls");
    doc_check("log writes", 0, 0, "control: log writes bit");
    doc_check("log reads", 0, 1, "control: log reads bit");
    doc_check("filter page walk", 0, 2, "control: filter page walk bit");
    doc_check("log EPT entry", 0, 3, "control: log EPT entry bit");
    doc_check("notify |", 0, 4, "control: notify bit");
    doc_check("drop when full", 0, 5, "control: drop when full bit");
    doc_check("post notification |", 0, 6, "control: post notification bit");

    /* Section 5: entries. */
    ok(EPML_ENTRY_SIZE == 16 && sizeof(struct epml_entry) == 16, "an entry is 16 bytes");
    ok(EPML_ENTRY_R == 1 && EPML_ENTRY_W == 2 && EPML_ENTRY_WALK == 4,
       "entry bits R 0, W 1, WALK 2");
    doc_check("R: this access", 0, 0, "entry: R bit");
    doc_check("W: this access", 0, 1, "entry: W bit");
    doc_check("WALK:", 0, 2, "entry: WALK bit");
    doc_check("level of the leaf", 0, EPML_ENTRY_LEVEL_SHIFT + 1, "entry: level's high bit");
    ok(EPML_ENTRY_LEVEL_MASK == 0x18 && EPML_ENTRY_RESERVED == 0xfe0 &&
       EPML_ENTRY_GPA_MASK == ~0xfffULL, "entry: level 4:3, reserved 11:5, GPA 63:12");
    {
        uint64_t e = epml_entry_make(0x123456789abcdefULL, 1, 0, 1, EPML_LEVEL_1G);

        ok(e == 0x123456789abc000ULL + 0x10 + 4 + 1 && epml_entry_level(e) == 2 &&
           epml_entry_gpa(e) == 0x123456789abc000ULL,
           "epml_entry_make/level/gpa round trip (%#llx)", (unsigned long long)e);
    }

    /* Sections 3 and 7: buffers and the descriptor. */
    ok(EPML_BUF_ENTRIES(0) == 256 && EPML_BUF_ENTRIES(9) == 131072 &&
       EPML_BUF_BYTES(9) == 2 << 20, "buffers: 4 KiB << n, 16 bytes an entry");
    ok(EPML_DESC_SIZE == 64 && EPML_DESC_ALIGN == 64, "descriptor: 64 bytes, 64-aligned");
    ok(EPML_DESC_STATE(0) == 0 && EPML_DESC_STATE(1) == 4 && EPML_DESC_COUNT(0) == 8 &&
       EPML_DESC_COUNT(1) == 12 && EPML_DESC_DROPPED == 16 && EPML_DESC_HANDOVERS == 24 &&
       EPML_DESC_FULL == 1, "descriptor offsets 0, 4, 8, 12, 16, 24; FULL bit 0");
    ok(OFF(epml_desc, state[1]) == 4 && OFF(epml_desc, count[1]) == 12 &&
       OFF(epml_desc, dropped) == 16 && OFF(epml_desc, handovers) == 24 &&
       OFF(epml_desc, rsvd) == 32, "struct epml_desc matches the offsets");
    doc_check("state[0]:", 0, EPML_DESC_STATE(0), "descriptor: state[0] offset");
    doc_check("state[1]:", 0, EPML_DESC_STATE(1), "descriptor: state[1] offset");
    doc_check("count[0]:", 0, EPML_DESC_COUNT(0), "descriptor: count[0] offset");
    doc_check("count[1] |", 0, EPML_DESC_COUNT(1), "descriptor: count[1] offset");
    doc_check("dropped:", 0, EPML_DESC_DROPPED, "descriptor: dropped offset");
    doc_check("dropped:", 1, 8, "descriptor: dropped size");
    doc_check("handovers:", 0, EPML_DESC_HANDOVERS, "descriptor: handovers offset");
    doc_check("handovers:", 1, 8, "descriptor: handovers size");
    doc_check("reserved | |", 0, OFF(epml_desc, rsvd), "descriptor: reserved offset");
    doc_check("reserved | |", 1, sizeof(((struct epml_desc *)0)->rsvd),
              "descriptor: reserved size");

    /* Section 8.1: the posted-interrupt descriptor (SDM 30.6's layout). */
    ok(sizeof(struct epml_pi_desc) == EPML_PI_DESC_SIZE && EPML_PI_DESC_SIZE == 64 &&
       EPML_PI_DESC_ALIGN == 64, "posted-interrupt descriptor: 64 bytes, 64-aligned");
    ok(OFF(epml_pi_desc, control) == EPML_PI_CONTROL && EPML_PI_CONTROL == 32 &&
       OFF(epml_pi_desc, ndst) == EPML_PI_NDST && EPML_PI_NDST == 36 &&
       EPML_PI_PIR(0) == 0 && EPML_PI_PIR(0x41) == 8 && EPML_PI_PIR(255) == 28,
       "posted-interrupt descriptor: PIR 0-31, control 32, NDST 36");
    ok(EPML_PI_ON == 1 && EPML_PI_SN == 2 && EPML_PI_NV_SHIFT == 16 &&
       epml_pi_nv(0xe10003) == 0xe1 && epml_pi_ndst(0x0300, 0) == 3 &&
       epml_pi_ndst(0x1234, 1) == 0x1234,
       "posted-interrupt descriptor: ON, SN, NV 23:16, NDST xAPIC 15:8 or x2APIC");
    doc_check("PIR:", 0, 8 * 32 - 1, "PI descriptor: PIR's high bit");
    doc_check("ON: outstanding", 0, 8 * EPML_PI_CONTROL, "PI descriptor: ON bit");
    doc_check("SN: suppress", 0, 8 * EPML_PI_CONTROL + 1, "PI descriptor: SN bit");
    doc_check("NV: notification vector", 0, 8 * EPML_PI_CONTROL + EPML_PI_NV_SHIFT + 7,
              "PI descriptor: NV's high bit");
    doc_check("NDST:", 0, 8 * EPML_PI_NDST + 31, "PI descriptor: NDST's high bit");
    doc_has("(xAPIC mode: bits 303:296)", "PI descriptor: xAPIC NDST bits");

    /* Sections 8 to 10. */
    ok(EPML_NOTIFY_MASK == 0xff && EPML_NOTIFY_MIN_VECTOR == 16 &&
       EPML_EXIT_PML_FULL == 62, "notification fields 7:0, vector >= 16, PML-full exit 62");

    return tap_done();
}
