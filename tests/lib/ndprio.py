"""Chart priorities netdata 1.37.1 itself uses, read from its source
(github:netdata/netdata at tag v1.37.1), and kvmwatch's block among them.

netdata sorts charts, and the dashboard's sections (one per chart type:
kvm_host, kvm_<vm>, cgroup_qemu_<vm>, ...), by priority: a plugin whose
priorities fall among netdata's own is shuffled in with system.* charts."""

# Every value of a NETDATA_CHART_PRIO_* define in collectors/all.h (245
# defines, 226 distinct values): system.cpu and system.load = 100,
# system.io = 150, system.ram = 200, system.net = 500, system.processes =
# 600, system.ctxt = 800, system.intr = 900, system.softirqs = 950,
# system.interrupts/entropy/uptime = 1000, mem.* 1010-1603, disk.* 2000-2095,
# ..., cgroups 19000/40000/43000, statsd 90000, checks 99999.
NETDATA_137_ALL_H = (
    100, 150, 151, 200, 201, 250, 500, 501, 502, 600, 601, 700, 750, 800, 900, 950, 955, 1000, 1010,
    1020, 1030, 1040, 1050, 1100, 1105, 1110, 1200, 1201, 1202, 1203, 1204, 1205, 1206, 1207, 1250,
    1300, 1301, 1302, 1400, 1410, 1450, 1500, 1550, 1560, 1600, 1601, 1602, 1603, 2000, 2010, 2015,
    2020, 2023, 2024, 2030, 2040, 2050, 2060, 2070, 2080, 2090, 2095, 2100, 2101, 2105, 2106, 2107,
    2108, 2109, 2110, 2120, 2121, 2122, 2123, 2124, 2125, 2126, 2150, 2151, 2152, 2153, 2154, 2155,
    2156, 2157, 2158, 2159, 2160, 2190, 2195, 2200, 2201, 2202, 2203, 2204, 2205, 2207, 2208, 2209,
    2210, 2211, 2212, 2307, 2308, 2309, 2310, 2311, 2400, 2401, 2402, 2403, 2500, 2510, 2519, 2520,
    2522, 2523, 2530, 2540, 2550, 2560, 2570, 2580, 2600, 2700, 2800, 2810, 2820, 2900, 3000, 3001,
    3002, 3003, 3004, 3005, 3100, 3101, 3102, 4100, 4101, 4210, 4215, 4216, 4220, 4250, 4260, 4290,
    4500, 4510, 4600, 4610, 4700, 5001, 5002, 5003, 5100, 5130, 5150, 5170, 5200, 5201, 5290, 5300,
    5390, 5400, 5450, 5460, 5470, 6000, 6200, 6210, 6300, 6400, 6401, 6402, 6500, 6600, 6601, 6610,
    6700, 6701, 6710, 6800, 6840, 6850, 6851, 6900, 6910, 6920, 6930, 6940, 6950, 6960, 6970, 6980,
    7000, 7001, 7002, 7003, 7006, 7010, 7020, 7030, 7040, 7100, 8700, 8701, 8702, 8703, 8705, 8710,
    8751, 8752, 8753, 8754, 9500, 9501, 9502, 9503, 19000, 40000, 43000, 90000, 99999, 132030, 1000100,
)

# Ranges netdata's plugins fill with base + offset (and per-core/-device
# increments), beyond the single values above.
NETDATA_137_BLOCKS = (
    (100, 9999, "proc.plugin and the other system.*, cpu.*, mem.*, disk.*, net.* charts (all.h)"),
    (19000, 19230, "cgroups.plugin systemd services (NETDATA_CHART_PRIO_CGROUPS_SYSTEMD + 0..230)"),
    (20000, 21999, "apps.plugin (20001-20053) and ebpf.plugin's apps charts (20061-21103)"),
    (30000, 30999, "xenstat.plugin, netdata's own Xen VM plugin (30001-30800)"),
    (40000, 42460, "cgroups.plugin containers and VMs (NETDATA_CHART_PRIO_CGROUPS_CONTAINERS + 0..2460)"),
    (43000, 43011, "cgroup network interfaces (proc.plugin, NETDATA_CHART_PRIO_CGROUP_NET_IFACE + 0..11)"),
    (45000, 45803, "ebpf.plugin per-cgroup charts (NETDATA_CHART_PRIO_CGROUPS_CONTAINERS + 5000..5803)"),
    (60000, 60000, "python.d.plugin's default priority"),
    (70000, 70000, "go.d.plugin's default priority"),
    (90000, 99999, "statsd private charts (90000), checks (99999)"),
    (100000, 10 ** 9, "netdata's own monitoring charts (netdata.*)"),
)

# kvmwatch.plugin: after every cgroup chart (cgroups.plugin, ebpf.plugin's
# cgroup charts end at 45803), before python.d (60000) and go.d (70000).
KVMWATCH_HOST = (46000, 46999)   # kvm_host.*
KVMWATCH_VM = (47000, 48999)     # kvm_<vm>.*
