// SVMMUSBHost: the only module that talks to libusb-1.0.
import CLibUSB
