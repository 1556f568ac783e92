// SPDX-License-Identifier: GPL-2.0
/* idle-kernel.S - a tiny multiboot kernel for libvirt tests: QEMU boots it
 * directly (-kernel / <kernel>), it writes KW_OUTS bytes to port 0x700, then
 * halts with interrupts off, so the domain stays running and idle until it
 * is destroyed. */
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, 0                   /* loaded from the ELF program headers */
	.set KW_OUTS, 16

	.section .text
	.code32
	.align 4
	.globl _start
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
_start:
	cli
	mov $KW_OUTS, %ecx
	mov $0x700, %dx
1:	mov %cl, %al
	out %al, %dx
	loop 1b
2:	hlt
	jmp 2b
