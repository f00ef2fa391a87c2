//! Helpers shared by the integration tests of this crate.

/// Runs `f` on 1 and then on 2 threads, each in a fresh rayon pool of its own, and returns
/// both results: determinism tests compare them bit for bit.
pub fn on_1_and_2_threads<T: Send>(f: impl Fn() -> T + Sync) -> (T, T) {
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool of 1 or 2 threads")
            .install(&f)
    };
    (on(1), on(2))
}
