//! This process's resource use, read from `/proc/self` (Linux); elsewhere unknown.

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
}

/// Clock ticks per second of `/proc/self/stat` times (USER_HZ, 100 on every Linux ABI
/// Switchyard runs on).
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_SIZE: u64 = 4_096;

pub fn read() -> ProcessStats {
    let mut stats = ProcessStats::default();
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut fields = statm.split_whitespace().map(|f| f.parse::<u64>().ok());
        stats.virtual_bytes = fields.next().flatten().map(|p| p * PAGE_SIZE);
        stats.resident_bytes = fields.next().flatten().map(|p| p * PAGE_SIZE);
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces, inside parentheses).
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
                stats.cpu_seconds = Some((user + system) as f64 / TICKS_PER_SECOND);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        stats.open_fds = Some(dir.count() as u64);
    }
    stats
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let s = super::read();
        assert!(s.resident_bytes.unwrap() > 0);
        assert!(s.open_fds.unwrap() > 0);
        assert!(s.cpu_seconds.is_some());
    }
}
