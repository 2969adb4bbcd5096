#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hawker_fuzz::image(data));
