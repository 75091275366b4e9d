#!/bin/sh
# lab-description: svmm run boots the stock kernel as L2 through L1's nested KVM; L2 sees svmm's host bridge, powers off, svmm exits 0; QEMU side by side
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 500
# L2's init (Tests/Lab/guest/l2-init) prints the marker and one "L2-PCI addr vendor:device class driver"
# line per function it finds in its own /sys, then `poweroff -f`: Linux powers off through svmm's
# minimal ACPI (PM1a_CNT ← SLP_TYP 5 | SLP_EN), which svmm turns into exit 0. acpi=noirq keeps PCI
# on conf1 (svmm's DSDT has no PCI root). The same kernel and initramfs then boot under QEMU for timing.
. /lab/lib.sh
check_eq kvm-node "$([ -c /dev/kvm ] && echo present || echo absent)" present

t0=$(cut -d' ' -f1 /proc/uptime)
# svmm runs in the background and is polled (the same command in the foreground under l2_run did
# not return in two lab runs while backgrounded runs returned 0; see Docs/VMM.md).
svmm run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 </dev/null >/tmp/svmm-l2.log 2>&1 &
pid=$!
waited=0
while [ -d /proc/$pid ] && [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != Z ] && [ $waited -lt 240 ]; do
  sleep 1
  waited=$((waited + 1))
done
if [ -d /proc/$pid ] && [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != Z ]; then
  echo "vmm-boot: svmm still running after ${waited}s (state $(cut -d' ' -f3 /proc/$pid/stat)); killing it"
  kill -9 $pid
fi
wait $pid
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
svmm_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "vmm-boot: svmm run exited $rc after ${svmm_secs}s"

if l2_saw_marker /tmp/svmm-l2.log; then
  pass svmm-l2-init-marker
else
  fail svmm-l2-init-marker "no $L2_MARKER on svmm's console (exit $rc); last lines: $(tail -n 5 /tmp/svmm-l2.log)"
fi
check_eq svmm-exit-status "$rc" 0
# The truth is L2's own /sys, printed by L2's init: svmm's host bridge (Red Hat 1b36:0008, class 060000) at 00:00.0.
check_eq l2-sees-svmm-host-bridge "$(grep -c '^L2-PCI 0000:00:00.0 1b36:0008 0x060000' /tmp/svmm-l2.log)" 1
# svmm sets CPUID's hypervisor bit, so L2 finds KVM's leaves and keeps time with kvm-clock (without
# it L2 fell back to refined-jiffies, which made its timings and timers unreliable).
check_eq svmm-l2-clocksource "$(sed -n 's/^L2-CLOCK //p' /tmp/svmm-l2.log | tr -d '\r')" kvm-clock
artifact /tmp/svmm-l2.log svmm-l2-console.log

# QEMU booting the same kernel and initramfs in the same L1, for the side-by-side time.
t2=$(cut -d' ' -f1 /proc/uptime)
l2_boot 240 /tmp/qemu-l2.log
qrc=$?
t3=$(cut -d' ' -f1 /proc/uptime)
qemu_secs=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.1f", b - a }')
echo "vmm-boot: qemu -enable-kvm exited $qrc after ${qemu_secs}s"
if l2_saw_marker /tmp/qemu-l2.log; then pass qemu-l2-init-marker; else fail qemu-l2-init-marker "qemu exit $qrc"; fi
printf 'svmm_seconds=%s\nsvmm_exit=%s\nqemu_seconds=%s\nqemu_exit=%s\n' "$svmm_secs" "$rc" "$qemu_secs" "$qrc" >/tmp/vmm-boot-timing.txt
artifact /tmp/qemu-l2.log qemu-l2-console.log
artifact /tmp/vmm-boot-timing.txt
