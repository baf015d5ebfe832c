use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = coordinator::cli::Cli::parse();
    coordinator::cli::main(cli)
}
