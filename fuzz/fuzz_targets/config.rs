//! Fuzz target `config`: the property checked is in `src/config.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = infergate_fuzz::config::check(data) {
        panic!("config: {why}");
    }
});
