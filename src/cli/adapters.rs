//! `wgstyle adapters`

use anyhow::{bail, Result};

pub fn run() -> Result<()> {
    wgstyle::gpu::context::check_backend_env()?;
    let adapters = wgstyle::gpu::context::enumerate_adapters(None);
    if adapters.is_empty() {
        bail!("no GPU adapters found. On Linux without a GPU: apt-get install mesa-vulkan-drivers");
    }
    println!(
        "{:<40} {:<8} {:<14} {:<34} driver",
        "name", "backend", "type", "features"
    );
    for a in adapters {
        let i = &a.info;
        println!(
            "{:<40} {:<8} {:<14} {:<34} {} {}",
            i.name,
            format!("{:?}", i.backend),
            format!("{:?}", i.device_type),
            if a.features.is_empty() {
                "-".to_string()
            } else {
                a.features.join(",")
            },
            i.driver,
            i.driver_info
        );
    }
    Ok(())
}
