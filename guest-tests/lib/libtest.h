/*
 * qemu-pml bare-metal test library.
 *
 * Output protocol (read by guest-tests/runner.py), one line each on the
 * debug console (port 0xe9):
 *   PASS: <assertion>
 *   FAIL: <assertion>
 *   INFO: <text>
 *   END: <passed> <failed>
 * then the guest writes to isa-debug-exit (port 0xf4).
 */
#ifndef LIBTEST_H
#define LIBTEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int16_t s16;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Provided by each test guest. */
void test_main(void);

/* Output and verdicts. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void __attribute__((noreturn)) test_abort(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
void __attribute__((noreturn)) test_exit(void);

void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
/* Whether QEMU's -append gave this word (tests.list: expectations). */
bool test_has_arg(const char *word);

/*
 * Expected exceptions.  An instruction placed with EX_FIXUP(insn, resume)
 * that faults resumes at `resume`; the vector and error code are recorded.
 * Any other exception aborts the test with its vector and RIP.
 */
#define EX_FIXUP(insn, resume) \
	".pushsection .ex_table, \"a\"\n\t.quad " insn ", " resume "\n\t.popsection\n\t"

struct ex_record {
	int vector;		/* -1: none since ex_clear() */
	u64 error_code;
	u64 rip;
};
extern volatile struct ex_record ex_last;

static inline void ex_clear(void)
{
	ex_last.vector = -1;
	ex_last.error_code = 0;
	ex_last.rip = 0;
}

#define NO_EXCEPTION	-1
#define DE_VECTOR	0
#define UD_VECTOR	6
#define GP_VECTOR	13
#define PF_VECTOR	14

/* A second CPU (lib/smp.c): start it running @fn; has it returned? */
bool smp_start_ap(u32 apic_id, void (*fn)(void));

/* Interrupts (vectors 32-255) and NMI (2): a handler per vector, called
 * with the vector's stub frame; it must apic_eoi() for a local-APIC
 * interrupt. */
void set_irq_handler(unsigned vector, void (*fn)(void));
void apic_eoi(void);

/* NMIs the host sends (QMP inject-nmi, which arrives on LINT1):
 * host_nmi_enable() turns on the local APIC with LINT1 delivering NMI and
 * counts each one in host_nmis, so a guest can wait for the host between
 * the steps of a host-driven test. */
void host_nmi_enable(void);
extern volatile int host_nmis;
bool smp_ap_done(void);

/* The physical address of @p: the tests run identity-mapped. */
static inline u64 pa(const void *p) { return (u64)(uintptr_t)p; }

/* "mov $value, %eax; ret" at @at: a function returning @value. */
static inline void emit_ret_imm(volatile u8 *at, u32 value)
{
	at[0] = 0xb8;
	at[1] = value;
	at[2] = value >> 8;
	at[3] = value >> 16;
	at[4] = value >> 24;
	at[5] = 0xc3;
}

/* Port I/O and control registers. */
static inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline u64 read_cr0(void) { u64 v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline u64 read_cr3(void) { u64 v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline void write_cr3(u64 v) { asm volatile("mov %0, %%cr3" :: "r"(v) : "memory"); }
static inline u64 read_cr4(void) { u64 v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline u64 rdtsc(void)
{
	u32 lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | ((u64)hi << 32);
}

struct cpuid_regs { u32 a, b, c, d; };
static inline struct cpuid_regs cpuid_count(u32 leaf, u32 sub)
{
	struct cpuid_regs r;
	asm volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d)
		     : "a"(leaf), "c"(sub));
	return r;
}
static inline struct cpuid_regs cpuid(u32 leaf) { return cpuid_count(leaf, 0); }

/* Each returns the vector of the exception it raised, or NO_EXCEPTION. */
int rdmsr_safe(u32 index, u64 *value);
int wrmsr_safe(u32 index, u64 value);
int write_cr0_safe(u64 value);
int write_cr3_safe(u64 value);
/* The PDE that maps @va (below 4 GiB) in the boot stub's identity map. */
u64 *boot_pde(u64 va);
/*
 * A second address space: a copy of the current one down to the page
 * directory holding @va (into @pml4, @pdpt, @pd, each a page), whose PDE
 * for @va is @pde.  Returns its CR3.
 */
u64 clone_space(u64 va, u64 pde, u64 *pml4, u64 *pdpt, u64 *pd);
int write_cr4_safe(u64 value);

static inline u64 rdmsr(u32 index)
{
	u32 lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
	return lo | ((u64)hi << 32);
}

#define CODE_SELECTOR		0x08
#define DATA_SELECTOR		0x10
#define TSS_SELECTOR		0x20

#define CPUID_1_ECX_VMX		(1u << 5)
#define CR4_VMXE		(1ull << 13)
#define MSR_EFER		0xc0000080
#define EFER_LMA		(1ull << 10)
#define MSR_IA32_FEATURE_CONTROL 0x3a
#define MSR_IA32_VMX_BASIC	0x480

#endif
