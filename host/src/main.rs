//! The `wasmhook` binary.

/// mimalloc instead of glibc's malloc: a call assembles, copies and serializes several JSON
/// documents, and under load glibc's allocator spent a quarter of the server's CPU in its
/// arenas' slow paths (`malloc_consolidate`, `unlink_chunk`; see BENCHMARKS.md). mimalloc's
/// per-thread free lists serve the same pattern at a fraction of the cost. Only the binary
/// chooses: the library leaves the allocator to whoever embeds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wasmhook::cli::main()
}
