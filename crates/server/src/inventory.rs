//! Platforms and hosts: applying specs, and the host list with each host's latest key metrics.

use std::collections::BTreeMap;

use cloudkeep_protocol::api::{
    FilesystemSummary, HostList, HostSummary, InterfaceSummary, PlatformApplied, PlatformList,
    PlatformSummary,
};
use cloudkeep_store::{HostRecord, PlatformRecord};
use cloudkeep_tsdb::Selector;

use crate::auth::Permission;
use crate::{Principal, Server, ServiceError};

/// The metrics the host list shows, by name.
const KEY_METRICS: &str = "host_cpu_busy_percent|host_memory_used_percent|host_load1|host_filesystem_used_percent|host_network_receive_bytes_per_second|host_network_transmit_bytes_per_second";

impl Server {
    /// Validates a spec and registers or updates its platform and hosts.
    pub async fn apply_spec(
        &self,
        caller: &Principal,
        source_name: &str,
        text: &str,
    ) -> Result<PlatformApplied, ServiceError> {
        caller.require(Permission::ApplySpec)?;
        let result = self.apply_spec_unaudited(source_name, text).await;
        let target = match &result {
            Ok(applied) => format!("platform:{}", applied.platform),
            Err(_) => format!("spec:{source_name}"),
        };
        self.audit(caller, "spec.apply", &target, &result).await;
        result
    }

    async fn apply_spec_unaudited(
        &self,
        source_name: &str,
        text: &str,
    ) -> Result<PlatformApplied, ServiceError> {
        let spec = cloudkeep_model::parse_spec(source_name, text).map_err(|errors| {
            ServiceError::bad_request(format!("the spec has {} error(s)", errors.len()))
                .with_details(errors.iter().map(ToString::to_string).collect())
        })?;
        self.check_rule_recipients(source_name, &spec)?;
        let spec_json = serde_json::to_string(&spec)
            .map_err(|err| ServiceError::internal("serialising a spec", &err))?;
        let record = PlatformRecord {
            name: spec.platform.to_string(),
            isv: spec.isv.to_string(),
            tenant: spec.tenant.to_string(),
            cloud: spec.cloud.to_string(),
            spec_hash: blake3::hash(spec_json.as_bytes()).to_hex().to_string(),
            spec_json,
            revision: 0,
            updated_at_ms: self.now_ms(),
        };
        let hosts: Vec<HostRecord> = spec
            .hosts()
            .into_iter()
            .map(|host| HostRecord {
                name: host.name.to_string(),
                platform: record.name.clone(),
                cloud: host.cloud.to_string(),
                components_json: serde_json::to_string(
                    &host
                        .components
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_else(|_| "[]".into()),
                last_seen_ms: None,
            })
            .collect();
        let (outcome, revision) = self.store().apply_platform(&record, &hosts).await?;
        tracing::info!(platform = %record.name, revision, outcome = outcome.as_str(), "spec applied");
        let rules = self.reload_rules().await?;
        tracing::info!(rules, "alert rules compiled");
        Ok(PlatformApplied {
            platform: record.name,
            revision,
            outcome: outcome.as_str().into(),
        })
    }

    /// Every rule's `notify` list must name contacts or groups of the server's `[notify]` section, so that
    /// no rule silently points at nobody.
    fn check_rule_recipients(
        &self,
        source_name: &str,
        spec: &cloudkeep_model::PlatformSpec,
    ) -> Result<(), ServiceError> {
        let policy = &self.config().notify.policy;
        let mut problems = Vec::new();
        for (index, rule) in spec.rules.iter().enumerate() {
            let names: Vec<&str> = rule.notify.iter().map(String::as_str).collect();
            if let Err(unknown) =
                cloudkeep_alerting::policy_config::validate_contact_refs(&names, policy)
            {
                problems.extend(
                    unknown
                        .iter()
                        .map(|problem| format!("{source_name}: rules[{index}].{problem}")),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(
                ServiceError::bad_request(format!("the spec has {} error(s)", problems.len()))
                    .with_details(problems),
            )
        }
    }

    pub async fn platforms(&self, caller: &Principal) -> Result<PlatformList, ServiceError> {
        caller.require(Permission::Read)?;
        let platforms = self.store().list_platforms().await?;
        let hosts = self.store().list_hosts().await?;
        let result = Ok(PlatformList {
            platforms: platforms
                .into_iter()
                .map(|platform| PlatformSummary {
                    hosts: hosts
                        .iter()
                        .filter(|host| host.platform == platform.name)
                        .map(|host| host.name.clone())
                        .collect(),
                    name: platform.name,
                    isv: platform.isv,
                    tenant: platform.tenant,
                    cloud: platform.cloud,
                    revision: platform.revision,
                    updated_at_ms: platform.updated_at_ms,
                })
                .collect(),
        });
        self.audit(caller, "platforms.list", "platforms", &result)
            .await;
        result
    }

    /// Every host with its platform, last-seen time and latest cpu, memory, load, df and interface values.
    pub async fn hosts(&self, caller: &Principal) -> Result<HostList, ServiceError> {
        caller.require(Permission::Read)?;
        let records = self.store().list_hosts().await?;
        let selector = Selector::parse(&format!("{{__name__=~\"{KEY_METRICS}\"}}"))
            .map_err(|err| ServiceError::internal("key metric selector", &err))?;
        let tsdb = self.tsdb().clone();
        let latest = tokio::task::spawn_blocking(move || tsdb.latest(&selector))
            .await
            .map_err(|err| ServiceError::internal("latest values task", &err))?;
        let mut by_host: BTreeMap<String, HostSummary> = records
            .into_iter()
            .map(|record| {
                let summary = HostSummary {
                    name: record.name.clone(),
                    platform: record.platform,
                    cloud: record.cloud,
                    last_seen_ms: record.last_seen_ms,
                    cpu_busy_percent: None,
                    memory_used_percent: None,
                    load1: None,
                    filesystems: Vec::new(),
                    interfaces: Vec::new(),
                };
                (record.name, summary)
            })
            .collect();
        for (labels, sample) in latest {
            let Some(summary) = labels.get("host").and_then(|host| by_host.get_mut(host)) else {
                continue;
            };
            let value = sample.value;
            match labels.name().unwrap_or_default() {
                "host_cpu_busy_percent" => summary.cpu_busy_percent = Some(value),
                "host_memory_used_percent" => summary.memory_used_percent = Some(value),
                "host_load1" => summary.load1 = Some(value),
                "host_filesystem_used_percent" => summary.filesystems.push(FilesystemSummary {
                    mountpoint: labels.get("mountpoint").unwrap_or_default().to_owned(),
                    used_percent: value,
                }),
                name @ ("host_network_receive_bytes_per_second"
                | "host_network_transmit_bytes_per_second") => {
                    let interface = labels.get("interface").unwrap_or_default();
                    let entry = match summary
                        .interfaces
                        .iter()
                        .position(|entry| entry.interface == interface)
                    {
                        Some(index) => &mut summary.interfaces[index],
                        None => {
                            summary.interfaces.push(InterfaceSummary {
                                interface: interface.to_owned(),
                                receive_bytes_per_second: None,
                                transmit_bytes_per_second: None,
                            });
                            summary.interfaces.last_mut().expect("just pushed")
                        }
                    };
                    if name.contains("receive") {
                        entry.receive_bytes_per_second = Some(value);
                    } else {
                        entry.transmit_bytes_per_second = Some(value);
                    }
                }
                _ => {}
            }
        }
        let result = Ok(HostList {
            hosts: by_host.into_values().collect(),
        });
        self.audit(caller, "hosts.list", "hosts", &result).await;
        result
    }
}
