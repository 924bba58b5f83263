//! Arbitrary bytes through the structural check every upload passes before it is compiled:
//! an answer (the module's shape, or the reason it is refused) and never a panic; what
//! passes is within the bounds it was checked against.
//!
//! Seeds: small core modules and components, written by hand (see fuzz/README.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhook::runtime::precheck::{precheck, ModuleBounds};

fuzz_target!(|data: &[u8]| {
    let bounds = ModuleBounds::default();
    let Ok(shape) = precheck(data, &bounds) else {
        return;
    };
    assert!(shape.functions <= bounds.max_functions, "{shape:?}");
    assert!(shape.code_bytes <= bounds.max_code_bytes, "{shape:?}");
    assert!(
        shape.largest_function_bytes <= bounds.max_function_bytes,
        "{shape:?}"
    );
    assert!(shape.nested <= bounds.max_nested, "{shape:?}");
    let _ = shape.compile_weight();
});
