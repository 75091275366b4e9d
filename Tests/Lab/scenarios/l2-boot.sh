#!/bin/sh
# lab-description: L1 boots an L2 Linux (the same stock kernel) through its nested /dev/kvm (kvm-amd)
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 240
# The reusable part is lib.sh's l2_boot / l2_run (see Docs/LAB.md); this scenario proves it.
. /lab/lib.sh
check_eq kvm-node "$([ -c /dev/kvm ] && echo present || echo absent)" present
check_eq kvm-amd-nested "$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null)" 1

t0=$(cut -d' ' -f1 /proc/uptime)
l2_boot 200 /tmp/l2.log
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "l2: qemu -enable-kvm exited $rc after ${secs}s (L1 uptime at start ${t0}s)"
printf 'l1_uptime_at_l2_start=%s\nl2_qemu_seconds=%s\nl2_qemu_exit=%s\n' "$t0" "$secs" "$rc" >/tmp/l2-timing.txt

if l2_saw_marker /tmp/l2.log; then
  pass l2-init-marker
else
  fail l2-init-marker "no $L2_MARKER on L2's console (qemu exit $rc); last lines: $(tail -n 3 /tmp/l2.log)"
fi
check_eq l2-qemu-exit "$rc" 0
# L2 is QEMU's default pc machine: its host bridge is the i440FX (8086:1237).
check_eq l2-sees-i440fx "$(grep -c '^L2-PCI 0000:00:00.0 8086:1237' /tmp/l2.log)" 1
artifact /tmp/l2.log l2-console.log
artifact /tmp/l2-timing.txt
