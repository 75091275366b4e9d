#!/bin/sh
# lab-description: Docs/examples on a real kernel: iommu-report vs svmm groups and /sys, assign-nic/assign-gpu refusals change nothing, command form binds and restores (also on SIGTERM)
# lab-machine: standard
# lab-timeout: 300
# lab-files: Docs/examples/iommu-report Docs/examples/assign-nic Docs/examples/assign-gpu Docs/examples/svmm-assign.sh
# lab-bins: /usr/bin/jq
# Truth is read here from the live /sys by plain shell; the scripts' output is compared with it.
. /lab/lib.sh
W=/tmp/scripts
mkdir -p $W
X=/lab/files
NIC=0000:02:00.0 A=0000:05:01.0 B=0000:05:02.0 VGA=0000:01:00.0 HDA=0000:01:00.1

drv() { if [ -L /sys/bus/pci/devices/$1/driver ]; then basename "$(readlink /sys/bus/pci/devices/$1/driver)"; else echo none; fi; }
drivermap() { for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(drv "${d##*/}") $(cat "$d/driver_override")"; done; }
same() { if [ "$1" = "$2" ]; then echo same; else echo differs; fi; }
check_eq jq-runs "$(echo '{"a":1}' | jq -c .a)" 1

# --- iommu-report: group verdicts as svmm groups prints them, members as /sys lists them
$X/iommu-report >$W/report.txt 2>$W/report.err
check_eq report-exit $? 0
artifact $W/report.txt iommu-report.txt
grep '^group ' $W/report.txt | sed 's/ (.*//' >$W/report-groups.txt
svmm groups | grep '^IOMMU group ' | sed 's/^IOMMU //; s/ (.*//' >$W/svmm-groups.txt
check_eq report-verdicts-match-svmm-groups "$(same "$(cat $W/report-groups.txt)" "$(cat $W/svmm-groups.txt)")" same
check_eq report-group-count "$(grep -c '^group ' $W/report.txt)" "$(ls /sys/kernel/iommu_groups | wc -l)"
: >$W/sys-members.txt
for g in $(ls /sys/kernel/iommu_groups | sort -n); do
  echo "group $g: $(ls /sys/kernel/iommu_groups/$g/devices | sort | tr '\n' ' ')" >>$W/sys-members.txt
done
awk '/^group /{if (g) print g; g=$1" "$2; next} /^  0000:/{g=g" "$1} END{print g}' $W/report.txt \
  | sed 's/$/ /' >$W/report-members.txt
check_eq report-members-match-sys "$(same "$(cat $W/report-members.txt)" "$(cat $W/sys-members.txt)")" same
[ "$(same "$(cat $W/report-members.txt)" "$(cat $W/sys-members.txt)")" = same ] || { cat $W/report-members.txt $W/sys-members.txt; }
grep -q "^group $(basename "$(readlink /sys/bus/pci/devices/$VGA/iommu_group)"): NOT viable (blocked by $VGA on bochs-drm, $HDA on snd_hda_intel)" $W/report.txt \
  && pass report-names-display-blockers || fail report-names-display-blockers "$(grep "$VGA" $W/report.txt)"

# --- svmm doctor on the real kernel; truth from plain shell
svmm doctor --json >$W/doctor.json
doctor_rc=$?
dv() { jq -r --arg id "$1" '.checks[] | select(.id == $id) | .verdict' $W/doctor.json; }
if [ -c /dev/kvm ]; then kvm=pass; else kvm=fail; fi
check_eq doctor-kvm "$(dv kvm)" $kvm
if [ -n "$(ls /sys/kernel/iommu_groups)" ]; then iommu=pass; else iommu=fail; fi
check_eq doctor-iommu "$(dv iommu)" $iommu
if grep -q 'IR-' /proc/interrupts; then ir=pass; else ir=fail; fi
check_eq doctor-interrupt-remapping "$(dv interrupt-remapping)" $ir
if [ -d /sys/module/vfio_pci ] && [ -d /sys/module/vfio_iommu_type1 ]; then mods=pass; else mods=warn; fi
check_eq doctor-vfio-modules "$(dv vfio-modules)" $mods
if [ -c /dev/vfio/vfio ]; then vdev=pass; else vdev=warn; fi
check_eq doctor-vfio-device "$(dv vfio-device)" $vdev
check_eq doctor-udev-rules-not-installed "$(dv udev-rules)" warn
check_eq doctor-exit "$doctor_rc" "$(if [ "$(jq -r .verdict $W/doctor.json)" = fail ]; then echo 1; else echo 0; fi)"
artifact $W/doctor.json doctor.json

drivermap >$W/map-before.txt
# The packed scripts, as L1 sees them (diagnostics for a parse failure seen in some runs).
sha256sum $X/* | tee $W/files-before.txt
# In some runs L1's busybox ash misparsed svmm-assign.sh (same bytes as on the host, where it parses;
# sh -n failing, or corrupted function bodies), in others not: this check tells that case apart.
sh -n $X/svmm-assign.sh && pass svmm-assign-parses || fail svmm-assign-parses "sh -n failed"

# --- refusals: each exits 1 with its reason and changes no driver or override anywhere
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
$X/assign-nic eth0 -- true >$W/r1.out 2>$W/r1.err
check_eq refuse-addressed-nic-exit $? 1
grep -q 'in-use-network' $W/r1.err && pass refuse-addressed-nic-reason || fail refuse-addressed-nic-reason "$(cat $W/r1.err)"
sha256sum $X/* >$W/files-after.txt
check_eq files-unchanged-in-l1 "$(same "$(cat $W/files-before.txt)" "$(cat $W/files-after.txt)")" same
ip route add default via 10.0.2.2 dev eth0
$X/assign-nic $NIC -- true >$W/r2.out 2>$W/r2.err
check_eq refuse-default-route-exit $? 1
grep -q "carries the host's default route" $W/r2.err && pass refuse-default-route-reason || fail refuse-default-route-reason "$(cat $W/r2.err)"
$X/assign-nic $A -- true >$W/r3.out 2>$W/r3.err
check_eq refuse-group-without-group-exit $? 1
$X/assign-gpu -- true >$W/r4.out 2>$W/r4.err
check_eq refuse-boot-console-exit $? 1
grep -q 'is the boot console' $W/r4.err && pass refuse-boot-console-reason || fail refuse-boot-console-reason "$(cat $W/r4.err)"
drivermap >$W/map-after-refusals.txt
check_eq refusals-change-nothing "$(same "$(cat $W/map-before.txt)" "$(cat $W/map-after-refusals.txt)")" same
ip route del default
ip addr flush dev eth0

# --- command form on the real kernel: the COMMAND sees vfio-pci, the host gets its drivers back
$X/assign-nic --group $A -- sh -c "echo \$(basename \$(readlink /sys/bus/pci/devices/$A/driver)) \$(basename \$(readlink /sys/bus/pci/devices/$B/driver)); exit 5" >$W/c1.out 2>$W/c1.err
check_eq nic-command-exit-is-the-vms $? 5
check_eq nic-command-saw-vfio "$(cat $W/c1.out)" "vfio-pci vfio-pci"
check_eq nic-restored "$(drv $A) $(drv $B)" "e1000 e1000"
$X/assign-gpu --allow-boot-console -- sh -c "echo \$(basename \$(readlink /sys/bus/pci/devices/$VGA/driver)) \$(basename \$(readlink /sys/bus/pci/devices/$HDA/driver))" >$W/c2.out 2>$W/c2.err
check_eq gpu-command-exit $? 0
check_eq gpu-command-saw-display-and-hda-on-vfio "$(cat $W/c2.out)" "vfio-pci vfio-pci"
check_eq gpu-restored "$(drv $VGA) $(drv $HDA)" "bochs-drm snd_hda_intel"
artifact $W/c2.err assign-gpu.err

# --- SIGTERM while the VM runs: the script stops it and restores
$X/assign-nic --group $B -- sleep 60 >$W/t.out 2>$W/t.err &
pid=$!
lab_wait 30 sh -c "[ \"\$(basename \$(readlink /sys/bus/pci/devices/$B/driver))\" = vfio-pci ] && pgrep -x sleep >/dev/null"
check_eq term-bound-first "$(drv $A) $(drv $B)" "vfio-pci vfio-pci"
kill -TERM $pid
wait $pid
check_eq term-exit $? 143
check_eq term-restored "$(drv $A) $(drv $B)" "e1000 e1000"
# --- USB by serial (the guide's walk-through): serial -> port path -> describe; truth from /sys/bus/usb
port=$(svmm usb list --json | jq -r '.devices[] | select(.serial == "SVMM0001") | .portPath')
sysport=$(for d in /sys/bus/usb/devices/*; do [ "$(cat $d/serial 2>/dev/null)" = SVMM0001 ] && basename $d; done)
check_eq usb-serial-to-port "$port" "$sysport"
svmm usb describe "$port" >$W/usb.txt 2>&1
check_eq usb-describe-by-port-exit $? 0
check_eq usb-describe-by-port-ids "$(svmm usb describe "$port" --json | jq -r '.deviceDescriptor | "\(.idVendor):\(.idProduct)"')" \
  "$(cat /sys/bus/usb/devices/$sysport/idVendor):$(cat /sys/bus/usb/devices/$sysport/idProduct)"
check_eq usb-describe-by-ids-exit "$(svmm usb describe 46f4:0001 --json >/dev/null 2>&1; echo $?)" 0

drivermap >$W/map-end.txt
check_eq everything-as-found "$(same "$(cat $W/map-before.txt)" "$(cat $W/map-end.txt)")" same
check_eq nothing-held "$(svmm status --json | jq '.held | length')" 0
artifact $W/t.err assign-nic-term.err
