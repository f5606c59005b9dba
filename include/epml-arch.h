/*
 * Extended PML (EPML): the architectural constants of docs/epml.md, in one
 * place for everything that speaks to the emulated hardware: qemu-pml's
 * emulation (target-i386-pml/), xen-pml's Xen (linked into its tree as
 * asm/hvm/vmx/epml-arch.h) and host tests (xen-pml/tests/test-epml-abi.c).
 *
 * Rules, so that all of them can include it: only fixed-width integer
 * types, #defines and static inline functions; no QEMU, Xen or libc
 * header beyond <stdint.h> (Xen has none: its <xen/types.h>, included
 * first by every Xen file, gives the same type names); every name starts
 * with EPML_ or epml_.  Field names of QEMU's VMCS table and of Xen's VMCS
 * enum (EPML_CONTROLS, EPML_DESC_ADDR, ...) are not used here, so that
 * token pasting in either does not meet a macro.
 *
 * Section numbers (§n) are docs/epml.md's.
 */
#ifndef EPML_ARCH_H
#define EPML_ARCH_H

#ifndef __XEN__
#include <stdint.h>
#endif

/* §2 Enumeration. */
#define EPML_TERTIARY_ENABLE            (1ULL << 63) /* tertiary control */
#define EPML_MSR_CAP                    0x4a0   /* IA32_VMX_EPML_CAP */
#define EPML_CAP_MAX_SIZE_MASK          0xfULL  /* buffers up to 4 KiB << n */
#define EPML_CAP_READ                   (1ULL << 8)
#define EPML_CAP_FILTER_WALK            (1ULL << 9)
#define EPML_CAP_EPTE                   (1ULL << 10)
#define EPML_CAP_NOTIFY                 (1ULL << 11)
#define EPML_CAP_DROP                   (1ULL << 12)
#define EPML_CAP_POST                   (1ULL << 13)    /* §8.1 */
#define EPML_CAP_RESERVED               (~0x3fffULL | 0xf0ULL)

/* §3 VMCS field encodings. */
#define EPML_VMCS_TERTIARY_CTLS         0x2034  /* Intel's; bit 63 is ours */
#define EPML_VMCS_BUFFER0               0x2040  /* 64-bit control */
#define EPML_VMCS_BUFFER1               0x2042
#define EPML_VMCS_DESC                  0x2044
#define EPML_VMCS_POST_DESC             0x2046  /* §8.1 */
#define EPML_VMCS_CONTROLS              0x4030  /* 32-bit control */
#define EPML_VMCS_BUFFER_SIZE           0x4032
#define EPML_VMCS_NOTIFY_VECTOR         0x4034
#define EPML_VMCS_NOTIFY_DEST           0x4036
#define EPML_VMCS_INDEX                 0x4840  /* 32-bit guest state */
#define EPML_VMCS_ACTIVE                0x4842

/* §4 EPML controls (field EPML_VMCS_CONTROLS). */
#define EPML_CTL_LOG_WRITE              (1U << 0)
#define EPML_CTL_LOG_READ               (1U << 1)
#define EPML_CTL_FILTER_WALK            (1U << 2)
#define EPML_CTL_LOG_EPTE               (1U << 3)
#define EPML_CTL_NOTIFY                 (1U << 4)
#define EPML_CTL_DROP                   (1U << 5)
#define EPML_CTL_POST                   (1U << 6)       /* §8.1 */
#define EPML_CTL_VALID                  0x7fU   /* bits 31:7 reserved */

/* §5 Log entries: 16 bytes, qword 0 below, qword 1 the leaf EPTE's address. */
#define EPML_ENTRY_SIZE                 16
#define EPML_ENTRY_R                    (1ULL << 0)
#define EPML_ENTRY_W                    (1ULL << 1)
#define EPML_ENTRY_WALK                 (1ULL << 2)
#define EPML_ENTRY_LEVEL_SHIFT          3
#define EPML_ENTRY_LEVEL_MASK           (3ULL << EPML_ENTRY_LEVEL_SHIFT)
#define EPML_ENTRY_RESERVED             0xfe0ULL
#define EPML_ENTRY_GPA_MASK             (~0xfffULL)
#define EPML_LEVEL_4K                   0
#define EPML_LEVEL_2M                   1
#define EPML_LEVEL_1G                   2

struct epml_entry {
    uint64_t info;                      /* GPA 63:12, level, WALK, W, R */
    uint64_t epte;                      /* with EPML_CTL_LOG_EPTE, else 0 */
};

static inline unsigned int epml_entry_level(uint64_t info)
{
    return (unsigned int)((info & EPML_ENTRY_LEVEL_MASK) >>
                          EPML_ENTRY_LEVEL_SHIFT);
}

static inline uint64_t epml_entry_gpa(uint64_t info)
{
    return info & EPML_ENTRY_GPA_MASK;
}

/* The first qword of an entry; @level 0 4 KiB, 1 2 MiB, 2 1 GiB. */
static inline uint64_t epml_entry_make(uint64_t gpa, int r, int w, int walk,
                                       unsigned int level)
{
    return (gpa & EPML_ENTRY_GPA_MASK) | (r ? EPML_ENTRY_R : 0) |
           (w ? EPML_ENTRY_W : 0) | (walk ? EPML_ENTRY_WALK : 0) |
           ((uint64_t)level << EPML_ENTRY_LEVEL_SHIFT);
}

/* §3, §7 Buffers: 4 KiB << n bytes (n = field EPML_VMCS_BUFFER_SIZE). */
#define EPML_BUF_ALIGN                  4096
#define EPML_BUF_BYTES(n)               (4096ULL << (n))
#define EPML_BUF_ENTRIES(n)             ((uint32_t)(EPML_BUF_BYTES(n) / \
                                                    EPML_ENTRY_SIZE))

/* §7 The descriptor: 64 bytes, 64-byte aligned. */
#define EPML_DESC_SIZE                  64
#define EPML_DESC_ALIGN                 64
#define EPML_DESC_STATE(b)              (4 * (b))       /* uint32_t */
#define EPML_DESC_COUNT(b)              (8 + 4 * (b))   /* uint32_t */
#define EPML_DESC_DROPPED               16              /* uint64_t */
#define EPML_DESC_HANDOVERS             24              /* uint64_t */
#define EPML_DESC_FULL                  1U      /* in state[b]: bit 0 */

struct epml_desc {
    uint32_t state[2];                  /* EPML_DESC_FULL: CPU sets, sw clears */
    uint32_t count[2];                  /* entries when handed over */
    uint64_t dropped;                   /* §9, cumulative */
    uint64_t handovers;                 /* cumulative */
    uint64_t rsvd[4];
};

/* §8, §10 Notification fields: bits 7:0 used, vector at least 16. */
#define EPML_NOTIFY_MASK                0xffU
#define EPML_NOTIFY_MIN_VECTOR          16

/*
 * §8.1 Posted notification: the standard posted-interrupt descriptor
 * (SDM 30.6), 64 bytes, 64-byte aligned, at EPML_VMCS_POST_DESC.  PIR is
 * bits 255:0; ON and SN are bits 0 and 1 of the 32-bit word at byte 32,
 * NV its bits 23:16; NDST the 32-bit word at byte 36 (an xAPIC ID in its
 * bits 15:8).
 */
#define EPML_PI_DESC_SIZE               64
#define EPML_PI_DESC_ALIGN              64
#define EPML_PI_PIR(v)                  (4 * ((v) / 32))  /* uint32_t of bit v */
#define EPML_PI_CONTROL                 32      /* uint32_t: ON, SN, NV */
#define EPML_PI_NDST                    36      /* uint32_t */
#define EPML_PI_ON                      (1U << 0)
#define EPML_PI_SN                      (1U << 1)
#define EPML_PI_NV_SHIFT                16
#define EPML_PI_NV_MASK                 (0xffU << EPML_PI_NV_SHIFT)

struct epml_pi_desc {
    uint32_t pir[8];                    /* bit v of the 256: vector v posted */
    uint32_t control;                   /* EPML_PI_ON, EPML_PI_SN, NV */
    uint32_t ndst;                      /* physical APIC ID */
    uint32_t rsvd[6];
};

static inline uint8_t epml_pi_nv(uint32_t control)
{
    return (uint8_t)((control & EPML_PI_NV_MASK) >> EPML_PI_NV_SHIFT);
}

/*
 * The physical APIC ID in NDST: x2APIC mode uses all 32 bits, xAPIC
 * mode bits 15:8 (bits 303:296 of the descriptor).
 */
static inline uint32_t epml_pi_ndst(uint32_t ndst, int x2apic)
{
    return x2apic ? ndst : (ndst >> 8) & 0xffU;
}

/* §9 Both buffers full, "drop when full" 0: the stock PML-full exit. */
#define EPML_EXIT_PML_FULL              62

#endif /* EPML_ARCH_H */
