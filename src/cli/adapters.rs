//! `wgstyle adapters`

use anyhow::{bail, Result};

pub fn run() -> Result<()> {
    let adapters = wgstyle::gpu::context::enumerate_adapters(None);
    if adapters.is_empty() {
        bail!("no GPU adapters found. On Linux without a GPU: apt-get install mesa-vulkan-drivers");
    }
    println!(
        "{:<40} {:<8} {:<14} {:<24} driver",
        "name", "backend", "type", "kernels"
    );
    for a in adapters {
        // What the convolution kernels can use: half precision, subgroups, and the matrix
        // units (cooperative matrices, f16 fragments with f32 sums).
        let mut caps = Vec::new();
        if a.f16 {
            caps.push("f16".to_string());
        }
        if a.subgroups {
            caps.push("subgroups".to_string());
        }
        for s in &a.coop {
            caps.push(format!("coop{s}x{s}"));
        }
        let i = &a.info;
        println!(
            "{:<40} {:<8} {:<14} {:<24} {} {}",
            i.name,
            format!("{:?}", i.backend),
            format!("{:?}", i.device_type),
            if caps.is_empty() {
                "-".to_string()
            } else {
                caps.join(",")
            },
            i.driver,
            i.driver_info
        );
    }
    Ok(())
}
