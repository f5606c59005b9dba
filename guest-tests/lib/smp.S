/*
 * Application-processor start-up for the test guests (lib/smp.c).
 *
 * ap_trampoline..ap_trampoline_end is copied to physical 0x8000 and run
 * by an AP after INIT-SIPI-SIPI (vector 0x08): real mode -> protected
 * mode -> long mode on the BSP's page tables, then ap_entry64 loads the
 * stack the BSP left in ap_stack_top and calls ap_main().
 */
#define TRAMPOLINE	0x8000
#define CR0_PE		(1 << 0)
#define CR0_PG		(1 << 31)
#define CR4_PAE		(1 << 5)
#define MSR_EFER	0xc0000080
#define EFER_LME	(1 << 8)

	.section .rodata
	.globl ap_trampoline, ap_trampoline_end
	.code16
ap_trampoline:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	lgdtl	TRAMPOLINE + (ap_gdt_desc - ap_trampoline)
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$0x18, $(TRAMPOLINE + (ap_start32 - ap_trampoline))

	.code32
ap_start32:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$boot_pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$CR0_PG, %eax
	movl	%eax, %cr0
	ljmpl	$0x08, $(TRAMPOLINE + (ap_start64 - ap_trampoline))

	.code64
ap_start64:
	movq	$ap_entry64, %rax
	jmp	*%rax

	.balign 8
ap_gdt:
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf93000000ffff	/* 0x10: data */
	.quad 0x00cf9b000000ffff	/* 0x18: 32-bit code */
ap_gdt_end:
ap_gdt_desc:
	.word ap_gdt_end - ap_gdt - 1
	.long TRAMPOLINE + (ap_gdt - ap_trampoline)
ap_trampoline_end:

	.text
	.code64
ap_entry64:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movq	ap_stack_top(%rip), %rsp
	call	ap_main
1:	cli
	hlt
	jmp	1b
