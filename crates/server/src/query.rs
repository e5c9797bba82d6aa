//! Queries: series listing by selector and range queries with tier selection.

use std::collections::BTreeMap;

use cloudkeep_protocol::api::{QueryRangeResponse, SeriesData, SeriesList};
use cloudkeep_tsdb::{Aggregation, Labels, Selector, Tier};

use crate::auth::Permission;
use crate::{Principal, Server, ServiceError};

/// At most this many points per series, so a careless query cannot exhaust memory.
const MAX_POINTS: i64 = 11_000;

/// A range query as the API takes it.
#[derive(Debug, Clone)]
pub struct RangeQuery {
    pub selector: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: Option<i64>,
    pub aggregation: Option<String>,
}

fn parse_selector(text: &str) -> Result<Selector, ServiceError> {
    Selector::parse(text)
        .map_err(|err| ServiceError::bad_request(format!("invalid selector {text:?}: {err}")))
}

fn labels_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn parse_aggregation(text: Option<&str>) -> Result<Aggregation, ServiceError> {
    Ok(match text.unwrap_or("avg") {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "sum" => Aggregation::Sum,
        "count" => Aggregation::Count,
        "last" => Aggregation::Last,
        other => {
            return Err(ServiceError::bad_request(format!(
                "unknown aggregation {other:?}; expected avg, min, max, sum, count or last"
            )));
        }
    })
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Raw => "raw",
        Tier::FiveMinutes => "5m",
        Tier::OneHour => "1h",
    }
}

impl Server {
    pub async fn series(
        &self,
        caller: &Principal,
        selector: &str,
    ) -> Result<SeriesList, ServiceError> {
        caller.require(Permission::Read)?;
        let parsed = parse_selector(selector)?;
        let tsdb = self.tsdb().clone();
        let found = tokio::task::spawn_blocking(move || tsdb.series(&parsed))
            .await
            .map_err(|err| ServiceError::internal("series task", &err))?;
        let result = Ok(SeriesList {
            series: found.iter().map(labels_map).collect(),
        });
        self.audit(caller, "series.list", selector, &result).await;
        result
    }

    pub async fn query_range(
        &self,
        caller: &Principal,
        query: RangeQuery,
    ) -> Result<QueryRangeResponse, ServiceError> {
        caller.require(Permission::Read)?;
        let selector = parse_selector(&query.selector)?;
        if query.end_ms < query.start_ms {
            return Err(ServiceError::bad_request("end must not be before start"));
        }
        if let Some(step) = query.step_ms {
            if step <= 0 {
                return Err(ServiceError::bad_request("step must be positive"));
            }
            if (query.end_ms - query.start_ms) / step > MAX_POINTS {
                return Err(ServiceError::bad_request(format!(
                    "range/step gives more than {MAX_POINTS} points per series; use a larger step"
                )));
            }
        }
        let aggregation = parse_aggregation(query.aggregation.as_deref())?;
        let tsdb = self.tsdb().clone();
        let (start_ms, end_ms, step_ms) = (query.start_ms, query.end_ms, query.step_ms);
        let found = tokio::task::spawn_blocking(move || {
            tsdb.query_range(&selector, start_ms, end_ms, step_ms, aggregation)
        })
        .await
        .map_err(|err| ServiceError::internal("query task", &err))?
        .map_err(|err| ServiceError::internal("range query failed", &err))?;
        let tier = found.first().map_or(Tier::Raw, |series| series.tier);
        let result = Ok(QueryRangeResponse {
            tier: tier_name(tier).into(),
            series: found
                .iter()
                .map(|series| SeriesData {
                    labels: labels_map(&series.labels),
                    points: series
                        .points
                        .iter()
                        .map(|point| {
                            (
                                point.timestamp_ms,
                                (!point.value.is_nan()).then_some(point.value),
                            )
                        })
                        .collect(),
                })
                .collect(),
        });
        self.audit(caller, "query.range", &query.selector, &result)
            .await;
        result
    }
}
