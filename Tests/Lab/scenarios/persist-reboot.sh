#!/bin/sh
# lab-description: svmm persist across real reboots of L1: Debian's systemd (PID 1) and udevd apply the installed rules, the restore unit closes boot 1's binding
# lab-machine: standard
# lab-timeout: 420
# lab-boots: 3
# lab-needs: systemd
# lab-early: Tests/Lab/scenarios/persist-reboot.early
# lab-files: Tests/Lab/scenarios/persist-reboot.boot1 Tests/Lab/scenarios/persist-reboot.boot2 Tests/Lab/scenarios/persist-reboot.boot3
# Three boots of one QEMU process (no -no-reboot: the guest's reboot is a machine reset, the NVMe image
# keeps what a boot wrote). The image holds what `make -C Udev install DESTDIR=...` installed (run by the
# runner) and Debian's systemd + udev packages. svmm's state dir, /etc/svmm and /etc/systemd/system live on
# the NVMe partition (bound over the image by persist-reboot.early from boot 2 on).
#   boot 1 (busybox /init): systemctl enable svmm-restore.service, svmm persist of the e1000 pair, svmm bind of
#          the e1000e (held in the journal), then `reboot -f`.
#   boot 2 (systemd is PID 1): udevd's coldplug loads e1000 by modalias, but the rule set driver_override
#          first: the pair is on vfio-pci, /dev/vfio/N is root:vfio 0660 (the group made by systemd-sysusers
#          from the installed sysusers.d entry), svmm-restore.service ran after the trigger and closed boot 1's
#          held binding; then svmm unpersist and `systemctl reboot`.
#   boot 3 (systemd): the pair is back on e1000 (the control: same boot path, no record).
# Truth is read from /sys, /dev and systemctl; svmm's own output is never the oracle.
. /lab/lib.sh
P=/mnt/nvme/persist-reboot
W=/tmp/persist-reboot
mkdir -p $W
A=0000:05:01.0 B=0000:05:02.0 NIC=0000:02:00.0
J=/var/lib/svmm/journal.jsonl

drv() { if [ -L /sys/bus/pci/devices/$1/driver ]; then basename "$(readlink /sys/bus/pci/devices/$1/driver)"; else echo none; fi; }
both() { echo "$(drv $A) $(drv $B)"; }
is_both() { [ "$(both)" = "$1 $1" ]; }
prop() { systemctl show -p "$2" --value "$1" 2>/dev/null; }
ship() { for f in $W/*; do [ -f "$f" ] && artifact "$f" "boot$phase-${f##*/}"; done; }
G=$(basename "$(readlink /sys/bus/pci/devices/$A/iommu_group)")
phase=$(cat $P/phase 2>/dev/null || echo 1)
lab_log "persist-reboot: boot $phase"

# Each boot's steps are their own file: one case statement holding all three once failed to parse in
# boot 2 under systemd (busybox ash: 'syntax error: unexpected ")"' in a branch boot 1 had parsed).
if [ -f /lab/files/persist-reboot.boot$phase ]; then
  . /lab/files/persist-reboot.boot$phase
else
  fail phase "unknown phase '$phase' on the disk"
fi
