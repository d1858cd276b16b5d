//! glibc's malloc set up for how ferry allocates, as measured rather than assumed.
//!
//! A pull of thousands of images holds a plan of tens of megabytes while a few dozen threads
//! (the runtime's workers, blocking file writes, the sealers) allocate and free download and
//! hashing buffers of up to 1 MiB. By default glibc gives each thread an arena of its own (up
//! to eight per core), and every arena keeps the pages its frees leave behind; and once a
//! buffer above its mmap threshold is freed it raises the threshold to that buffer's size, so
//! the next half-megabyte buffers come from the arenas and stay there. Peak RSS of a pull of
//! the scale profile at N = 10,000 (`/usr/bin/time -v`, 2-core VM): 72.3 MiB as glibc comes,
//! 57.5 MiB with two arenas, 51–52 MiB with two arenas and the threshold held at 128 KiB. One
//! arena saved no more than two. Trimming (`malloc_trim`) once the plan let go of its
//! manifests saved under 1 MiB and is not done.

/// Two arenas, and buffers from 128 KiB up always mapped and unmapped on their own. Call it
/// first thing in `main`, before any other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    // SAFETY: mallopt only changes the allocator's parameters, and no other thread exists yet
    // to be allocating while it does.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

/// Other allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
