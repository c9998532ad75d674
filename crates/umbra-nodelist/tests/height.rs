//! The chain-scale block height nodes and seeds report.

use umbra_nodelist::chain_height;

/// 2025-11-26.
const NOW_MS: i64 = 1_764_130_000_000;

/// `storage-rpc-addendum.md` A4: `height = 582 088 + ⌊(now_s − 1 595 359 932) / 120⌋`.
#[test]
fn chain_height_is_oxends_mainnet_estimate() {
    const ANCHOR_MS: i64 = 1_595_359_932_000;
    assert_eq!(chain_height(ANCHOR_MS), 582_088);
    assert_eq!(chain_height(ANCHOR_MS + 119_999), 582_088);
    assert_eq!(chain_height(ANCHOR_MS + 120_000), 582_089);
    assert_eq!(chain_height(ANCHOR_MS - 1), 582_087);
    assert_eq!(chain_height(1_700_000_000_000), 1_454_088);
    assert_eq!(chain_height(NOW_MS), 1_988_505);
    assert_eq!(chain_height(0), 0);
    assert_eq!(chain_height(i64::MIN), 0);
    assert!(chain_height(i64::MAX) > 1_988_505);
    // Monotonic.
    let mut prev = 0;
    for t in (ANCHOR_MS..ANCHOR_MS + 1_000_000).step_by(7_777) {
        let h = chain_height(t);
        assert!(h >= prev);
        prev = h;
    }
}
