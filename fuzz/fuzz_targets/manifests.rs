//! AFL target for the YAML-to-object path: any manifest text is read into objects or problems
//! and compiled into a snapshot, never a panic, whatever the documents hold; and the snapshot it
//! gives encodes.

use std::path::Path;

use weir_control::compile::{compile, CompileOptions};
use weir_control::config::{parse, Command, Environment};
use weir_control::source::manifests::parse_file;
use weir_control::store::ObjectStore;

fn main() {
    let env = Environment { xdg_runtime_dir: None, euid: 0, exe_dir: None };
    let Ok(Command::Run { config, .. }) =
        parse(["--manifests=/nonexistent", "--entryPoints.web.address=:8000"], &env)
    else {
        panic!("the fuzz target's own configuration parses")
    };
    let options = CompileOptions::from_config(&config);
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let mut problems = Vec::new();
        let objects = parse_file(Path::new("fuzz.yaml"), text, &mut problems);
        let mut store = ObjectStore::default();
        for object in objects {
            store.insert(object);
        }
        let compiled = compile(&store, &options);
        compiled.snapshot.encode().expect("a compiled snapshot encodes");
    });
}
