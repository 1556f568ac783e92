// SPDX-License-Identifier: GPL-2.0
/* kw_vcpu_from_comm and kw_is_qemu_name on arbitrary thread / process names. */
#include "fuzz.h"
#include "core/kw_vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	int v;

	fuzz_init();
	v = kw_vcpu_from_comm(s);
	FUZZ_CHECK(v >= -1 && v <= 65535);
	if (v >= 0) /* only names that carry the index */
		FUZZ_CHECK(strpbrk(s, "0123456789"));
	kw_is_qemu_name(s);
	free(s);
	return 0;
}
