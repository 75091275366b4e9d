#!/bin/sh
# lab-description: svmm passthrough refuses the mounted NVMe and the display function without --group (naming the HDA), with nothing changed
# lab-machine: standard
# lab-timeout: 120
# Truth from the live /sys and /proc/mounts: which partition is mounted where, which driver each
# function has before and after, and that svmm's journal holds nothing.
. /lab/lib.sh
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
state() { echo "$(drv 0000:03:00.0) $(drv 0000:01:00.0) $(drv 0000:01:00.1) $(cat /sys/bus/pci/devices/0000:03:00.0/driver_override) $(cat /sys/bus/pci/devices/0000:01:00.0/driver_override)"; }
before=$(state)
mounted=$(awk '$2 == "/mnt/nvme" { sub("/dev/", "", $1); print $1 }' /proc/mounts)
check_eq nvme-partition-mounted "$mounted" nvme0n1p1

svmm passthrough 0000:03:00.0 --kernel /bin/busybox >/tmp/refuse-nvme.txt 2>&1
check_eq nvme-refused-exit "$?" 1
check_eq nvme-refusal-names-mount "$(grep -q "in-use-storage: $mounted is mounted on /mnt/nvme" /tmp/refuse-nvme.txt && echo yes || echo no)" yes

svmm passthrough 0000:01:00.0 --kernel /bin/busybox >/tmp/refuse-gpu.txt 2>&1
check_eq display-refused-exit "$?" 1
hda=$(basename "$(readlink /sys/bus/pci/devices/0000:01:00.1/driver)")
check_eq display-refusal-names-hda "$(grep -q "group-viable: .*0000:01:00.1 ($hda) stays on a host driver" /tmp/refuse-gpu.txt && echo yes || echo no)" yes

check_eq nothing-changed "$(state)" "$before"
check_eq journal-holds-nothing "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
artifact /tmp/refuse-nvme.txt
artifact /tmp/refuse-gpu.txt
