#!/bin/sh
# lab-description: svmm passthrough is SIGKILLed while L2 runs; svmm restore returns the e1000e to e1000e and no VFIO group or container is left
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 400
# SIGKILL gives svmm no chance to clean up: the kernel closes its fds (device, group, container, VM);
# the journal still says svmm holds 0000:02:00.0, and `svmm restore` must finish the job.
. /lab/lib.sh
DEV=0000:02:00.0
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
check_eq e1000e-before "$(drv $DEV)" e1000e
group=$(basename "$(readlink /sys/bus/pci/devices/$DEV/iommu_group)")

# L2 boots the stock kernel with `sleep 3600` as its init (rdinit=/bin/busybox -- sleep 3600), so
# it is certainly still running when svmm is killed 25 s in. (With the powering-off init, an idle
# CI machine finished the L2 boot inside 25 s and svmm exited 0 before the kill.)
timeout -s KILL 25 svmm passthrough "$DEV" --kernel "$L2_KERNEL" --initrd "$L2_INITRD" \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet rdinit=/bin/busybox -- sleep 3600" --mem 256M \
  </dev/null >/tmp/crash.log 2>&1
rc=$?
check_eq svmm-killed "$rc" 137
check_eq guest-was-running "$(grep -c 'guest ended' /tmp/crash.log)" 0
check_eq held-after-kill "$(drv $DEV)" vfio-pci
check_eq journal-holds-it "$(svmm status 2>/dev/null | grep -c "$DEV")" 1

svmm restore >/tmp/restore.log 2>&1
check_eq restore-exit "$?" 0
check_eq e1000e-after-restore "$(drv $DEV)" e1000e
check_eq override-cleared "$(cat /sys/bus/pci/devices/$DEV/driver_override)" "(null)"
check_eq no-group-node "$([ -e /dev/vfio/$group ] && echo present || echo absent)" absent
check_eq no-open-vfio-fds "$(ls -l /proc/[0-9]*/fd 2>/dev/null | grep -c /dev/vfio)" 0
check_eq journal-holds-nothing "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
svmm restore >/tmp/restore2.log 2>&1
check_eq restore-twice-exit "$?" 0
artifact /tmp/crash.log
artifact /tmp/restore.log
