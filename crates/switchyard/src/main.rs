use std::process::ExitCode;

/// mimalloc: the queue's hot paths allocate many small, short-lived objects, where glibc's
/// allocator spends measurable time consolidating free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match switchyard::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain, without a backtrace: these are errors for operators.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
