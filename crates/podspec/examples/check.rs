//! Checks the manifests named on the command line and prints every problem, as
//! `hoist run -f` will: `cargo run -p hoist-podspec --example check -- pod.yaml`.

use hoist_podspec as podspec;

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        match podspec::load_file(&path) {
            Ok(pods) => println!("{path}: {} pod(s) valid", pods.len()),
            Err(errs) => {
                failed = true;
                println!("{errs}");
            }
        }
    }
    std::process::exit(i32::from(failed));
}
