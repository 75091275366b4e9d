#!/bin/sh
# lab-description: assign-nic and assign-gpu end to end: svmm passthrough boots L2 with the e1000e, then with display + HDA as one group; every driver back afterwards
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 600
# lab-files: Docs/examples/assign-nic Docs/examples/assign-gpu Docs/examples/svmm-assign.sh
# lab-bins: /usr/bin/jq
# L2 is the lab's standard L2 initramfs: it prints one `L2-PCI address vid:did class driver` line per
# function it sees and powers off. Truth: those lines, and L1's /sys driver links before and after.
. /lab/lib.sh
W=/tmp/scripts-l2
mkdir -p $W
X=/lab/files
NIC=0000:02:00.0 VGA=0000:01:00.0 HDA=0000:01:00.1
drv() { if [ -L /sys/bus/pci/devices/$1/driver ]; then basename "$(readlink /sys/bus/pci/devices/$1/driver)"; else echo none; fi; }
drivermap() { for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(drv "${d##*/}") $(cat "$d/driver_override")"; done; }
same() { if [ "$1" = "$2" ]; then echo same; else echo differs; fi; }
VM="--kernel $L2_KERNEL --initrd $L2_INITRD --mem 256M --cpus 1"
CMDLINE="console=ttyS0 panic=-1 reboot=k acpi=noirq quiet"

# run_bounded NAME SECS SCRIPT ARGS...: the script in the background; SIGTERM (which it forwards to
# svmm, which restores) if L2 has not powered off in time. Sets rc.
run_bounded() {
  name=$1 secs=$2; shift 2
  "$@" >$W/$name.log 2>&1 </dev/null &
  pid=$!
  i=0; while kill -0 $pid 2>/dev/null && [ $i -lt "$secs" ]; do sleep 1; i=$((i+1)); done
  if kill -0 $pid 2>/dev/null; then
    fail $name-l2-powered-off "L2 still running after $secs s; sending SIGTERM"
    kill -TERM $pid
    j=0; while kill -0 $pid 2>/dev/null && [ $j -lt 60 ]; do sleep 1; j=$((j+1)); done
  fi
  wait $pid
  rc=$?
  artifact $W/$name.log $name.log
}

drivermap >$W/map-before.txt
svmm passthrough --help >/dev/null 2>&1 && pass passthrough-present || fail passthrough-present "svmm has no passthrough"

run_bounded nic 240 $X/assign-nic $NIC $VM --cmdline "$CMDLINE"
check_eq nic-exit "$rc" 0
grep -q 'SVMM-L2-INIT-OK' $W/nic.log && pass nic-l2-booted || fail nic-l2-booted "$(tail -n 5 $W/nic.log | tr '\n' '|')"
check_eq nic-l2-sees-e1000e "$(grep -c '^L2-PCI .* 8086:10d3 ' $W/nic.log)" 1
check_eq nic-restored "$(drv $NIC)" e1000e
grep -q "host as found: $NIC" $W/nic.log && pass nic-script-checked-host || fail nic-script-checked-host "$(tail -n 3 $W/nic.log | tr '\n' '|')"

run_bounded gpu 240 $X/assign-gpu --allow-boot-console $VM --cmdline "$CMDLINE"
check_eq gpu-exit "$rc" 0
grep -q 'SVMM-L2-INIT-OK' $W/gpu.log && pass gpu-l2-booted || fail gpu-l2-booted "$(tail -n 5 $W/gpu.log | tr '\n' '|')"
check_eq gpu-l2-sees-display "$(grep -c '^L2-PCI .* 1234:1111 ' $W/gpu.log)" 1
check_eq gpu-l2-sees-hda "$(grep -c '^L2-PCI .* 8086:293e ' $W/gpu.log)" 1
check_eq gpu-restored "$(drv $VGA) $(drv $HDA)" "bochs-drm snd_hda_intel"

drivermap >$W/map-after.txt
check_eq everything-as-found "$(same "$(cat $W/map-before.txt)" "$(cat $W/map-after.txt)")" same
check_eq nothing-held "$(svmm status --json | jq '.held | length')" 0
