//! A position fix as every phone protocol decodes into it (SI units), before the filters judge it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where a fix came from (stored as `pings.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Native,
    Osmand,
    Owntracks,
    Gpx,
    Demo,
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Native => "native",
            Source::Osmand => "osmand",
            Source::Owntracks => "owntracks",
            Source::Gpx => "gpx",
            Source::Demo => "demo",
            Source::Import => "import",
        }
    }
}

/// One position fix decoded from any protocol, in SI units. Unknown values are `None`: phones send
/// 0 or negative numbers for "unknown" accuracy, speed and heading, and decoders map those to `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// Device clock, UTC.
    pub fix_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// Horizontal accuracy, metres (> 0).
    pub accuracy_m: Option<f32>,
    /// Ground speed, m/s (>= 0).
    pub speed_mps: Option<f32>,
    /// Course over ground, degrees in [0, 360).
    pub heading_deg: Option<f32>,
    /// Metres above sea level.
    pub altitude_m: Option<f32>,
    /// Battery level, percent in [0, 100].
    pub battery_pct: Option<f32>,
    /// The phone says the position came from a mock location provider.
    pub mock: bool,
    /// The client's own id of this fix, when it sends one.
    pub client_ping_id: Option<String>,
    /// Parameters the protocol carried that have no column, kept as sent.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl Fix {
    /// A fix with only time and position known.
    pub fn at(fix_time: DateTime<Utc>, lat: f64, lon: f64) -> Self {
        Fix {
            fix_time,
            lat,
            lon,
            accuracy_m: None,
            speed_mps: None,
            heading_deg: None,
            altitude_m: None,
            battery_pct: None,
            mock: false,
            client_ping_id: None,
            attributes: serde_json::Map::new(),
        }
    }
}

/// Bits of `pings.flags`.
pub mod flags {
    /// The implied speed from the previous fix (in fix-time order) is beyond the org's limit.
    pub const SPEED_JUMP: i32 = 1;
    /// The fix answers a manager's request for a fresh position.
    pub const REQUESTED: i32 = 2;
}
