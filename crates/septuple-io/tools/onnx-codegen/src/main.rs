//! Generates src/onnx/onnx.rs from onnx.proto with prost-build, parsing the schema with
//! protox (pure Rust; no protoc).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (proto, out) = (&args[1], &args[2]);
    let fds = protox::compile([proto], [std::path::Path::new(proto).parent().unwrap()]).unwrap();
    let mut cfg = prost_build::Config::new();
    cfg.out_dir(out);
    cfg.compile_fds(fds).unwrap();
}
