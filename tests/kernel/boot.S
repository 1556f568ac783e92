// SPDX-License-Identifier: GPL-2.0
/* Multiboot (v1) entry of the tiny test kernel: 32-bit protected mode,
 * paging off, EAX = magic, EBX = multiboot info. */
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, 0
	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.section .bss
	.align 16
stack_bottom:
	.skip 16384
stack_top:

	.section .text
	.globl _start
_start:
	cli
	movl $stack_top, %esp
	pushl %ebx
	pushl %eax
	call kmain
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
