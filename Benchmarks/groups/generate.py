#!/usr/bin/env python3
"""Generate a synthetic sysfs tree shaped like a real 6.1 kernel's, for benchmarking svmm.

ROOT/sys/devices/pci0000:BB/0000:BB:DD.F with vendor, device, class, config, resource,
reset_method, driver and iommu_group links; ROOT/sys/bus/pci/devices and drivers; and
ROOT/sys/kernel/iommu_groups/N/{devices,reserved_regions,type}. Each group is one bus
holding FUNCTIONS/GROUPS functions (8 per slot), some bound to host drivers, some to vfio-pci.
"""
import argparse
import os


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--functions", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=100)
    a = ap.parse_args()
    per_group = a.functions // a.groups
    assert per_group * a.groups == a.functions and 0 < a.groups < 255
    sysfs = os.path.join(a.root, "sys")
    drivers = ["e1000e", "nvme", "vfio-pci", "snd_hda_intel", None]
    classes = ["0x020000", "0x010802", "0x030000", "0x040300", "0x0c0330"]
    for d in drivers:
        if d:
            os.makedirs(os.path.join(sysfs, "bus/pci/drivers", d), exist_ok=True)
    os.makedirs(os.path.join(sysfs, "bus/pci/devices"), exist_ok=True)
    write(os.path.join(a.root, "proc/cmdline"), "console=ttyS0 intel_iommu=on\n")
    n = 0
    for g in range(a.groups):
        bus = g + 1
        host = f"pci0000:{bus:02x}"
        gdir = os.path.join(sysfs, "kernel/iommu_groups", str(g))
        os.makedirs(os.path.join(gdir, "devices"), exist_ok=True)
        write(os.path.join(gdir, "reserved_regions"), "0x00000000fee00000 0x00000000feefffff msi\n")
        write(os.path.join(gdir, "type"), "DMA\n")
        for i in range(per_group):
            slot, fn = divmod(i, 8)
            addr = f"0000:{bus:02x}:{slot:02x}.{fn}"
            rel = f"devices/{host}/{addr}"
            ddir = os.path.join(sysfs, rel)
            os.makedirs(ddir, exist_ok=True)
            write(os.path.join(ddir, "vendor"), "0x8086\n")
            write(os.path.join(ddir, "device"), f"0x{0x1000 + n:04x}\n")
            write(os.path.join(ddir, "class"), classes[n % len(classes)] + "\n")
            config = bytearray(256)
            config[0:2] = (0x8086).to_bytes(2, "little")
            config[2:4] = (0x1000 + n).to_bytes(2, "little")
            config[0x0E] = 0x80 if per_group > 1 else 0x00
            with open(os.path.join(ddir, "config"), "wb") as f:
                f.write(config)
            write(os.path.join(ddir, "resource"),
                  f"0x00000000{0xf0000000 + n * 0x10000:08x} 0x00000000{0xf0000000 + n * 0x10000 + 0xffff:08x} 0x0000000000040200\n"
                  + "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" * 12)
            write(os.path.join(ddir, "reset_method"), "flr bus\n")
            driver = drivers[n % len(drivers)]
            if driver:
                os.symlink(f"../../../bus/pci/drivers/{driver}", os.path.join(ddir, "driver"))
                os.symlink(f"../../../../devices/{host}/{addr}", os.path.join(sysfs, "bus/pci/drivers", driver, addr))
            os.symlink(f"../../../kernel/iommu_groups/{g}", os.path.join(ddir, "iommu_group"))
            os.symlink(f"../../../../../devices/{host}/{addr}", os.path.join(gdir, "devices", addr))
            os.symlink(f"../../../devices/{host}/{addr}", os.path.join(sysfs, "bus/pci/devices", addr))
            n += 1
    print(f"generated {n} functions in {a.groups} groups under {a.root}")


if __name__ == "__main__":
    main()
