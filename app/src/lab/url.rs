//! The lab's state in the URL (after `#/lab?`), so a view survives a reload and can be shared:
//! the scenario (with a sandbox setup), the seed, the clock, the playback speed, the open view,
//! and each view's own state (the trace search's fields and time range, the open trace, the log
//! query and clock).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// The sandbox's setup as `Setup::to_text` writes it, read with `scenario=sandbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The simulated clock, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
    /// The open view (`traces`, …); none is the overview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Trace search: the fields as typed (the durations and tags are parsed when read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only traces that started this long before the run's clock (`10s`, `1m`); none: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<String>,
    /// Only traces that started in [from, to) on the run's clock, as typed (`1:05`, `65s`);
    /// either end may be open. With a lookback too, the range wins and the lookback is refused
    /// at its field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The result list's order (`longest`, `shortest`, `most-spans`, `least-spans`); none:
    /// newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// The open trace, as 32 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The trace the open one is compared with, as 32 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<String>,
    /// The metrics view's instance (its service is `service`, the lab's focus); none: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u16>,
    /// The log view's LogQL query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// The log view's timestamps: `true` for true time; none (or `node`) for each node's own
    /// clock, the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<String>,
}
