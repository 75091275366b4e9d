#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

// ---------------------------------------------------------------------------
// Guarded libpci calls.
//
// libpci reports fatal conditions (an unopenable sysfs directory, a corrupt ID
// file, an unknown access method) through acc->error, whose default prints and
// calls exit(1). svmm reads captured and possibly damaged trees, so an error
// must become a return value instead. Each guarded entry point below sets a
// jmp_buf in a C frame, and svmm_pci_on_error longjmps back to it. Only libpci's
// own C frames lie between the setjmp and the longjmp, never a Swift frame.
// The cost is that whatever libpci allocated in the aborted call leaks; these
// are error paths on a short-lived CLI.
// ---------------------------------------------------------------------------

typedef struct {
    jmp_buf env;
    char message[256];
} svmm_pci_guard;

typedef struct {
    char text[256];
    int count;
} svmm_pci_warnings;

// State lives in function-local statics: Swift's Clang importer does not emit file-scope statics
// of a header, and each object file that calls these static functions gets its own copy of them
// (and of their statics). So every call into this shim is made from ONE Swift file,
// Sources/SVMMLibPCI/PCIAccess.swift, which keeps the guard slot and the handlers consistent.
static inline svmm_pci_guard **svmm_pci_guard_slot(void) {
    static _Thread_local svmm_pci_guard *slot = NULL;
    return &slot;
}

static inline svmm_pci_warnings *svmm_pci_warning_slot(void) {
    static _Thread_local svmm_pci_warnings warnings;
    return &warnings;
}

#define svmm_pci_active_guard (*svmm_pci_guard_slot())

static void svmm_pci_on_error(char *msg, ...) {
    svmm_pci_guard *guard = svmm_pci_active_guard;
    va_list ap;
    va_start(ap, msg);
    if (guard) {
        vsnprintf(guard->message, sizeof guard->message, msg, ap);
        va_end(ap);
        longjmp(guard->env, 1);
    }
    va_end(ap);
    // Unreachable by construction: every libpci entry point below installs a guard.
    abort();
}

static void svmm_pci_on_warning(char *msg, ...) {
    va_list ap;
    va_start(ap, msg);
    svmm_pci_warnings *w = svmm_pci_warning_slot();
    vsnprintf(w->text, sizeof w->text, msg, ap);
    va_end(ap);
    w->count++;
}

static void svmm_pci_on_debug(char *msg, ...) {
    (void)msg;
}

/// Number of libpci warnings on this thread so far; the last one is copied to buf.
static inline int svmm_pci_last_warning(char *buf, int size) {
    if (size > 0) {
        snprintf(buf, (size_t)size, "%s", svmm_pci_warning_slot()->text);
    }
    return svmm_pci_warning_slot()->count;
}

static inline void svmm_pci_copy_message(char *err, int errlen, const char *message) {
    if (err && errlen > 0) {
        snprintf(err, (size_t)errlen, "%s", message);
    }
}

/// Allocates and initialises a pci_access on the linux-sysfs method rooted at sysfs_path
/// (ROOT/sys/bus/pci). ids_path may be NULL for libpci's default. Returns NULL and fills err on failure.
static inline struct pci_access *svmm_pci_open(const char *sysfs_path, const char *ids_path, char *err, int errlen) {
    struct pci_access *volatile acc = pci_alloc();
    if (!acc) {
        svmm_pci_copy_message(err, errlen, "pci_alloc failed");
        return NULL;
    }
    acc->error = svmm_pci_on_error;
    acc->warning = svmm_pci_on_warning;
    acc->debug = svmm_pci_on_debug;
    acc->method = PCI_ACCESS_SYS_BUS_PCI;
    svmm_pci_guard guard;
    guard.message[0] = 0;
    svmm_pci_guard *saved = svmm_pci_active_guard;
    if (setjmp(guard.env)) {
        svmm_pci_active_guard = saved;
        svmm_pci_copy_message(err, errlen, guard.message);
        return NULL;
    }
    svmm_pci_active_guard = &guard;
    if (pci_set_param(acc, "sysfs.path", (char *)sysfs_path) != 0) {
        svmm_pci_active_guard = saved;
        svmm_pci_copy_message(err, errlen, "libpci has no sysfs.path parameter");
        pci_cleanup(acc);
        return NULL;
    }
    if (ids_path) {
        pci_set_name_list_path(acc, (char *)ids_path, 0);
    }
    pci_init(acc);
    svmm_pci_active_guard = saved;
    return acc;
}

/// Looks up a name with PCI_LOOKUP_NO_NUMBERS (NULL when the ID database has no entry) and
/// without udev's hwdb, so the answer comes from the ID file alone. kind is PCI_LOOKUP_VENDOR,
/// PCI_LOOKUP_DEVICE or PCI_LOOKUP_CLASS. Returns 1 and fills buf when found, 0 when unknown,
/// -1 when libpci failed (message in err).
static inline int svmm_pci_lookup(struct pci_access *acc, int kind, unsigned int a, unsigned int b,
                                  char *buf, int size, char *err, int errlen) {
    svmm_pci_guard guard;
    guard.message[0] = 0;
    svmm_pci_guard *saved = svmm_pci_active_guard;
    if (setjmp(guard.env)) {
        svmm_pci_active_guard = saved;
        svmm_pci_copy_message(err, errlen, guard.message);
        return -1;
    }
    svmm_pci_active_guard = &guard;
    int flags = kind | PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB;
    char *name;
    if (kind == PCI_LOOKUP_DEVICE) {
        name = pci_lookup_name(acc, buf, size, flags, a, b);
    } else {
        name = pci_lookup_name(acc, buf, size, flags, a);
    }
    svmm_pci_active_guard = saved;
    if (!name) {
        return 0;
    }
    if (name != buf) {
        snprintf(buf, (size_t)size, "%s", name);
    }
    return 1;
}

/// Reads len bytes of config space at pos through the access method (the `config` file for sysfs).
/// Returns 1 on success, 0 when the read failed (short file, unreadable), -1 on a libpci error.
static inline int svmm_pci_read_config(struct pci_dev *dev, int pos, unsigned char *buf, int len, char *err, int errlen) {
    svmm_pci_guard guard;
    guard.message[0] = 0;
    svmm_pci_guard *saved = svmm_pci_active_guard;
    if (setjmp(guard.env)) {
        svmm_pci_active_guard = saved;
        svmm_pci_copy_message(err, errlen, guard.message);
        return -1;
    }
    svmm_pci_active_guard = &guard;
    int ok = pci_read_block(dev, pos, buf, len);
    svmm_pci_active_guard = saved;
    return ok ? 1 : 0;
}

/// Walks the capability lists (traditional and extended) and returns the config-space offset of
/// capability id of the given type (PCI_CAP_NORMAL / PCI_CAP_EXTENDED); 0 when absent, -1 on a libpci error.
static inline int svmm_pci_find_cap(struct pci_dev *dev, unsigned int id, unsigned int type, char *err, int errlen) {
    svmm_pci_guard guard;
    guard.message[0] = 0;
    svmm_pci_guard *saved = svmm_pci_active_guard;
    if (setjmp(guard.env)) {
        svmm_pci_active_guard = saved;
        svmm_pci_copy_message(err, errlen, guard.message);
        return -1;
    }
    svmm_pci_active_guard = &guard;
    struct pci_cap *cap = pci_find_cap(dev, id, type);
    svmm_pci_active_guard = saved;
    return cap ? (int)cap->addr : 0;
}

/// pci_get_dev under a guard; NULL on failure.
static inline struct pci_dev *svmm_pci_get_dev(struct pci_access *acc, int domain, int bus, int dev, int func, char *err, int errlen) {
    svmm_pci_guard guard;
    guard.message[0] = 0;
    svmm_pci_guard *saved = svmm_pci_active_guard;
    if (setjmp(guard.env)) {
        svmm_pci_active_guard = saved;
        svmm_pci_copy_message(err, errlen, guard.message);
        return NULL;
    }
    svmm_pci_active_guard = &guard;
    struct pci_dev *d = pci_get_dev(acc, domain, bus, dev, func);
    svmm_pci_active_guard = saved;
    return d;
}
