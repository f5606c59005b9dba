/*
 * Start one application processor and run a function on it (lib/smp.S).
 */
#include "libtest.h"

#define APIC_BASE	0xfee00000ul
#define APIC_ID		0x20
#define APIC_SVR	0xf0
#define APIC_ICR_LO	0x300
#define APIC_ICR_HI	0x310
#define TRAMPOLINE	0x8000

extern const u8 ap_trampoline[], ap_trampoline_end[];
extern void ap_cpu_setup(void);
u64 ap_stack_top;
static u8 ap_stack[16384] __attribute__((aligned(16)));
static void (*volatile ap_fn)(void);
static volatile int ap_running, ap_done;

static u32 apic_read(u32 reg) { return *(volatile u32 *)(APIC_BASE + reg); }
static void apic_write(u32 reg, u32 v) { *(volatile u32 *)(APIC_BASE + reg) = v; }

static void delay(void)
{
	for (volatile int i = 0; i < 200000; i++)
		;
}

void ap_main(void);
void ap_main(void)
{
	ap_cpu_setup();
	ap_running = 1;
	ap_fn();
	ap_done = 1;
}

/* Start the AP with APIC ID @apic_id running @fn; false if it never came up. */
bool smp_start_ap(u32 apic_id, void (*fn)(void))
{
	int i;

	memcpy((void *)(uintptr_t)TRAMPOLINE, ap_trampoline, ap_trampoline_end - ap_trampoline);
	ap_stack_top = (u64)(uintptr_t)(ap_stack + sizeof(ap_stack));
	ap_fn = fn;
	apic_write(APIC_SVR, apic_read(APIC_SVR) | 0x100);
	apic_write(APIC_ICR_HI, apic_id << 24);
	apic_write(APIC_ICR_LO, 0x00004500);		/* INIT, assert */
	delay();
	for (i = 0; i < 2; i++) {
		apic_write(APIC_ICR_HI, apic_id << 24);
		apic_write(APIC_ICR_LO, 0x00004600 | (TRAMPOLINE >> 12));	/* SIPI */
		delay();
	}
	for (i = 0; i < 1000 && !ap_running; i++)
		delay();
	return ap_running;
}

bool smp_ap_done(void)
{
	return ap_done;
}
