//! What a child process used, as the kernel counted it (for benchmarks).

/// The exit status and resource use of a child that ended.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// The wait status (0 for a clean exit).
    pub status: i32,
    /// Its peak resident set in KiB (`ru_maxrss`).
    pub max_rss_kib: i64,
    /// User plus system CPU time in seconds.
    pub cpu_secs: f64,
}

/// Waits for the child `pid` (spawned by this process and not reaped
/// yet) and returns what it used.
pub fn wait_pid(pid: u32) -> std::io::Result<Usage> {
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and rusage given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Usage {
        status,
        max_rss_kib: ru.ru_maxrss,
        cpu_secs: secs(ru.ru_utime) + secs(ru.ru_stime),
    })
}
