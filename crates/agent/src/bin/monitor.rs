//! The container monitor as its own small binary, for this crate's integration tests
//! (`hoist monitor` is the same code in the real binary).

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [state_dir] => runtime::monitor::main(std::path::Path::new(state_dir)),
        _ => {
            eprintln!("usage: hoist-agent-monitor STATE_DIR");
            std::process::ExitCode::from(2)
        }
    }
}
