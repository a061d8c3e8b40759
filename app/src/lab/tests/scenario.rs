//! The scenarios the lab opens by name from its URL: the default mesh, and a sandbox setup
//! (`scenario=sandbox&setup=…`) with the problems of a bad one named.

use faultline_engine::sandbox::Setup;

use super::super::{SANDBOX, scenario};

#[test]
fn the_lab_opens_a_sandbox_setup_from_the_url_or_says_what_is_wrong() {
    let default = scenario("default", None).unwrap();
    assert_eq!(default.duration_ms, 300_000);
    // No setup is the sandbox's default: the lesson mesh.
    let plain = scenario(SANDBOX, None).unwrap();
    assert_eq!(plain.services, default.services);
    let mut setup = Setup {
        rate_per_s: 120.0,
        duration_ms: 60_000,
        ..Setup::default()
    };
    let shared = scenario(SANDBOX, Some(&setup.to_text())).unwrap();
    assert_eq!(shared.workload.rate_per_s, 120.0);
    assert_eq!(shared.duration_ms, 60_000);
    let unreadable = scenario(SANDBOX, Some("{\"rate\":")).unwrap_err();
    assert!(unreadable.contains("does not read"), "{unreadable}");
    setup.rate_per_s = 5_000.0;
    let invalid = scenario(SANDBOX, Some(&setup.to_text())).unwrap_err();
    assert!(invalid.contains("rate_per_s: must be"), "{invalid}");
    assert!(scenario("nope", None).unwrap_err().contains("`nope`"));
}
