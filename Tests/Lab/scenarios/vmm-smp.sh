#!/bin/sh
# lab-description: svmm run --cpus 2 boots the stock kernel as L2 with both vCPUs online (MP table + MADT, INIT/SIPI through KVM's in-kernel LAPIC)
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 500
# lab-smp: 2
# L1 gets two vCPUs (lab-smp), one per L2 vCPU thread. Linux must bring CPU 1 up
# (it waits ~10 s for an AP that never answers, then boots with CPU 0 only; that is what this catches).
# The truth is L2's own /sys/devices/system/cpu/online and /proc/cpuinfo, printed by L2's init.
. /lab/lib.sh

svmm run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq" --mem 256M --cpus 2 </dev/null >/tmp/smp-l2.log 2>&1 &
pid=$!
# Stream L2's console into the lab log as it comes, so a hang shows how far L2 got.
tail -f /tmp/smp-l2.log 2>/dev/null | while IFS= read -r line; do echo "L2| $line"; done &
tailpid=$!
waited=0
while [ -d /proc/$pid ] && [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != Z ] && [ $waited -lt 300 ]; do
  sleep 1
  waited=$((waited + 1))
done
if [ -d /proc/$pid ] && [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != Z ]; then
  echo "vmm-smp: svmm still running after ${waited}s; killing it"
  kill -9 $pid
fi
wait $pid
rc=$?
kill $tailpid 2>/dev/null
pkill -f 'tail -f /tmp/smp-l2.log' 2>/dev/null
echo "vmm-smp: svmm run exited $rc after ${waited}s"
artifact /tmp/smp-l2.log smp-l2-console.log

if l2_saw_marker /tmp/smp-l2.log; then
  pass smp-l2-init-marker
else
  fail smp-l2-init-marker "no $L2_MARKER on svmm's console (exit $rc); last lines: $(tail -n 5 /tmp/smp-l2.log)"
fi
check_eq smp-exit-status "$rc" 0
check_eq smp-cpus-online "$(sed -n 's/^L2-CPUS online=\([^ ]*\) .*/\1/p' /tmp/smp-l2.log | tr -d '\r')" "0-1"
check_eq smp-cpuinfo-processors "$(sed -n 's/^L2-CPUS .* cpuinfo=\([0-9]*\).*/\1/p' /tmp/smp-l2.log | tr -d '\r')" 2
# Linux names a failed AP bring-up on the console; none may appear.
check_eq smp-no-stuck-ap "$(grep -c -i 'failed to come online\|CPU1: Stuck\|do_boot_cpu failed' /tmp/smp-l2.log)" 0
