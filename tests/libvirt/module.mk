# tests/libvirt/: a tiny multiboot kernel that libvirt tests boot with QEMU.
LV_KERNEL := $(O)/tests/lv-idle-kernel.elf

$(LV_KERNEL): tests/libvirt/idle-kernel.S
	@mkdir -p $(dir $@)
	$(CC) -m32 -c -o $(O)/tests/lv-idle-kernel.o $<
	$(LD) -m elf_i386 -Ttext=0x100000 -nostdlib -o $@ $(O)/tests/lv-idle-kernel.o

ALL_TARGETS += $(LV_KERNEL)
TEST_DEPS   += $(LV_KERNEL)
