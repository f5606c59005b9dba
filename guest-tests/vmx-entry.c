/*
 * VM entry and VM exits (SDM Vol. 3C chapters 26-28) with a minimal
 * hypervisor: the entry checks and their architected failures, then a
 * 64-bit guest sharing the host's page tables whose instructions exit
 * with the right reason, qualification and instruction length.
 * Run with a -cpu model that has VMX (e.g. Skylake-Server,+vmx).
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 msr_bitmap[4096] __attribute__((aligned(4096)));
static u8 io_bitmap_a[4096] __attribute__((aligned(4096)));
static u8 io_bitmap_b[4096] __attribute__((aligned(4096)));
static u64 msr_area[3][2] __attribute__((aligned(16)));
static u8 guest_stack[8192] __attribute__((aligned(16)));
#define GUEST_STACK_TOP ((void *)(guest_stack + sizeof(guest_stack)))

/* Filled by guest code, read by the host. */
static volatile u64 guest_seen[8];
static volatile int guest_exc_vector = -1;

/* ---- guest code: each block of instructions ends in VMCALL -------------- */

static u8 io_buf[16];
extern u8 g_outs[], g_ins[];
extern u8 g_cpuid[], g_vmcall[], g_hlt[], g_out[], g_in[], g_rdmsr_ok[], g_rdmsr_exit[],
	  g_wrmsr_exit[], g_ud2[], g_int3[], g_after_int_n3[], g_vmptrst[], g_vmread[], g_mov_cr3[], g_clts_like[], g_rdtsc[],
	  g_guest_end[];

static void __attribute__((noreturn, used)) guest_code(void)
{
	asm volatile(
		"g_cpuid: cpuid\n"
		"g_vmcall: vmcall\n"
		"g_hlt: hlt\n"
		"g_out: outb %%al, $0x80\n"
		"mov $0x70, %%edx\n"
		"g_in: inw %%dx, %%ax\n"
		::: "rax", "rbx", "rcx", "rdx", "memory");
	/* String I/O to port 0x80 (in the bitmap): REP OUTSB from io_buf, INSB to io_buf + 8. */
	asm volatile("g_outs: rep outsb\n" :: "S"(io_buf), "c"(4), "d"(0x80) : "memory");
	asm volatile("g_ins: insb\n" :: "D"(io_buf + 8), "d"(0x80) : "memory");
	/* RDMSR of IA32_TSC is not in the bitmap: no exit. */
	asm volatile("mov $0x10, %%ecx\n"
		     "g_rdmsr_ok: rdmsr\n" ::: "rax", "rcx", "rdx");
	asm volatile("mov $0x175, %%ecx\n"
		     "g_rdmsr_exit: rdmsr\n" ::: "rax", "rcx", "rdx");
	asm volatile("mov $0xc0000081, %%ecx; xor %%eax, %%eax; xor %%edx, %%edx\n"
		     "g_wrmsr_exit: wrmsr\n" ::: "rax", "rcx", "rdx");
	asm volatile("g_ud2: ud2\n");
	asm volatile("g_int3: int3\n");
	/* INT 3 written as CD 03 is a software interrupt: never intercepted. */
	asm volatile("g_int_n3: .byte 0xcd, 0x03\n"
		     "g_after_int_n3:\n"
		     ".pushsection .ex_table, \"a\"\n .quad g_after_int_n3, g_after_int_n3\n .popsection\n");
	/* They exit: the operands are only described (instruction information). */
	asm volatile("g_vmptrst: vmptrst 0x18(%%rsp,%%rbx,4)\n" ::: "memory");
	asm volatile("g_vmread: vmread %%rax, %%rcx\n" ::: "rcx", "memory");
	asm volatile("mov %%cr3, %%r9\n"
		     "g_mov_cr3: mov %%r9, %%cr3\n" ::: "r9", "memory");
	/* The host made the value a CR3-target value: no exit this time. */
	asm volatile("mov %%cr3, %%r9\n"
		     "mov %%r9, %%cr3\n" ::: "r9", "memory");
	/* CR0 read shadow: the host owns CR0.MP (mask) and shows MP=1. */
	guest_seen[0] = read_cr0();
	guest_seen[1] = read_cr4();
	asm volatile("vmcall");
	asm volatile("g_rdtsc: rdtsc\n" ::: "rax", "rdx");
	{
		u32 lo, hi;
		asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
		guest_seen[2] = lo | ((u64)hi << 32);
	}
	guest_seen[3] = rdmsr(0x174);		/* loaded by the entry MSR-load list */
	asm volatile("vmcall");
	asm volatile("g_guest_end: vmcall");
	for (;;)
		asm volatile("vmcall");
}

/* ---- helpers ------------------------------------------------------------ */

static void setup(void)
{
	vmx_setup_vmcs(vmcs, guest_code, GUEST_STACK_TOP);
}

/* Run until the next exit and check it; then skip the instruction. */
/* The exception the guest's own handler saw during the last expect_exit() (or -1). */
static int guest_vector;
static u64 guest_vector_rip;

static void expect_exit(u32 reason, const u8 *at, u64 len, const char *what)
{
	static int launched;
	u64 got, rip, ilen;
	int r;

	ex_last.vector = -1;
	r = vmx_enter(!launched);
	guest_vector = ex_last.vector;		/* before VMREAD clears it */
	guest_vector_rip = ex_last.rip;
	got = r == VMX_OK ? vmcs_get(VMCS_EXIT_REASON) : ~0ull;
	rip = r == VMX_OK ? vmcs_get(VMCS_GUEST_RIP) : 0;
	ilen = r == VMX_OK ? vmcs_get(VMCS_EXIT_INSTRUCTION_LEN) : 0;

	launched = 1;
	report(r == VMX_OK && got == reason, "%s: exit reason %u (got %s, reason %#llx)",
	       what, reason, vmx_outcome_name(r), (unsigned long long)got);
	if (at)
		report(rip == pa(at), "%s: guest RIP at the instruction (%#llx)", what,
		       (unsigned long long)rip);
	if (len)
		report(ilen == len, "%s: instruction length %llu (got %llu)", what,
		       (unsigned long long)len, (unsigned long long)ilen);
}

/* ---- entry checks ------------------------------------------------------- */

static void test_entry_checks(void)
{
	u64 saved;
	int r;

	setup();
	saved = vmcs_get(VMCS_PIN_BASED_CONTROLS);
	vmcs_set(VMCS_PIN_BASED_CONTROLS, 0);		/* must-1 bits clear */
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "VMLAUNCH with invalid pin-based controls: VMfailValid(7) (got %s, %llu)",
	       vmx_outcome_name(r), (unsigned long long)vmx_insn_error());
	vmcs_set(VMCS_PIN_BASED_CONTROLS, saved);

	vmcs_set(VMCS_CR3_TARGET_COUNT, 5);
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "VMLAUNCH with CR3-target count 5: VMfailValid(7)");
	vmcs_set(VMCS_CR3_TARGET_COUNT, 0);

	vmcs_set(VMCS_HOST_CS_SELECTOR, CODE_SELECTOR | 3);
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 8,
	       "VMLAUNCH with host CS.RPL=3: VMfailValid(8) (got %s, %llu)",
	       vmx_outcome_name(r), (unsigned long long)vmx_insn_error());
	vmcs_set(VMCS_HOST_CS_SELECTOR, CODE_SELECTOR);

	vmcs_set(VMCS_HOST_CR4, read_cr4() & ~(1ull << 5));
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 8,
	       "VMLAUNCH with host CR4.PAE=0 and a 64-bit host: VMfailValid(8)");
	vmcs_set(VMCS_HOST_CR4, read_cr4());

	/* Guest-state failures are VM exits with reason 33 | bit 31. */
	vmcs_set(VMCS_GUEST_RFLAGS, 0);			/* bit 1 must be 1 */
	r = vmx_enter(1);
	report(r == VMX_OK &&
	       vmcs_get(VMCS_EXIT_REASON) == (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE),
	       "VMLAUNCH with guest RFLAGS bit 1 clear: VM-entry failure, reason 33 (got %s, %#llx)",
	       vmx_outcome_name(r), (unsigned long long)vmcs_get(VMCS_EXIT_REASON));
	vmcs_set(VMCS_GUEST_RFLAGS, 2);
	r = vmx_enter(0);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 5,
	       "after a VM-entry failure the VMCS is still clear: VMRESUME fails with 5");

	vmcs_set(VMCS_GUEST_ES_AR + VMCS_SEG_STEP, 0xc093);	/* CS as a data segment */
	r = vmx_enter(1);
	report(r == VMX_OK &&
	       vmcs_get(VMCS_EXIT_REASON) == (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE),
	       "VMLAUNCH with a data segment in guest CS: reason 33");
	vmcs_set(VMCS_GUEST_ES_AR + VMCS_SEG_STEP, 0xa09b);

	vmcs_set(VMCS_GUEST_CR0, read_cr0() & ~(1ull << 5));	/* CR0.NE in FIXED0 */
	r = vmx_enter(1);
	report(r == VMX_OK &&
	       vmcs_get(VMCS_EXIT_REASON) == (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE),
	       "VMLAUNCH with guest CR0.NE=0: reason 33");
	vmcs_set(VMCS_GUEST_CR0, read_cr0());

	msr_area[0][0] = 0xc0000100;			/* FS base: not loadable */
	msr_area[0][1] = 0;
	vmcs_set(VMCS_ENTRY_MSR_LOAD_ADDR, pa(msr_area));
	vmcs_set(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
	r = vmx_enter(1);
	report(r == VMX_OK &&
	       vmcs_get(VMCS_EXIT_REASON) == (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_MSR_LOADING) &&
	       vmcs_get(VMCS_EXIT_QUALIFICATION) == 1,
	       "entry MSR-load list with IA32_FS_BASE: reason 34, entry 1 (got %#llx, %llu)",
	       (unsigned long long)vmcs_get(VMCS_EXIT_REASON),
	       (unsigned long long)vmcs_get(VMCS_EXIT_QUALIFICATION));
	vmcs_set(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
}

/* ---- exits -------------------------------------------------------------- */

static void test_exits(void)
{
	u64 q;

	setup();
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_HLT_EXITING | PROC_USE_IO_BITMAPS | PROC_USE_MSR_BITMAPS |
			  PROC_CR3_LOAD_EXITING | PROC_TSC_OFFSETTING));
	vmcs_set(VMCS_IO_BITMAP_A, pa(io_bitmap_a));
	vmcs_set(VMCS_IO_BITMAP_B, pa(io_bitmap_b));
	io_bitmap_a[0x80 / 8] |= 1 << (0x80 % 8);
	io_bitmap_a[0x71 / 8] |= 1 << (0x71 % 8);	/* IN from 0x70 (word) touches 0x71 */
	vmcs_set(VMCS_MSR_BITMAP, pa(msr_bitmap));
	msr_bitmap[0x175 / 8] |= 1 << (0x175 % 8);			/* read low */
	msr_bitmap[3072 + 0x81 / 8] |= 1 << (0x81 % 8);		/* write high: 0xc0000081 */
	vmcs_set(VMCS_EXCEPTION_BITMAP, (1u << UD_VECTOR) | (1u << 3));
	vmcs_set(VMCS_CR0_GUEST_HOST_MASK, 1u << 1);		/* host owns CR0.MP */
	vmcs_set(VMCS_CR0_READ_SHADOW, 1u << 1);
	vmcs_set(VMCS_TSC_OFFSET, 1ull << 60);
	msr_area[0][0] = 0x174;					/* SYSENTER_CS */
	msr_area[0][1] = 0x1234;
	vmcs_set(VMCS_ENTRY_MSR_LOAD_ADDR, pa(msr_area));
	vmcs_set(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
	vmcs_set(VMCS_GUEST_RSP, (u64)(uintptr_t)GUEST_STACK_TOP);
	vmcs_set(VMCS_GUEST_RIP, (u64)(uintptr_t)guest_code);

	expect_exit(EXIT_REASON_CPUID, g_cpuid, 2, "CPUID");
	report(rdmsr(0x174) == 0, "the entry MSR-load list changed only the guest's SYSENTER_CS");
	vmcs_set(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_VMCALL, g_vmcall, 3, "VMCALL");
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_HLT, g_hlt, 1, "HLT with HLT exiting");
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_IO, g_out, 2, "OUT to a port in I/O bitmap A");
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(q == ((0x80ull << 16) | 64), "OUT qualification: port 0x80, byte, out, immediate (%#llx)",
	       (unsigned long long)q);
	vmx_skip_instruction();
	/* Guest RDX is the host's at this point: set the port through RDX = 0x70. */
	expect_exit(EXIT_REASON_IO, g_in, 2, "16-bit IN whose second byte is in the bitmap");
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report((q & 0xf) == 9 && (q & 0x70) == 0,
	       "IN qualification: word size, direction in, port in DX (%#llx)", (unsigned long long)q);
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_IO, g_outs, 2, "REP OUTSB to a port in the bitmap");
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(q == ((0x80ull << 16) | 0x30) && vmcs_get(0x640a) == (u64)(uintptr_t)io_buf &&
	       vmcs_get(0x440e) == ((2u << 7) | (3u << 15)),
	       "REP OUTSB: string + REP, its linear address, 64-bit address size and DS "
	       "(%#llx, %#llx, info %#llx)", (unsigned long long)q,
	       (unsigned long long)vmcs_get(0x640a), (unsigned long long)vmcs_get(0x440e));
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_IO, g_ins, 1, "INSB from a port in the bitmap");
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(q == ((0x80ull << 16) | 0x18) && vmcs_get(0x640a) == (u64)(uintptr_t)(io_buf + 8) &&
	       vmcs_get(0x440e) == (2u << 7),
	       "INSB: string, in, ES:RDI's linear address, ES in the instruction information "
	       "(%#llx, %#llx, info %#llx)", (unsigned long long)q,
	       (unsigned long long)vmcs_get(0x640a), (unsigned long long)vmcs_get(0x440e));
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_RDMSR, g_rdmsr_exit, 2,
		    "RDMSR of an MSR set in the read bitmap (the TSC read before did not exit)");
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_WRMSR, g_wrmsr_exit, 2, "WRMSR of an MSR set in the high write bitmap");
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_EXCEPTION_NMI, g_ud2, 0, "UD2 with #UD in the exception bitmap");
	q = vmcs_get(VMCS_EXIT_INTR_INFO);
	report(q == 0x80000306, "#UD exit interruption info: valid, hardware exception, 6 (%#llx)",
	       (unsigned long long)q);
	vmcs_set(VMCS_GUEST_RIP, vmcs_get(VMCS_GUEST_RIP) + 2);
	expect_exit(EXIT_REASON_EXCEPTION_NMI, g_int3, 1, "INT3 with #BP in the exception bitmap");
	q = vmcs_get(VMCS_EXIT_INTR_INFO);
	report(q == 0x80000603, "#BP exit interruption info: valid, software exception, 3 (%#llx)",
	       (unsigned long long)q);
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_VMPTRST, g_vmptrst, 0, "VMPTRST in VMX non-root operation");
	report(guest_vector == 3 && guest_vector_rip == pa(g_after_int_n3),
	       "INT 3 as CD 03 with #BP in the exception bitmap: no exit, the guest's handler "
	       "ran (vector %d)", guest_vector);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(q == 0x18 && vmcs_get(0x440e) == 0x20d0102,
	       "VMPTRST 0x18(%%rsp,%%rbx,4): displacement, and scale 4, 64-bit, SS, index RBX, "
	       "base RSP (%#llx, info %#llx)", (unsigned long long)q,
	       (unsigned long long)vmcs_get(0x440e));
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_VMREAD, g_vmread, 3, "VMREAD in VMX non-root operation");
	report(vmcs_get(VMCS_EXIT_QUALIFICATION) == 0 && vmcs_get(0x440e) == 0x408,
	       "VMREAD %%rax, %%rcx: register operand RCX, field in RAX (info %#llx)",
	       (unsigned long long)vmcs_get(0x440e));
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_CR_ACCESS, g_mov_cr3, 4, "MOV to CR3 with CR3-load exiting");
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(q == (3 | (9 << 8)), "CR access qualification: CR3, MOV to CR, R9 (%#llx)",
	       (unsigned long long)q);
	/* With the guest's CR3 as a CR3-target value the same MOV does not exit. */
	vmcs_set(VMCS_CR3_TARGET_COUNT, 1);
	vmcs_set(VMCS_CR3_TARGET_VALUE0, read_cr3());
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_VMCALL, 0, 0, "MOV to CR3 of a CR3-target value does not exit");
	report(guest_seen[0] & (1u << 1), "guest reads CR0.MP from the read shadow (%#llx)",
	       (unsigned long long)guest_seen[0]);
	report(!(read_cr0() & (1u << 1)) || (guest_seen[0] & (1u << 1)),
	       "host CR0 is unchanged by the guest's view");
	vmx_skip_instruction();
	/* The exit's MSR-store list (28.4) saves IA32_TSC, without the offset. */
	msr_area[1][0] = 0x10;
	msr_area[1][1] = 0;
	vmcs_set(VMCS_EXIT_MSR_STORE_ADDR, pa(msr_area[1]));
	vmcs_set(VMCS_EXIT_MSR_STORE_COUNT, 1);
	expect_exit(EXIT_REASON_VMCALL, 0, 0, "RDTSC without RDTSC exiting does not exit");
	q = rdtsc();
	report(guest_seen[2] >= (1ull << 60), "guest TSC includes the TSC offset (%#llx)",
	       (unsigned long long)guest_seen[2]);
	report(msr_area[1][1] + (1ull << 60) > guest_seen[2] && msr_area[1][1] <= q,
	       "the exit stored IA32_TSC between the guest's RDTSC and the host's next one, "
	       "without the offset (%#llx)", (unsigned long long)msr_area[1][1]);
	vmcs_set(VMCS_EXIT_MSR_STORE_COUNT, 0);
	report(guest_seen[3] == 0x1234, "guest SYSENTER_CS came from the entry MSR-load list (%#llx)",
	       (unsigned long long)guest_seen[3]);
	vmx_skip_instruction();
	expect_exit(EXIT_REASON_VMCALL, g_guest_end, 3, "the guest reached its last VMCALL");
}

static void __attribute__((noreturn, used)) triple_fault_guest(void)
{
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) empty = { 0, 0 };

	asm volatile("lidt %0; int3" :: "m"(empty));
	for (;;)
		;
}

static void test_triple_fault(void)
{
	int r;

	vmx_setup_vmcs(vmcs, triple_fault_guest, GUEST_STACK_TOP);
	r = vmx_enter(1);
	report(r == VMX_OK && vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_TRIPLE_FAULT,
	       "a guest triple fault is a VM exit (reason 2), not a reset (got %s, %#llx)",
	       vmx_outcome_name(r), (unsigned long long)vmcs_get(VMCS_EXIT_REASON));
}

static void __attribute__((noreturn, used)) inject_guest(void)
{
	/* The injected #UD arrives here first; our IDT handler records it. */
	asm volatile("1: nop\n2:\n\t" EX_FIXUP("1b", "2b"));
	guest_exc_vector = ex_last.vector;
	for (;;)
		asm volatile("vmcall");
}

static void test_injection(void)
{
	int r;

	vmx_setup_vmcs(vmcs, inject_guest, GUEST_STACK_TOP);
	ex_clear();
	vmcs_set(VMCS_ENTRY_INTR_INFO, 0x80000306);		/* #UD, hardware exception */
	r = vmx_enter(1);
	report(r == VMX_OK && vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_VMCALL,
	       "VM entry injecting #UD, then the guest runs to VMCALL (got %s, %#llx)",
	       vmx_outcome_name(r), (unsigned long long)vmcs_get(VMCS_EXIT_REASON));
	report(guest_exc_vector == UD_VECTOR, "the guest's IDT received the injected #UD (%d)",
	       guest_exc_vector);
	report(!(vmcs_get(VMCS_ENTRY_INTR_INFO) & (1u << 31)),
	       "VM entry cleared the valid bit of the injection field");

	vmcs_set(VMCS_ENTRY_INTR_INFO, 0x8000030e);	/* #PF without its error code */
	r = vmx_enter(0);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "injecting #PF without an error code: VMfailValid(7) (got %s, %llu)",
	       vmx_outcome_name(r), (unsigned long long)vmx_insn_error());
}

void test_main(void)
{
	vmx_on();
	test_entry_checks();
	test_exits();
	test_injection();
	test_triple_fault();
	vmx_off();
}
