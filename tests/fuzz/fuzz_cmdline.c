// SPDX-License-Identifier: GPL-2.0
/* kw_parse_qemu_cmdline on arbitrary /proc/PID/cmdline contents. */
#include "fuzz.h"
#include "core/kw_vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_vm vm;
	int i;

	fuzz_init();
	memset(&vm, 0, sizeof(vm));
	vm.pve_id = -1;
	kw_parse_qemu_cmdline((const char *)data, size, &vm);
	FUZZ_CHECK(memchr(vm.name, '\0', sizeof(vm.name)));
	FUZZ_CHECK(memchr(vm.uuid, '\0', sizeof(vm.uuid)));
	FUZZ_CHECK(vm.uuid[0] == '\0' || strlen(vm.uuid) == 36);
	for (i = 0; i < vm.nnetifs; i++) {
		FUZZ_CHECK(vm.netifs[i].name[0]);
		FUZZ_CHECK(strlen(vm.netifs[i].name) < KW_IFNAME_MAX);
		FUZZ_CHECK(!strchr(vm.netifs[i].name, '/'));
	}
	kw_vm_free(&vm);
	return 0;
}
