#!/bin/sh
# lab-description: capture-sysfs writes fixtures of the standard machine, as found and with the e1000e on vfio-pci
# lab-machine: standard
# lab-timeout: 120
# capture.host checks the format (and that the standard machine matches the desktop-gpu
# fixture). The lab-vfio-bound capture is the source of Tests/Fixtures/lab-vfio-bound.tar.gz.
. /lab/lib.sh
mkdir -p /tmp/cap
if /lab/capture-sysfs -q /lab/qemu-cmdline.txt lab-standard /tmp/cap; then pass capture-standard-ran
else fail capture-standard-ran "capture-sysfs exited $?"; fi

# The NIC onto vfio-pci with plain shell: override, unbind, reprobe.
nic=/sys/bus/pci/devices/0000:02:00.0
echo vfio-pci >$nic/driver_override
echo 0000:02:00.0 >$nic/driver/unbind
echo 0000:02:00.0 >/sys/bus/pci/drivers_probe
check_eq nic-on-vfio-pci "$(basename "$(readlink $nic/driver)")" vfio-pci
grp=$(basename "$(readlink $nic/iommu_group)")
check_eq vfio-group-node "$([ -c /dev/vfio/$grp ] && echo present || echo absent)" present

if /lab/capture-sysfs -q /lab/qemu-cmdline.txt lab-vfio-bound /tmp/cap; then pass capture-vfio-bound-ran
else fail capture-vfio-bound-ran "capture-sysfs exited $?"; fi

for n in lab-standard lab-vfio-bound; do
  tar -C /tmp/cap -czf /tmp/$n.tar.gz $n && artifact /tmp/$n.tar.gz
done
