//! The block height Umbra reports where Session software expects oxend's chain height (pure:
//! the caller passes the time).
//!
//! Nodes answer `ifelse` with it and the registry's seed JSON-RPC reports it as `height`
//! (`storage-rpc-addendum.md` A4). It is not the node-list epoch, which is a separate number.

/// Oxend's mainnet anchor height for the estimate (`HEIGHT_ESTIMATE_HEIGHT`).
pub const HEIGHT_ESTIMATE_HEIGHT: u64 = 582_088;
/// Unix time (seconds) of [`HEIGHT_ESTIMATE_HEIGHT`] (`HEIGHT_ESTIMATE_TIMESTAMP`).
pub const HEIGHT_ESTIMATE_TIMESTAMP_S: i64 = 1_595_359_932;
/// One block every 2 minutes (`TARGET_BLOCK_TIME`), in seconds.
pub const TARGET_BLOCK_TIME_S: i64 = 120;

/// The block height Umbra nodes and seeds report (`ifelse`, the seed's `height`):
/// `582 088 + ⌊(now_s − 1 595 359 932) / 120⌋`, oxend's estimate of the mainnet height from the
/// clock (`storage-rpc-addendum.md` A4). It is on the live chain's scale, monotonic in `now_ms`
/// and the same on every machine whose clock is within the usual skew; the node-list epoch is a
/// separate number. Pure: the caller passes its (injected) clock's Unix milliseconds. Times
/// before the anchor give a smaller height (never below 0).
#[must_use]
pub fn chain_height(now_ms: i64) -> u64 {
    let now_s = now_ms.div_euclid(1000);
    let blocks = now_s
        .saturating_sub(HEIGHT_ESTIMATE_TIMESTAMP_S)
        .div_euclid(TARGET_BLOCK_TIME_S);
    let anchor = i64::try_from(HEIGHT_ESTIMATE_HEIGHT).unwrap_or(i64::MAX);
    u64::try_from(anchor.saturating_add(blocks)).unwrap_or(0)
}
