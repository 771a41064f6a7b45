//! On Windows, embeds the icon in `libra-app.exe` (what Explorer, the taskbar and shortcuts
//! show): a resource script naming `assets/libra.ico`, compiled by mingw's windres into an
//! object linked into the binary. Other targets need nothing.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=assets/libra.ico");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let (Some(out), Some(dir)) = (std::env::var_os("OUT_DIR"), std::env::var_os("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let (out, dir) = (PathBuf::from(out), PathBuf::from(dir));
    let ico = dir.join("assets").join("libra.ico");
    let rc = out.join("libra.rc");
    let obj = out.join("libra-icon.o");
    let script = format!("1 ICON \"{}\"\n", ico.display().to_string().replace('\\', "/"));
    if let Err(e) = std::fs::write(&rc, script) {
        println!("cargo:warning=no icon embedded: {e}");
        return;
    }
    let windres = std::env::var("WINDRES").unwrap_or_else(|_| "x86_64-w64-mingw32-windres".into());
    match std::process::Command::new(&windres).arg(&rc).args(["-O", "coff", "-o"]).arg(&obj).status() {
        Ok(s) if s.success() => println!("cargo:rustc-link-arg-bin=libra-app={}", obj.display()),
        Ok(s) => println!("cargo:warning=no icon embedded: {windres} failed ({s})"),
        Err(e) => println!("cargo:warning=no icon embedded: {windres}: {e}"),
    }
}
