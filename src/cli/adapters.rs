//! `wgstyle adapters`

use anyhow::{bail, Result};

pub fn run() -> Result<()> {
    let adapters = wgstyle::gpu::context::enumerate_adapters(None);
    if adapters.is_empty() {
        bail!("no GPU adapters found. On Linux without a GPU: apt-get install mesa-vulkan-drivers");
    }
    println!("{:<40} {:<8} {:<14} driver", "name", "backend", "type");
    for a in adapters {
        println!(
            "{:<40} {:<8} {:<14} {} {}",
            a.name,
            format!("{:?}", a.backend),
            format!("{:?}", a.device_type),
            a.driver,
            a.driver_info
        );
    }
    Ok(())
}
