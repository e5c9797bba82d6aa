//! Network interface traffic rates from /proc/net/dev.

use crate::collect::procfile::{ProcFile, boot_time};
use crate::collect::rate::CounterTracker;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const RECEIVE_BYTES: &str = "host_network_receive_bytes_per_second";
pub const TRANSMIT_BYTES: &str = "host_network_transmit_bytes_per_second";
pub const RECEIVE_PACKETS: &str = "host_network_receive_packets_per_second";
pub const TRANSMIT_PACKETS: &str = "host_network_transmit_packets_per_second";
pub const RECEIVE_ERRORS: &str = "host_network_receive_errors_per_second";
pub const TRANSMIT_ERRORS: &str = "host_network_transmit_errors_per_second";
pub const RECEIVE_DROPS: &str = "host_network_receive_drops_per_second";
pub const TRANSMIT_DROPS: &str = "host_network_transmit_drops_per_second";

/// Whether an interface is reported: every interface except loopback (`lo`). Virtual
/// interfaces (bridges, veth, tunnels) carry real traffic and are kept; series of interfaces
/// that disappear are forgotten after [`crate::collect::rate::DEFAULT_FORGET_AFTER_MS`].
pub fn is_reported_interface(name: &str) -> bool {
    name != "lo"
}

/// Per-interface rates labelled `interface`.
#[derive(Debug)]
pub struct NetworkCollector {
    root: ProcRoot,
    rates: CounterTracker,
}

impl NetworkCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self {
            root,
            rates: CounterTracker::new(),
        }
    }
}

impl Collector for NetworkCollector {
    fn name(&self) -> &'static str {
        "network"
    }

    fn collect(&mut self, now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let file = ProcFile::read(&self.root, "net/dev")?;
        let devices: procfs::net::InterfaceDeviceStatus = file.parse()?;
        let btime = boot_time(&self.root)?;
        let mut interfaces: Vec<&procfs::net::DeviceStatus> = devices
            .0
            .values()
            .filter(|d| is_reported_interface(&d.name))
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        for d in interfaces {
            let labels = [("interface", d.name.as_str())];
            for (metric, value) in [
                (RECEIVE_BYTES, d.recv_bytes),
                (TRANSMIT_BYTES, d.sent_bytes),
                (RECEIVE_PACKETS, d.recv_packets),
                (TRANSMIT_PACKETS, d.sent_packets),
                (RECEIVE_ERRORS, d.recv_errs),
                (TRANSMIT_ERRORS, d.sent_errs),
                (RECEIVE_DROPS, d.recv_drop),
                (TRANSMIT_DROPS, d.sent_drop),
            ] {
                self.rates
                    .push_rate(out, metric, &labels, value, now_ms, btime, 1.0);
            }
        }
        self.rates.forget_stale(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
";

    fn dev(lines: &[(&str, [u64; 8])]) -> String {
        let mut s = HEADER.to_owned();
        for (name, [rb, rp, re, rd, tb, tp, te, td]) in lines {
            s += &format!("{name:>6}: {rb} {rp} {re} {rd} 0 0 0 0 {tb} {tp} {te} {td} 0 0 0 0\n");
        }
        s
    }

    #[test]
    fn rates_from_two_snapshots_skip_lo() {
        let fx = Fixture::new();
        fx.write_btime(1_700_000_000);
        fx.write(
            "net/dev",
            &dev(&[
                ("lo", [5, 5, 0, 0, 5, 5, 0, 0]),
                ("eth0", [1_000_000, 1_000, 1, 2, 500_000, 800, 3, 4]),
            ]),
        );
        let mut c = NetworkCollector::new(fx.root());
        assert!(collect(&mut c, 0).is_empty(), "no rates on first sight");

        fx.write(
            "net/dev",
            &dev(&[
                ("lo", [99, 99, 0, 0, 99, 99, 0, 0]),
                (
                    "eth0",
                    [13_500_000, 11_000, 11, 22, 1_500_000, 1_800, 3, 44],
                ),
            ]),
        );
        let s = collect(&mut c, 10_000);
        assert_eq!(s.len(), 8, "{s:?}");
        let eth0 = [("interface", "eth0")];
        assert_close(value(&s, RECEIVE_BYTES, &eth0), 1_250_000.0);
        assert_close(value(&s, TRANSMIT_BYTES, &eth0), 100_000.0);
        assert_close(value(&s, RECEIVE_PACKETS, &eth0), 1_000.0);
        assert_close(value(&s, TRANSMIT_PACKETS, &eth0), 100.0);
        assert_close(value(&s, RECEIVE_ERRORS, &eth0), 1.0);
        assert_close(value(&s, TRANSMIT_ERRORS, &eth0), 0.0);
        assert_close(value(&s, RECEIVE_DROPS, &eth0), 2.0);
        assert_close(value(&s, TRANSMIT_DROPS, &eth0), 4.0);
    }

    #[test]
    fn recreated_interface_and_reboot() {
        let fx = Fixture::new();
        fx.write_btime(1_000_000);
        let eth = |rb| dev(&[("eth0", [rb, 0, 0, 0, 0, 0, 0, 0])]);
        fx.write("net/dev", &eth(5_000_000_000_000));
        let mut c = NetworkCollector::new(fx.root());
        collect(&mut c, 0);
        // re-created interface: counters restart; no rate for this interval
        fx.write("net/dev", &eth(100));
        let no_bytes_rate = |s: Vec<Sample>| !s.iter().any(|x| x.name == RECEIVE_BYTES);
        assert!(no_bytes_rate(collect(&mut c, 10_000)));
        fx.write("net/dev", &eth(10_100));
        let eth0 = [("interface", "eth0")];
        assert_close(
            value(&collect(&mut c, 20_000), RECEIVE_BYTES, &eth0),
            1_000.0,
        );
        // reboot: counters grew by chance, still no rate
        fx.write_btime(1_100_000);
        fx.write("net/dev", &eth(50_000));
        assert!(collect(&mut c, 30_000).is_empty(), "every series restarts");
        fx.write("net/dev", &eth(60_000));
        assert_close(
            value(&collect(&mut c, 40_000), RECEIVE_BYTES, &eth0),
            1_000.0,
        );
    }

    #[test]
    fn vanished_interfaces_are_forgotten() {
        let fx = Fixture::new();
        fx.write_btime(1);
        fx.write("net/dev", &dev(&[("eth0", [0; 8]), ("veth1", [0; 8])]));
        let mut c = NetworkCollector::new(fx.root());
        collect(&mut c, 0);
        assert_eq!(c.rates.len(), 16);
        fx.write("net/dev", &dev(&[("eth0", [0; 8])]));
        let mut now = 0;
        while now <= crate::collect::rate::DEFAULT_FORGET_AFTER_MS + 10_000 {
            now += 10_000;
            collect(&mut c, now);
        }
        assert_eq!(c.rates.len(), 8);
    }

    #[test]
    fn malformed_net_dev_names_the_file() {
        let fx = Fixture::new();
        fx.write_btime(1);
        fx.write("net/dev", &format!("{HEADER}  eth0: 1 2 3\n"));
        let err = NetworkCollector::new(fx.root())
            .collect(0, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, CollectError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("net/dev"), "{err}");
    }
}
