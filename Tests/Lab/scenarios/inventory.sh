#!/bin/sh
# lab-description: svmm list/groups/check --json agree with the live kernel; check verdicts for NIC, NVMe, display
# lab-machine: standard
# lab-timeout: 120
# Truth is computed here by plain shell from the live /sys and shipped next to svmm's
# JSON; inventory.host compares them. Nothing here asks svmm to confirm svmm.
. /lab/lib.sh
W=/tmp/inventory
mkdir -p $W

# --- truth: one line per PCI function:
#     address vendor device class driver group boot_vga header_type (config byte 0x0e)
for d in /sys/bus/pci/devices/*; do
  a=${d##*/}
  drv=none; [ -L "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
  grp=none; [ -L "$d/iommu_group" ] && grp=$(basename "$(readlink "$d/iommu_group")")
  bv=-; [ -f "$d/boot_vga" ] && bv=$(cat "$d/boot_vga")
  ht=$(dd if="$d/config" bs=1 skip=14 count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
  echo "$a $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class") $drv $grp $bv ${ht:-??}"
done >$W/truth-pci.txt
# --- truth: groups as the kernel lists them
for g in /sys/kernel/iommu_groups/*; do
  [ -d "$g" ] || continue
  echo "${g##*/} $(ls "$g/devices" | tr '\n' ' ')"
done >$W/truth-groups.txt
# --- truth: which block devices below each function carry a mounted filesystem
cat /proc/mounts >$W/truth-mounts.txt
for b in /sys/class/block/*; do
  echo "${b##*/} $(readlink -f "$b")"
done >$W/truth-block.txt
for n in /sys/class/net/*; do
  echo "${n##*/} $(readlink -f "$n") addrs=$(ip -o addr show dev "${n##*/}" 2>/dev/null | grep -c inet)"
done >$W/truth-net.txt

# Preconditions of the standard machine; without them the comparisons below mean little.
check_eq machine-e1000e-driver "$(grep '^0000:02:00.0 ' $W/truth-pci.txt | cut -d' ' -f5)" e1000e
check_eq machine-hda-driver "$(grep '^0000:01:00.1 ' $W/truth-pci.txt | cut -d' ' -f5)" snd_hda_intel
check_eq machine-nvme-mounted "$(grep -c '^/dev/nvme0n1p1 /mnt/nvme ' /proc/mounts)" 1
check_eq machine-groups-populated "$([ -s $W/truth-groups.txt ] && echo yes || echo no)" yes

# --- svmm, as a user would run it
run() { # run NAME ARGS...: stdout to NAME.json, stderr to NAME.err, status to NAME.rc
  _n=$1; shift
  svmm "$@" >$W/$_n.json 2>$W/$_n.err
  echo $? >$W/$_n.rc
  echo "svmm $* -> exit $(cat $W/$_n.rc)"
}
run list list --json
run groups groups --json
run check-nic check --json 0000:02:00.0
run check-nvme check --json 0000:03:00.0
run check-display check --json 0000:01:00.0

for f in $W/*; do artifact "$f"; done
