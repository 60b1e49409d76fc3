//! Compiles the BPF programs in `bpf/*.bpf.c` with clang into `$OUT_DIR/<name>.bpf.o`, which the
//! crate embeds. Without clang (or when it fails) the crate still builds: the `weir_bpf_objects`
//! cfg stays unset, the loaders answer `EbpfError::NotBuilt`, and weir says so once at start.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(weir_bpf_objects)");
    println!("cargo::rerun-if-changed=bpf");
    println!("cargo::rerun-if-env-changed=WEIR_CLANG");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = std::env::var("WEIR_CLANG").unwrap_or_else(|_| "clang".into());
    let mut sources: Vec<PathBuf> = std::fs::read_dir("bpf")
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".bpf.c")).collect())
        .unwrap_or_default();
    sources.sort();
    for source in &sources {
        if let Err(why) = compile(&clang, source, &out) {
            println!("cargo::warning=weir-ebpf: BPF programs not built ({why}); weir will run on its userspace paths");
            return;
        }
    }
    println!("cargo::rustc-cfg=weir_bpf_objects");
}

fn compile(clang: &str, source: &Path, out: &Path) -> Result<(), String> {
    let stem =
        source.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".c")).ok_or("bad name")?;
    let object = out.join(format!("{stem}.o"));
    let arch_include = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let status = Command::new(clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{arch_include}"))
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(&object)
        .status()
        .map_err(|e| format!("cannot run {clang}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{clang} failed on {}", source.display()))
    }
}
