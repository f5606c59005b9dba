/*
 * Multiboot (v1) entry for the qemu-pml bare-metal test guests.
 *
 * QEMU's -kernel loader enters _start in 32-bit protected mode, paging off,
 * EAX = 0x2BADB002, EBX = multiboot information.  We identity-map the first
 * 4 GiB with 2 MiB pages, switch to long mode and call boot_main() on a
 * 16 KiB stack.  The ELF is linked for x86-64 and converted to elf32-i386
 * after linking, because the multiboot loader takes only 32-bit ELF.
 */
#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003	/* page-align modules, want memory info */

#define CR0_PE		(1 << 0)
#define CR0_PG		(1 << 31)
#define CR4_PAE		(1 << 5)
#define MSR_EFER	0xc0000080
#define EFER_LME	(1 << 8)
#define PTE_P_RW	0x003
#define PDE_2M		0x083		/* present, writable, page size */

	.section .text.boot, "ax"
	.code32
	.balign 4
multiboot_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.globl _start
_start:
	movl	$boot_stack_top, %esp
	movl	%ebx, multiboot_info

	/* 2048 PDEs over four page directories map 0..4 GiB. */
	xorl	%ecx, %ecx
1:	movl	%ecx, %eax
	shll	$21, %eax
	orl	$PDE_2M, %eax
	movl	%eax, boot_pd(, %ecx, 8)
	movl	%ecx, %eax
	shrl	$11, %eax
	movl	%eax, boot_pd + 4(, %ecx, 8)
	incl	%ecx
	cmpl	$2048, %ecx
	jne	1b

	xorl	%ecx, %ecx
2:	movl	%ecx, %eax
	shll	$12, %eax
	addl	$boot_pd + PTE_P_RW, %eax
	movl	%eax, boot_pdpt(, %ecx, 8)
	incl	%ecx
	cmpl	$4, %ecx
	jne	2b

	movl	$boot_pdpt + PTE_P_RW, boot_pml4

	lgdt	boot_gdt_desc
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
	orl	$(CR0_PG | CR0_PE), %eax
	movl	%eax, %cr0
	ljmp	$0x08, $start64

	.code64
start64:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movq	$boot_stack_top, %rsp
	xorl	%ebp, %ebp
	call	boot_main
3:	cli
	hlt
	jmp	3b

	.section .rodata
	.balign 8
	.globl boot_gdt
boot_gdt:
	.quad 0				/* null */
	.quad 0x00af9b000000ffff	/* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf93000000ffff	/* 0x10: data, DPL 0 */
	.quad 0x00cf9b000000ffff	/* 0x18: 32-bit code, DPL 0 */
boot_gdt_end:
boot_gdt_desc:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt

	.section .data
	.balign 8
	.globl multiboot_info
multiboot_info:
	.quad 0

	.section .bss
	.balign 4096
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096
boot_stack:	.skip 16384
boot_stack_top:
