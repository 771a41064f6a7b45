//! The allocator the Linux programs ship with (app/src/main.rs), so the benches measure it.

#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Printed beside the limits, so a figure says which allocator it was measured with.
#[allow(dead_code)]
pub const NAME: &str = if cfg!(target_os = "linux") { "jemalloc" } else { "the system allocator" };
