#!/bin/sh
# lab-description: runner self-test: one right and one deliberately wrong expectation
# lab-machine: standard
# lab-timeout: 90
. /lab/lib.sh
# Right: the e1000e the standard machine puts at 02:00.0.
check_eq right-expectation "$(cat /sys/bus/pci/devices/0000:02:00.0/device)" 0x10d3
# Planted wrong: the same register against a device id the machine does not have.
check_eq wrong-expectation "$(cat /sys/bus/pci/devices/0000:02:00.0/device)" 0xdead
