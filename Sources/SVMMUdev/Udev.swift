// SVMMUdev: the only module that talks to libudev.
import CLibUdev
