//! Fuzz target `usage`: the property checked is in `src/usage.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = infergate_fuzz::usage::check(data) {
        panic!("usage: {why}");
    }
});
