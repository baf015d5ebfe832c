//! Compiles the gRPC contract with the pure-Rust `protox` compiler, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_file = "proto/sweep/v1/sweep.proto";
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile([proto_file], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
