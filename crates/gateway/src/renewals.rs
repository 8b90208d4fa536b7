//! How the gateway's token managers renew: the flows defaults, with a
//! refresh lock that a dead process gives up within seconds.

use std::time::Duration;

use arcgis_auth_flows::ManagerConfig;

/// How long a process holds the fleet's refresh lock of one session before
/// another may take the renewal over. The holder extends it every third
/// (2 s) while its renewal runs, so a slow portal never lets two processes
/// renew at once; a process killed in the middle of a renewal holds up the
/// session's other requests for at most this long (the flows default of
/// 30 s would stall every map of that user or app as long).
pub(crate) const LOCK_LEASE: Duration = Duration::from_secs(6);

/// The token managers' configuration for apps, servers and users.
pub(crate) fn manager_config() -> ManagerConfig {
    let mut config = ManagerConfig::default();
    config.lock_lease = LOCK_LEASE;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_short_and_still_covers_a_renewal() {
        let config = manager_config();
        assert_eq!(config.lock_lease, LOCK_LEASE);
        assert!(config.lock_wait >= config.longest_renewal());
    }
}
