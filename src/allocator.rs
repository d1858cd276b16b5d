//! glibc's malloc set up for how ferry allocates, as measured rather than assumed.
//!
//! A pull of thousands of images holds a plan of tens of megabytes while a few dozen threads
//! (the runtime's workers, blocking file writes, the sealers) allocate and free download and
//! hashing buffers of up to 1 MiB. By default glibc gives each thread an arena of its own (up
//! to eight per core), and every arena keeps the pages its frees leave behind. Two arenas are
//! enough for two busy kinds of thread. Peak RSS of a pull of the scale profile at N = 10,000
//! (`/usr/bin/time`, 2-core VM, big layers of 10 MiB): 72–74 MiB as glibc comes, 56–57 MiB
//! with two arenas.
//!
//! The mmap threshold is left to glibc. Holding it at 128 KiB (every buffer from 128 KiB up
//! mapped and unmapped on its own) took a few MiB more off that peak (50 MiB) but cost a 1 GiB
//! pull 1.4x its time and 1.5x its CPU (2.38 s against 1.66 s, medians of 5 alternating with
//! the other settings), and a GOST pull 1.25x: every download buffer came back as fresh pages
//! to fault in and zero.

/// Two arenas. Call it first thing in `main`, before any other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    // SAFETY: mallopt only changes the allocator's parameters, and no other thread exists yet
    // to be allocating while it does.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Other allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

/// Gives the pages of freed memory back to the system, in every arena. For the end of a phase
/// that built and dropped far more than what comes after it keeps (push's offline check of
/// thousands of images): its garbage would otherwise stay resident in an arena the threads of
/// the next phase may not allocate from.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns free pages; it is thread-safe like malloc itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
