# tests/kernel/: tiny multiboot kernel for QEMU tests (32-bit, freestanding).
# Built with the host gcc/ld only (-m32 -c needs no gcc-multilib since it
# never links against libc/libgcc).  Not built with $(CFLAGS): no -fPIC, no
# sanitizers.
TINY_KERNEL := $(O)/tests/tiny-kernel.elf
KERNEL_CFLAGS := -m32 -march=i686 -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-fno-asynchronous-unwind-tables -mno-sse -mno-mmx -O2 -std=gnu11 \
	-Wall -Wextra -Werror

$(O)/tests/kernel/boot.ko: tests/kernel/boot.S
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -c $< -o $@

$(O)/tests/kernel/tiny.ko: tests/kernel/tiny.c
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -c $< -o $@

$(TINY_KERNEL): $(O)/tests/kernel/boot.ko $(O)/tests/kernel/tiny.ko tests/kernel/tiny.ld
	@mkdir -p $(dir $@)
	$(LD) -m elf_i386 -nostdlib -T tests/kernel/tiny.ld -o $@ $(O)/tests/kernel/boot.ko $(O)/tests/kernel/tiny.ko

ALL_TARGETS += $(TINY_KERNEL)
TEST_DEPS   += $(TINY_KERNEL)
