/*
 * Exception and interrupt entry stubs, one per vector: each pushes a dummy
 * error code where the CPU does not push one, then the vector, and joins
 * exception_common, which saves the general registers into a struct
 * ex_frame and calls handle_exception().
 */
	.text
	.code64

	.macro VECTOR v
	.balign 16
vector_\v:
	.if !(\v == 8 || (\v >= 10 && \v <= 14) || \v == 17 || \v == 21 || \v == 29 || \v == 30)
	pushq	$0
	.endif
	pushq	$\v
	jmp	exception_common
	.endm

	.globl exception_stubs
exception_stubs:
	.altmacro
	.set v, 0
	.rept 256
	VECTOR %v
	.set v, v + 1
	.endr

exception_common:
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	/* Align the stack for C: the frame is 22 quadwords deep from an aligned rsp. */
	movq	%rsp, %rbx
	andq	$-16, %rsp
	call	handle_exception
	movq	%rbx, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	addq	$16, %rsp		/* vector, error code */
	iretq
