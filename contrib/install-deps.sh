#!/usr/bin/env bash
# Install what kvmwatch needs to build, run and test on Debian 12 (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  # build
  make gcc libc6-dev pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  libvirt-dev libxml2-dev libcap-dev libncurses-dev libmicrohttpd-dev
  # run: libvirt, QEMU, the daemons the plugins live in
  libvirt-daemon-system libvirt-clients qemu-system-x86 collectd-core collectd-dev collectd-utils
  netdata-core netdata-plugins-bash
  # tests
  python3 python3-pytest iproute2 util-linux procps libcap2-bin strace tmux prometheus man-db systemd
  # packaging (tests/system/test_debian.py builds the .debs)
  debhelper dpkg-dev lintian fakeroot git
  # benchmarks (bench/run compares kvmwatch's eBPF programs with bpftrace)
  bpftrace
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
