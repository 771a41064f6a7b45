//! The allocator the Linux programs ship with (app/src/main.rs), so the benches measure it.

#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
