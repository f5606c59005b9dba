/*
 * qemu-pml bare-metal test library: console, verdicts, exceptions, exit.
 */
#include "libtest.h"

#define DEBUGCON_PORT	0xe9
#define DEBUG_EXIT_PORT	0xf4

volatile struct ex_record ex_last = { .vector = -1 };
static unsigned int n_passed, n_failed;

/* ---- memory and strings ------------------------------------------------ */

void *memset(void *s, int c, size_t n)
{
	u8 *p = s;
	while (n--)
		*p++ = (u8)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *dp = d;
	const u8 *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *pa = a, *pb = b;
	for (; n; n--, pa++, pb++)
		if (*pa != *pb)
			return *pa - *pb;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (u8)*a - (u8)*b;
}

/*
 * Whether QEMU's -append gave @word (whole, space-separated).  Multiboot
 * passes the command line (flags bit 2, at offset 16 of the information
 * structure) with the kernel's file name as its first word.
 */
extern u64 multiboot_info;

bool test_has_arg(const char *word)
{
	const u32 *mbi = (const u32 *)(uintptr_t)multiboot_info;
	const char *p;

	if (!mbi || !(mbi[0] & 4) || !mbi[4])
		return false;
	for (p = (const char *)(uintptr_t)mbi[4]; *p; ) {
		const char *w = word;

		while (*p == ' ')
			p++;
		while (*w && *p == *w)
			p++, w++;
		if (!*w && (*p == ' ' || !*p))
			return true;
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

/* ---- formatting: %d %i %u %x %X %p %s %c %%, flags 0 - #, width, l/ll/z */

struct outbuf {
	char *buf;
	size_t size, len;
};

static void put(struct outbuf *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct outbuf *o, u64 v, unsigned base, bool neg,
		    int width, bool zero, bool left, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, pad;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	pad = width > n ? width - n : 0;
	if (!left && zero && neg) {
		put(o, '-');
		n--;
	}
	while (!left && pad-- > 0)
		put(o, zero ? '0' : ' ');
	while (n)
		put(o, tmp[--n]);
	while (left && pad-- > 0)
		put(o, ' ');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct outbuf o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		bool zero = false, left = false, alt = false;
		int width = 0, lng = 0;
		u64 u;

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '0')
				zero = true;
			else if (*fmt == '-')
				left = true;
			else if (*fmt == '#')
				alt = true;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			long long s = lng ? va_arg(ap, long long) : va_arg(ap, int);
			put_num(&o, s < 0 ? -(u64)s : (u64)s, 10, s < 0, width, zero, left, false);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
			u = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
			if (alt && *fmt != 'u') {
				put(&o, '0');
				put(&o, 'x');
			}
			put_num(&o, u, *fmt == 'u' ? 10 : 16, false, width, zero, left, *fmt == 'X');
			break;
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (u64)(uintptr_t)va_arg(ap, void *), 16, false, width, zero, left, false);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int n;
			if (!s)
				s = "(null)";
			n = (int)strlen(s);
			while (!left && width-- > n)
				put(&o, ' ');
			while (*s)
				put(&o, *s++);
			while (left && width-- > n)
				put(&o, ' ');
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case '%':
			put(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			put(&o, '%');
			put(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void console_write(const char *s)
{
	while (*s)
		outb(DEBUGCON_PORT, (u8)*s++);
}

static void vprint_line(const char *prefix, const char *fmt, va_list ap)
{
	char line[512];

	console_write(prefix);
	vsnprintf(line, sizeof(line), fmt, ap);
	console_write(line);
	console_write("\n");
}

void printf(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	console_write(line);
}

bool report(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line(ok ? "PASS: " : "FAIL: ", fmt, ap);
	va_end(ap);
	if (ok)
		n_passed++;
	else
		n_failed++;
	return ok;
}

void info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line("INFO: ", fmt, ap);
	va_end(ap);
}

/* isa-debug-exit makes QEMU exit with (value << 1) | 1: 1 = all passed. */
void test_exit(void)
{
	char line[64];

	snprintf(line, sizeof(line), "END: %u %u\n", n_passed, n_failed);
	console_write(line);
	outl(DEBUG_EXIT_PORT, n_failed ? 1 : 0);
	for (;;)
		asm volatile("cli; hlt");
}

void test_abort(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line("FAIL: aborted: ", fmt, ap);
	va_end(ap);
	n_failed++;
	test_exit();
}

/* ---- exceptions -------------------------------------------------------- */

struct ex_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error_code;
	u64 rip, cs, rflags, rsp, ss;
};

struct ex_fixup {
	u64 insn, resume;
};
extern const struct ex_fixup __ex_table_start[], __ex_table_end[];
extern const u8 exception_stubs[];

struct idt_entry {
	u16 offset0, selector;
	u8 ist, type_attr;
	u16 offset1;
	u32 offset2, reserved;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));

static void (*irq_handlers[256])(void);

void set_irq_handler(unsigned vector, void (*fn)(void))
{
	if ((vector < 32 && vector != 2) || vector > 255)
		test_abort("set_irq_handler: vector %u is not an interrupt vector or NMI", vector);
	irq_handlers[vector] = fn;
}

void apic_eoi(void)
{
	*(volatile u32 *)(uintptr_t)0xfee000b0ul = 0;
}

volatile int host_nmis;

static void count_host_nmi(void)
{
	host_nmis++;
}

void host_nmi_enable(void)
{
	volatile u32 *apic = (volatile u32 *)0xfee00000ul;

	set_irq_handler(2, count_host_nmi);
	apic[0xf0 / 4] |= 0x100;	/* spurious-vector register: APIC on */
	apic[0x360 / 4] = 0x400;	/* LVT LINT1: delivery mode NMI */
}

void handle_exception(struct ex_frame *f);
void handle_exception(struct ex_frame *f)
{
	const struct ex_fixup *e;

	if (f->vector >= 32 || (f->vector == 2 && irq_handlers[2])) {
		if (!irq_handlers[f->vector])
			test_abort("unexpected interrupt, vector %u", (unsigned)f->vector);
		irq_handlers[f->vector]();
		return;
	}

	for (e = __ex_table_start; e < __ex_table_end; e++) {
		if (e->insn == f->rip) {
			ex_last.vector = (int)f->vector;
			ex_last.error_code = f->error_code;
			ex_last.rip = f->rip;
			f->rip = e->resume;
			return;
		}
	}
	test_abort("unexpected exception %u (error code %#llx) at rip %#llx",
		   (unsigned)f->vector, (unsigned long long)f->error_code,
		   (unsigned long long)f->rip);
}

/*
 * The GDT the tests run with: the boot stub's flat code and data segments
 * plus a 64-bit TSS (VMX host state needs a usable TR).
 */
struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3, iomap_base;
} __attribute__((packed));

static struct tss64 tss __attribute__((aligned(16)));
static u64 gdt[8] __attribute__((aligned(16))) = {
	0,
	0x00af9b000000ffffull,		/* 0x08: 64-bit code, DPL 0 */
	0x00cf93000000ffffull,		/* 0x10: data, DPL 0 */
	0x00cf9b000000ffffull,		/* 0x18: 32-bit code, DPL 0 */
	0, 0,				/* 0x20: 64-bit TSS (two slots) */
};

/* Point slots 4-5 of @table at the 64-bit TSS @t, then load both. */
static void load_gdt_and_tss(u64 *table, struct tss64 *t)
{
	u64 base = (u64)(uintptr_t)t, limit = sizeof(*t) - 1;
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) desc = { sizeof(gdt) - 1, (u64)(uintptr_t)table };

	t->iomap_base = sizeof(*t);
	table[4] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		   (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	table[5] = base >> 32;
	asm volatile("lgdt %0" :: "m"(desc));
	asm volatile("ltr %w0" :: "r"(TSS_SELECTOR));
}

static void gdt_setup(void)
{
	load_gdt_and_tss(gdt, &tss);
}

static void idt_setup(void)
{
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) desc = { sizeof(idt) - 1, (u64)(uintptr_t)idt };
	int v;

	for (v = 0; v < 256; v++) {
		u64 a = (u64)(uintptr_t)(exception_stubs + 16 * v);
		idt[v] = (struct idt_entry) {
			.offset0 = (u16)a, .selector = 0x08, .type_attr = 0x8e,
			.offset1 = (u16)(a >> 16), .offset2 = (u32)(a >> 32),
		};
	}
	asm volatile("lidt %0" :: "m"(desc));
}

/* ---- safe accessors ---------------------------------------------------- */

int rdmsr_safe(u32 index, u64 *value)
{
	u32 lo = 0, hi = 0;

	ex_clear();
	asm volatile("1: rdmsr\n2:\n\t" EX_FIXUP("1b", "2b")
		     : "+a"(lo), "+d"(hi) : "c"(index) : "memory");
	*value = lo | ((u64)hi << 32);
	return ex_last.vector;
}

int wrmsr_safe(u32 index, u64 value)
{
	ex_clear();
	asm volatile("1: wrmsr\n2:\n\t" EX_FIXUP("1b", "2b")
		     :: "a"((u32)value), "d"((u32)(value >> 32)), "c"(index) : "memory");
	return ex_last.vector;
}

#define WRITE_CR_SAFE(n)						\
int write_cr##n##_safe(u64 value)					\
{									\
	ex_clear();							\
	asm volatile("1: mov %0, %%cr" #n "\n2:\n\t" EX_FIXUP("1b", "2b")	\
		     :: "r"(value) : "memory");				\
	return ex_last.vector;						\
}
WRITE_CR_SAFE(0)
WRITE_CR_SAFE(3)
WRITE_CR_SAFE(4)

/* ---- entry from boot.S ------------------------------------------------- */

/* The second CPU's descriptor tables: its own TSS (TR is per CPU), same IDT. */
static struct tss64 ap_tss __attribute__((aligned(16)));
static u64 ap_gdt[ARRAY_SIZE(gdt)] __attribute__((aligned(16)));

void ap_cpu_setup(void);
void ap_cpu_setup(void)
{
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) idesc = { sizeof(idt) - 1, (u64)(uintptr_t)idt };

	memcpy(ap_gdt, gdt, sizeof(gdt));
	load_gdt_and_tss(ap_gdt, &ap_tss);
	asm volatile("lidt %0" :: "m"(idesc));
}

void boot_main(void);
void boot_main(void)
{
	gdt_setup();
	idt_setup();
	test_main();
	test_exit();
}

/* ---- VMX outcomes (lib/vmx.h) ------------------------------------------ */

const char *vmx_outcome_name(int r);
const char *vmx_outcome_name(int r)
{
	static const char *const exc[32] = {
		[0] = "#DE", [6] = "#UD", [13] = "#GP", [14] = "#PF", [12] = "#SS",
	};

	switch (r) {
	case 0:
		return "VMsucceed";
	case 1:
		return "VMfailInvalid";
	case 2:
		return "VMfailValid";
	case 3:
		return "bad flags";
	}
	if ((r & 0x100) && (r & 0xff) < 32 && exc[r & 0xff])
		return exc[r & 0xff];
	return "other exception";
}

/* ---- the boot stub's page tables ---------------------------------------- */

u64 *boot_pde(u64 va)
{
	const u64 mask = 0x000ffffffffff000ull;
	u64 *pml4 = (u64 *)(uintptr_t)(read_cr3() & mask);
	u64 *pdpt = (u64 *)(uintptr_t)(pml4[(va >> 39) & 511] & mask);
	u64 *pd = (u64 *)(uintptr_t)(pdpt[(va >> 30) & 511] & mask);

	return &pd[(va >> 21) & 511];
}

u64 clone_space(u64 va, u64 pde, u64 *pml4, u64 *pdpt, u64 *pd)
{
	const u64 mask = 0x000ffffffffff000ull;
	unsigned i4 = (va >> 39) & 511, i3 = (va >> 30) & 511;
	u64 *cur_pml4 = (u64 *)(uintptr_t)(read_cr3() & mask);
	u64 *cur_pdpt = (u64 *)(uintptr_t)(cur_pml4[i4] & mask);
	u64 *cur_pd = (u64 *)(uintptr_t)(cur_pdpt[i3] & mask);

	memcpy(pml4, cur_pml4, 4096);
	memcpy(pdpt, cur_pdpt, 4096);
	memcpy(pd, cur_pd, 4096);
	pml4[i4] = pa(pdpt) | (cur_pml4[i4] & ~mask);
	pdpt[i3] = pa(pd) | (cur_pdpt[i3] & ~mask);
	pd[(va >> 21) & 511] = pde;
	return pa(pml4);
}
