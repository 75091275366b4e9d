#include <pci/pci.h>
#include <stdarg.h>

// pci_lookup_name is variadic, which Swift cannot call: fixed-arity wrappers.
static inline char *svmm_pci_lookup_vendor(struct pci_access *a, char *buf, int size, unsigned int vendor) {
    return pci_lookup_name(a, buf, size, PCI_LOOKUP_VENDOR, vendor);
}
static inline char *svmm_pci_lookup_device(struct pci_access *a, char *buf, int size, unsigned int vendor, unsigned int device) {
    return pci_lookup_name(a, buf, size, PCI_LOOKUP_DEVICE, vendor, device);
}
static inline char *svmm_pci_lookup_class(struct pci_access *a, char *buf, int size, unsigned int cls) {
    return pci_lookup_name(a, buf, size, PCI_LOOKUP_CLASS, cls);
}
static inline char *svmm_pci_lookup_progif(struct pci_access *a, char *buf, int size, unsigned int cls, unsigned int progif) {
    return pci_lookup_name(a, buf, size, PCI_LOOKUP_PROGIF, cls, progif);
}
