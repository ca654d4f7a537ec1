//! The `/probe` gauges of `/metrics`.

use std::sync::Arc;

use super::Probes;

/// `pgmaint_exporter_probe_targets` and `…_probe_connections_open`, read
/// when the `/metrics` registry is gathered; closes idle targets first, so
/// they are not counted and their connections go even when nothing probes.
pub struct Gauges {
    probes: Arc<Probes>,
    targets: prometheus::IntGauge,
    connections: prometheus::IntGauge,
}

impl Gauges {
    /// Constant, valid names: the prometheus crate does not refuse them in
    /// practice; created once at start-up, which stops on the error.
    pub fn new(probes: Arc<Probes>) -> prometheus::Result<Gauges> {
        let targets = prometheus::IntGauge::new(
            "pgmaint_exporter_probe_targets",
            "/probe targets held open right now (PGMAINT_MAX_TARGETS caps them).",
        )?;
        let connections = prometheus::IntGauge::new(
            "pgmaint_exporter_probe_connections_open",
            "Database connections open across all /probe targets (PGMAINT_MAX_CONNECTIONS_TOTAL caps them).",
        )?;
        Ok(Gauges {
            probes,
            targets,
            connections,
        })
    }
}

impl prometheus::core::Collector for Gauges {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut d = self.targets.desc();
        d.extend(self.connections.desc());
        d
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.probes.sweep();
        self.targets.set(self.probes.targets() as i64);
        self.connections.set(self.probes.open_connections() as i64);
        let mut m = self.targets.collect();
        m.extend(self.connections.collect());
        m
    }
}
