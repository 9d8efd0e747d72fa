//! Standalone local cluster for development and tests:
//! `local-cluster [--port P] [--kubeconfig FILE] [--state DIR] [--images-cache DIR]`.

use std::path::PathBuf;

fn main() {
    let mut opts = local_cluster::Options::default();
    match local_cluster::ImagesSetting::from_env() {
        Ok(images) => opts.images = images,
        Err(e) => {
            eprintln!("local-cluster: {e}");
            std::process::exit(2);
        }
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| match args.next() {
            Some(given) => given,
            None => {
                eprintln!("local-cluster: {name} needs a value");
                std::process::exit(2);
            }
        };
        match arg.as_str() {
            "--port" => match value("--port").parse() {
                Ok(port) => opts.port = port,
                Err(_) => {
                    eprintln!("local-cluster: --port needs a number");
                    std::process::exit(2);
                }
            },
            "--kubeconfig" => opts.kubeconfig = Some(PathBuf::from(value("--kubeconfig"))),
            "--state" => opts.state_dir = Some(PathBuf::from(value("--state"))),
            "--images-cache" => opts.images_cache = Some(PathBuf::from(value("--images-cache"))),
            "-h" | "--help" => {
                println!(
                    "usage: local-cluster [--port P] [--kubeconfig FILE] [--state DIR] [--images-cache DIR]"
                );
                return;
            }
            other => {
                eprintln!("local-cluster: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = local_cluster::run_standalone(opts) {
        eprintln!("local-cluster: {e:#}");
        std::process::exit(1);
    }
}
