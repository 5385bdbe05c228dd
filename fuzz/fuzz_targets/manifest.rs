//! Fuzz target `manifest`: the property checked is in `src/manifest.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = infergate_fuzz::manifest::check(data) {
        panic!("manifest: {why}");
    }
});
