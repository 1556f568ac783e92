// SPDX-License-Identifier: GPL-2.0
/* tiny-kernel: the project's own multiboot kernel for QEMU tests.
 *
 * Command line (QEMU -append), all keys optional, numbers decimal or 0x-hex:
 *   pio=N      N x `outb` to port PORT                 (default 0)
 *   mmio=M     M x byte write to unbacked GPA ADDR     (default 0)
 *   spin=S     then burn CPU for S seconds (RTC-timed); spin=forever never ends
 *   port=PORT  default 0x700
 *   gpa=ADDR   default 0xd0000000
 *   exit=V     value written to isa-debug-exit at 0xf4: QEMU exits (V << 1) | 1
 *              (default 0x21 -> exit status 67)
 * Then it writes V to port 0xf4 (-device isa-debug-exit,iobase=0xf4,iosize=0x04)
 * and halts with interrupts off if that device is missing.
 */
#include <stdint.h>

#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_INFO_CMDLINE (1u << 2)

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Parse an unsigned number at s; returns chars consumed, 0 if none. */
static int parse_num(const char *s, uint32_t *out)
{
	uint32_t v = 0, base = 10;
	int i = 0, digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	for (;; i++, digits++) {
		char c = s[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			break;
		v = v * base + d;
	}
	if (!digits)
		return 0;
	*out = v;
	return i;
}

static int key_is(const char *s, const char *key)
{
	while (*key)
		if (*s++ != *key++)
			return 0;
	return *s == '=';
}

static uint8_t rtc_seconds(void)
{
	outb(0x70, 0x00);
	return inb(0x71);
}

void kmain(uint32_t magic, const struct mb_info *mbi);

void kmain(uint32_t magic, const struct mb_info *mbi)
{
	uint32_t pio = 0, mmio = 0, spin = 0, port = 0x700, gpa = 0xd0000000u, code = 0x21;
	int forever = 0;
	const char *s = "";

	if (magic == MB_BOOT_MAGIC && (mbi->flags & MB_INFO_CMDLINE))
		s = (const char *)(uintptr_t)mbi->cmdline;
	while (*s) {
		uint32_t *dst = 0;
		int n, is_spin = 0;

		while (is_space(*s))
			s++;
		if (!*s)
			break;
		if (key_is(s, "pio"))
			dst = &pio;
		else if (key_is(s, "mmio"))
			dst = &mmio;
		else if (key_is(s, "spin"))
			dst = &spin, is_spin = 1;
		else if (key_is(s, "port"))
			dst = &port;
		else if (key_is(s, "gpa"))
			dst = &gpa;
		else if (key_is(s, "exit"))
			dst = &code;
		if (dst) {
			while (*s != '=')
				s++;
			s++;
			if (is_spin && s[0] == 'f')
				forever = 1;       /* spin=forever */
			else if ((n = parse_num(s, dst)) > 0)
				s += n;
		}
		while (*s && !is_space(*s))   /* skip the rest of the word */
			s++;
	}

	for (uint32_t i = 0; i < pio; i++)
		outb((uint16_t)port, (uint8_t)i);
	for (uint32_t i = 0; i < mmio; i++)
		*(volatile uint8_t *)(uintptr_t)gpa = (uint8_t)i;

	/* Burn CPU; look at the RTC every ~100k iterations (each look is two
	 * port accesses on ports 0x70/0x71, never on PORT). */
	uint8_t last = rtc_seconds();
	uint32_t ticks = 0;
	while (forever || ticks < spin) {
		for (volatile uint32_t i = 0; i < 100000; i++)
			;
		uint8_t now = rtc_seconds();
		if (now != last) {
			last = now;
			ticks++;
		}
	}
	outb(0xf4, (uint8_t)code);
}
