//! Untrusted PEM bytes -> `kit::organization_from_pem` (the organisation in a kit's
//! certificate subject). Any `Err` is fine; a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = flare_deploy_core::kit::organization_from_pem(data, "client.crt");
});
