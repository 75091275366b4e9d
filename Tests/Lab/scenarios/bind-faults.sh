#!/bin/sh
# lab-description: for every step N of a group bind, SIGKILL svmm after N, svmm restore, and compare L1's full driver map
# lab-machine: standard
# lab-timeout: 600
# SVMM_FAULT_AFTER_STEP=N makes svmm SIGKILL itself right after step N. The loop runs N = 1, 2, ...
# until a bind survives (N is past the last step); after each kill, `svmm restore` (crash recovery,
# no --all) must put every function back: the map is read from /sys by plain shell.
. /lab/lib.sh
W=/tmp/bind-faults
mkdir -p $W
A=0000:05:01.0

drv() { if [ -L /sys/bus/pci/devices/$1/driver ]; then basename "$(readlink /sys/bus/pci/devices/$1/driver)"; else echo none; fi; }
drivermap() { for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(drv "${d##*/}") $(cat "$d/driver_override")"; done; }
G=$(basename "$(readlink /sys/bus/pci/devices/$A/iommu_group)")

drivermap >$W/map-before.txt
# Functions the group bind moves, by the kernel's view: group members on a driver that blocks the group.
moving=0
for m in /sys/kernel/iommu_groups/$G/devices/*; do
  case $(drv "${m##*/}") in none|vfio-pci|pci-stub|pcieport) ;; *) moving=$((moving + 1)) ;; esac
done
check_eq group-moves-two "$moving" 2

n=1 tried=0 bad=0 completed=no
while [ $n -le 40 ]; do
  SVMM_FAULT_AFTER_STEP=$n svmm bind --group --yes $A >$W/bind.$n.out 2>$W/bind.$n.err
  rc=$?
  if [ $rc -eq 0 ]; then completed=yes; break; fi
  tried=$((tried + 1))
  [ $rc -eq 137 ] || { fail "killed-after-$n" "bind exited $rc, not 137 (SIGKILL): $(tail -n1 $W/bind.$n.err)"; bad=$((bad + 1)); }
  svmm restore >$W/restore.$n.out 2>&1 || { fail "restore-after-$n" "exit $?: $(tail -n1 $W/restore.$n.out)"; bad=$((bad + 1)); }
  drivermap >$W/map.$n.txt
  if cmp -s $W/map.$n.txt $W/map-before.txt; then
    pass "map-restored-after-kill-at-step-$n"
  else
    fail "map-restored-after-kill-at-step-$n" "$(diff $W/map-before.txt $W/map.$n.txt | grep '^[-+]0' | tr '\n' ' ')"
    bad=$((bad + 1))
  fi
  n=$((n + 1))
done
check_eq bind-completed-past-last-step "$completed" yes
check_eq completed-run-bound-a "$(drv $A)" vfio-pci
# Six steps per moved function: journal, driver_override, unbind, drivers_probe, verify, journal.
check_eq steps-tried "$tried" $((moving * 6))
svmm restore --all >$W/restore-final.out 2>&1
check_eq final-restore-exit $? 0
drivermap >$W/map-final.txt
check_eq final-map-equals-before "$(cmp -s $W/map-final.txt $W/map-before.txt && echo same || echo differs)" same
lab_log "bind-faults: tried N=1..$tried ($tried kill points), $bad failures"
echo "tried $tried kill points, $bad failures" >$W/summary.txt
for f in $W/*; do artifact "$f"; done
[ -f /var/lib/svmm/journal.jsonl ] && artifact /var/lib/svmm/journal.jsonl
