#!/bin/sh
# lab-description: svmm bind --group on the e1000 pair behind the PCI bridge, restore --all, refusals with nothing written
# lab-machine: standard
# lab-timeout: 240
# Truth is read here from the live /sys by plain shell; svmm's own output is never the oracle.
. /lab/lib.sh
W=/tmp/bind-restore
mkdir -p $W
J=/var/lib/svmm/journal.jsonl
A=0000:05:01.0 B=0000:05:02.0 BRIDGE=0000:04:00.0

drv() { if [ -L /sys/bus/pci/devices/$1/driver ]; then basename "$(readlink /sys/bus/pci/devices/$1/driver)"; else echo none; fi; }
ovr() { cat /sys/bus/pci/devices/$1/driver_override; }
# every function -> driver and driver_override
drivermap() { for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(drv "${d##*/}") $(cat "$d/driver_override")"; done; }
jsum() { if [ -f $J ]; then sha256sum $J | cut -d' ' -f1; else echo none; fi; }
group_of() { basename "$(readlink /sys/bus/pci/devices/$1/iommu_group)"; }
# the kernel's rule: every member unbound or on a driver that allows user DMA (vfio-pci, pci-stub, pcieport)
group_viable() {
  for m in /sys/kernel/iommu_groups/$1/devices/*; do
    case $(drv "${m##*/}") in none|vfio-pci|pci-stub|pcieport) ;; *) echo no; return ;; esac
  done
  echo yes
}
same() { if [ "$1" = "$2" ]; then echo same; else echo differs; fi; }

G=$(group_of $A)
check_eq pre-a-on-e1000 "$(drv $A)" e1000
check_eq pre-b-on-e1000 "$(drv $B)" e1000
check_eq pre-pair-share-group "$(group_of $B)" "$G"
check_eq pre-group-not-viable "$(group_viable "$G")" no
drivermap >$W/map-before.txt

# --- bind --group: both e1000 functions to vfio-pci, the bridge left alone
SVMM_LOG_LEVEL=debug svmm bind --group --yes $A >$W/bind.out 2>$W/bind.err
check_eq bind-exit $? 0
check_eq bound-a "$(drv $A)" vfio-pci
check_eq bound-b "$(drv $B)" vfio-pci
check_eq bridge-untouched "$(drv $BRIDGE)" "$(grep "^$BRIDGE " $W/map-before.txt | cut -d' ' -f2)"
check_eq group-viable "$(group_viable "$G")" yes
check_eq vfio-group-node "$([ -c /dev/vfio/$G ] && echo present || echo missing)" present
check_eq journal-durable "$([ -s $J ] && echo yes || echo no)" yes
drivermap >$W/map-bound.txt
svmm status --json >$W/status.json 2>&1

# --- already on vfio-pci: one-line error, exit 2, nothing written
before=$(drivermap); js=$(jsum)
svmm bind --yes $A >$W/again.out 2>$W/again.err
check_eq already-vfio-exit $? 2
check_eq already-vfio-one-line "$(wc -l <$W/again.err)" 1
check_eq already-vfio-nothing-written "$(same "$(drivermap) $(jsum)" "$before $js")" same

# --- restore --all: both back on e1000, overrides as before
svmm restore --all >$W/restore.out 2>$W/restore.err
check_eq restore-exit $? 0
check_eq restored-a "$(drv $A)" e1000
check_eq restored-b "$(drv $B)" e1000
check_eq restored-a-override "$(ovr $A)" "$(grep "^$A " $W/map-before.txt | cut -d' ' -f3)"
drivermap >$W/map-restored.txt
check_eq restore-map-equals-before "$(same "$(cat $W/map-restored.txt)" "$(cat $W/map-before.txt)")" same
# idempotent: a second restore changes nothing
svmm restore --all >$W/restore2.out 2>&1
check_eq restore-twice-exit $? 0
check_eq restore-twice-map "$(same "$(drivermap)" "$(cat $W/map-before.txt)")" same

# --- the display without --group: refused, naming the HDA function, nothing written
before=$(drivermap); js=$(jsum)
svmm bind --yes 0000:01:00.0 >$W/display.out 2>$W/display.err
check_eq display-refused-exit $? 1
check_eq display-refusal-names-hda "$(grep -c '0000:01:00.1' $W/display.err)" 1
check_eq display-nothing-written "$(same "$(drivermap) $(jsum)" "$before $js")" same

# --- the mounted NVMe: refused by in-use-storage, nothing written
svmm bind --yes 0000:03:00.0 >$W/nvme.out 2>$W/nvme.err
check_eq nvme-refused-exit $? 1
check_eq nvme-refusal-names-check "$(grep -c 'in-use-storage' $W/nvme.err)" 1
check_eq nvme-still-mounted "$(grep -c '^/dev/nvme0n1p1 /mnt/nvme ' /proc/mounts)" 1
check_eq nvme-nothing-written "$(same "$(drivermap) $(jsum)" "$before $js")" same

# --- bad input: unknown address and a bridge, one line each, exit 2, nothing written
svmm bind --yes 0000:0e:00.0 >$W/unknown.out 2>$W/unknown.err
check_eq unknown-exit $? 2
check_eq unknown-one-line "$(wc -l <$W/unknown.err)" 1
svmm bind --yes $BRIDGE >$W/bridge.out 2>$W/bridge.err
check_eq bridge-exit $? 2
check_eq bridge-one-line "$(wc -l <$W/bridge.err)" 1
check_eq bad-input-nothing-written "$(same "$(drivermap) $(jsum)" "$before $js")" same

for f in $W/* $J; do [ -f "$f" ] && artifact "$f"; done
