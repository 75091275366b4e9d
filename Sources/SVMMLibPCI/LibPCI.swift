// SVMMLibPCI: the only module that talks to libpci.
import CLibPCI
