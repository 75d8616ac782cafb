//! How much CPU the hypervisor took from this machine during a measurement.
//! Shared by the bench report and the xks-proxy load tool (which includes
//! this file by path).

/// The machine's CPU time so far as (stolen by the hypervisor, total), in
/// clock ticks, from the first line of `/proc/stat`; zeros elsewhere.
pub fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    (
        f.get(7).copied().unwrap_or(0),
        f.iter().take(8).sum::<u64>(),
    )
}

/// The share of CPU time the hypervisor took since `before`, in percent.
/// Absolute rates fall with it; ratios measured side by side much less.
pub fn steal_percent_since(before: (u64, u64)) -> f64 {
    let (steal, total) = cpu_ticks();
    100.0 * steal.saturating_sub(before.0) as f64 / total.saturating_sub(before.1).max(1) as f64
}
