//! Fuzz target `model`: the property checked is in `src/model.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = infergate_fuzz::model::check(data) {
        panic!("model: {why}");
    }
});
