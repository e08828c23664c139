//! The emulated Xen ARM board (boards/qemu-virt): assembled from Debian packages and booted
//! under QEMU. Being written (issue #3).
