#!/bin/sh
# lab-description: real-kernel rollback (vfio-pci unloaded: the verify step fails) and a group bind of display + HDA restored to their own drivers
# lab-machine: standard
# lab-timeout: 240
# Truth is read from /sys by plain shell.
. /lab/lib.sh
W=/tmp/bind-rollback
mkdir -p $W
A=0000:05:01.0 B=0000:05:02.0 VGA=0000:01:00.0 HDA=0000:01:00.1

drv() { if [ -L /sys/bus/pci/devices/$1/driver ]; then basename "$(readlink /sys/bus/pci/devices/$1/driver)"; else echo none; fi; }
drivermap() { for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(drv "${d##*/}") $(cat "$d/driver_override")"; done; }
drivermap >$W/map-before.txt

# --- A failure the kernel really produces: with vfio-pci unloaded, drivers_probe finds no driver
# for the override, the verify step times out, and svmm must roll the function back to e1000.
vfio_ko=$(grep '/vfio-pci\.ko' /lab/modules.order)
rmmod vfio_pci 2>$W/rmmod.err
check_eq vfio-pci-unloaded "$([ -d /sys/bus/pci/drivers/vfio-pci ] && echo loaded || echo unloaded)" unloaded
SVMM_LOG_LEVEL=debug svmm bind --group --yes --timeout 2 $A >$W/fail.out 2>$W/fail.err
check_eq failed-bind-exit $? 1
check_eq failed-bind-names-step "$(grep -c "$A step 5" $W/fail.err)" 1
check_eq failed-bind-rolled-back "$(grep -c "rolled back $A" $W/fail.err)" 1
check_eq rollback-a-on-e1000 "$(drv $A)" e1000
check_eq rollback-b-untouched "$(drv $B)" e1000
check_eq rollback-a-override-cleared "$(cat /sys/bus/pci/devices/$A/driver_override)" "(null)"
drivermap >$W/map-after-rollback.txt
check_eq rollback-map-equals-before "$(cmp -s $W/map-before.txt $W/map-after-rollback.txt && echo same || echo differs)" same
svmm status --json >$W/status-after-rollback.json 2>&1
check_eq ledger-empty-after-rollback "$(grep -c '"address"' $W/status-after-rollback.json)" 0
insmod "/$vfio_ko" 2>$W/insmod.err
check_eq vfio-pci-reloaded "$([ -d /sys/bus/pci/drivers/vfio-pci ] && echo loaded || echo unloaded)" loaded

# --- display + HDA: a group of two different host drivers, the boot console acknowledged.
svmm bind --group --yes $VGA >$W/vga-refused.out 2>$W/vga-refused.err
check_eq display-group-refused-without-allow "$?" 1
check_eq display-refusal-is-boot-console "$(grep -c 'boot-console' $W/vga-refused.err)" 1
svmm bind --group --yes --allow boot-console $VGA >$W/vga.out 2>$W/vga.err
check_eq display-group-bind-exit $? 0
check_eq display-on-vfio "$(drv $VGA)" vfio-pci
check_eq hda-on-vfio "$(drv $HDA)" vfio-pci
svmm status --json >$W/status-vga.json 2>&1
check_eq acknowledgement-journaled "$(grep -c 'boot-console' /var/lib/svmm/journal.jsonl)" 1
svmm unbind --yes $VGA $HDA >$W/vga-unbind.out 2>$W/vga-unbind.err
check_eq display-unbind-exit $? 0
check_eq display-back-on-bochs "$(drv $VGA)" "$(grep "^$VGA " $W/map-before.txt | cut -d' ' -f2)"
check_eq hda-back-on-snd-hda "$(drv $HDA)" "$(grep "^$HDA " $W/map-before.txt | cut -d' ' -f2)"
drivermap >$W/map-final.txt
check_eq final-map-equals-before "$(cmp -s $W/map-before.txt $W/map-final.txt && echo same || echo differs)" same

for f in $W/*; do [ -f "$f" ] && artifact "$f"; done
artifact /var/lib/svmm/journal.jsonl
