use std::process::ExitCode;

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
