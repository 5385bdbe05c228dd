//! Fuzz target `sse`: the property checked is in `src/sse.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = infergate_fuzz::sse::check(data) {
        panic!("sse: {why}");
    }
});
