//! Fuzz target `feed`: the property checked is in `src/feed.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = infergate_fuzz::feed::check(data) {
        panic!("feed: {why}");
    }
});
