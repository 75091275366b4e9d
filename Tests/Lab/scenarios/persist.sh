#!/bin/sh
# lab-description: svmm persist/unpersist + the persisted-override helper: the e1000 pair comes back on vfio-pci when it reappears
# lab-machine: standard
# lab-timeout: 240
# lab-files: Udev/svmm-apply-override
# The hotplug path, with the default driver already loaded (a real reboot with udevd and systemd is
# persist-reboot): "the device appears" is a PCI remove + rescan, and udev is stood in for by busybox `uevent`
# running the match of Udev/61-svmm-persist.rules (ACTION=add, SUBSYSTEM=pci, a file in
# /etc/svmm/persist.d) and then the real helper the rule RUNs. Truth is read from /sys.
. /lab/lib.sh
W=/tmp/persist
mkdir -p $W /usr/lib/svmm
cp /lab/files/svmm-apply-override /usr/lib/svmm/svmm-apply-override
chmod 755 /usr/lib/svmm/svmm-apply-override
A=0000:05:01.0 B=0000:05:02.0

drv() { if [ -L /sys/bus/pci/devices/$1/driver ]; then basename "$(readlink /sys/bus/pci/devices/$1/driver)"; else echo none; fi; }
both() { echo "$(drv $A) $(drv $B)"; }
is_both() { [ "$(both)" = "$1 $1" ]; }

# The stand-in for udevd: the rule's match, then the rule's RUN.
cat >/tmp/udev-standin.sh <<'EOS'
#!/bin/sh
[ "$ACTION" = add ] && [ "$SUBSYSTEM" = pci ] || exit 0
k=${DEVPATH##*/}
[ -f /etc/svmm/persist.d/$k ] || exit 0
echo "$k $(cat /etc/svmm/persist.d/$k)" >>/tmp/persist/rule-fired.txt
/usr/lib/svmm/svmm-apply-override "$k" >>/tmp/persist/helper.log 2>&1
echo "$k exit $?" >>/tmp/persist/helper.log
EOS
chmod 755 /tmp/udev-standin.sh
uevent /tmp/udev-standin.sh >/dev/null 2>&1 &
standin=$!
usleep 300000

replug() { # remove both functions, rescan: the kernel adds them again and probes
  echo 1 >/sys/bus/pci/devices/$A/remove
  echo 1 >/sys/bus/pci/devices/$B/remove
  usleep 200000
  echo 1 >/sys/bus/pci/rescan
}

check_eq pre-pair-on-e1000 "$(both)" "e1000 e1000"

# Control: nothing persisted, a replug comes back on e1000.
replug
lab_wait 20 is_both e1000
check_eq control-replug-e1000 "$(both)" "e1000 e1000"

# One function alone would leave the group non-viable: refused, nothing recorded.
svmm persist --yes $A >$W/one.out 2>$W/one.err
check_eq persist-one-refused-exit $? 1
check_eq persist-one-names-sibling "$(grep -c $B $W/one.err)" 1
check_eq persist-one-nothing-recorded "$(ls /etc/svmm/persist.d 2>/dev/null | wc -l)" 0

svmm persist --yes $A $B >$W/persist.out 2>$W/persist.err
check_eq persist-exit $? 0
check_eq persist-file-a "$(cat /etc/svmm/persist.d/$A 2>/dev/null)" vfio-pci
check_eq persist-file-b "$(cat /etc/svmm/persist.d/$B 2>/dev/null)" vfio-pci
check_eq persist-binds-nothing-now "$(both)" "e1000 e1000"
svmm status --json >$W/status.json 2>&1

# The device appears again: the rule applies the override.
replug
lab_wait 20 is_both vfio-pci
check_eq replug-comes-up-on-vfio "$(both)" "vfio-pci vfio-pci"
check_eq override-a "$(cat /sys/bus/pci/devices/$A/driver_override)" vfio-pci
check_eq rule-fired-for-both "$(cut -d' ' -f1 $W/rule-fired.txt 2>/dev/null | sort -u | tr '\n' ' ')" "$A $B "
G=$(basename "$(readlink /sys/bus/pci/devices/$A/iommu_group)")
check_eq vfio-group-node "$([ -c /dev/vfio/$G ] && echo present || echo missing)" present

# unpersist: the next appearance is on e1000 again.
svmm unpersist $A $B >$W/unpersist.out 2>&1
check_eq unpersist-exit $? 0
svmm unpersist $A >$W/unpersist2.out 2>$W/unpersist2.err
check_eq unpersist-again-exit $? 2
replug
lab_wait 20 is_both e1000
check_eq unpersisted-replug-e1000 "$(both)" "e1000 e1000"

# Reap the stand-in before parsing on: its exit arriving mid-parse once broke the next line
# ("syntax error: unexpected word (expecting do)") in busybox ash.
kill -KILL $standin 2>/dev/null
wait $standin 2>/dev/null
for f in $W/*; do [ -f "$f" ] && artifact "$f"; done
