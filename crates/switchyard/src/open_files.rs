//! The open-file limit. Every HTTP connection is a file descriptor, so the server's
//! connection bound (`server.max_connections`) comes from it: a process that runs out
//! fails every `accept`, every database connection and every file it opens alike.

/// Most connections the derived bound ever allows: past this, memory (buffers and
/// tasks of idle connections) matters more than descriptors.
const MAX_DERIVED_CONNECTIONS: usize = 65_536;
/// Descriptors always left for everything but connections (database and Redis
/// connections, outgoing requests, logs, files), and the share of the limit at least.
const RESERVED_FILES: u64 = 256;

/// Raises this process's soft open-file limit to its hard limit (the soft one is often
/// 1,024 while the hard one allows far more) and returns the limit now in force; `None`
/// where there is none to read.
pub fn raise_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct passed to it.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit only reads the struct passed to it. It fails (and
            // nothing changes) where the hard limit is above what the kernel allows.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit.rlim_cur = limit.rlim_max;
            } else {
                tracing::debug!(
                    soft = limit.rlim_cur,
                    hard = limit.rlim_max,
                    "could not raise the open-file limit"
                );
            }
        }
        if limit.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        #[allow(clippy::unnecessary_cast)] // `rlim_t` is not u64 everywhere
        Some(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// The connection bound for an open-file limit: three quarters of it (leaving at least
/// [`RESERVED_FILES`] for everything else), at most [`MAX_DERIVED_CONNECTIONS`]. Without
/// a limit, that maximum.
pub fn max_connections_for(open_files: Option<u64>) -> usize {
    let Some(files) = open_files else {
        return MAX_DERIVED_CONNECTIONS;
    };
    let reserved = (files / 4).max(RESERVED_FILES).min(files / 2);
    usize::try_from(files - reserved)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_DERIVED_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_descriptors_for_everything_else() {
        assert_eq!(max_connections_for(Some(1_024)), 768);
        assert_eq!(max_connections_for(Some(20_000)), 15_000);
        assert_eq!(max_connections_for(Some(1_048_576)), 65_536);
        assert_eq!(max_connections_for(Some(300)), 150, "half of a tiny limit");
        assert_eq!(max_connections_for(Some(0)), 1);
        assert_eq!(max_connections_for(None), 65_536);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let now = raise_limit();
        // SAFETY: getrlimit only writes the struct passed to it.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(limit.rlim_cur, limit.rlim_max);
        #[allow(clippy::unnecessary_cast)]
        let soft = limit.rlim_cur as u64;
        assert_eq!(now, Some(soft));
    }
}
