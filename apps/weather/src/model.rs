//! The one response shape, whatever the provider: what a provider's answer is mapped to
//! ([`Observation`], always metric, what the cache stores) and what a client gets
//! ([`render`], in the units it asked for).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A place the geocoder found.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// The current weather at a place, in metric units (°C, m/s, hPa, %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub city: String,
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    /// Unix seconds, UTC.
    pub observed_at: i64,
    pub temperature_c: f64,
    pub feels_like_c: f64,
    pub humidity_pct: f64,
    pub pressure_hpa: f64,
    pub wind_speed_ms: f64,
    pub wind_direction_deg: f64,
    pub condition: Condition,
    pub provider: String,
}

/// Conditions in one vocabulary for every provider: a stable `code` clients can switch on, the
/// provider's own text, and the provider's numeric code for those who know its scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub code: String,
    pub text: String,
    pub provider_code: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    Metric,
    Imperial,
}

impl Units {
    pub fn parse(s: &str) -> Option<Units> {
        match s {
            "metric" => Some(Units::Metric),
            "imperial" => Some(Units::Imperial),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Units::Metric => "metric",
            Units::Imperial => "imperial",
        }
    }
}

/// Where an answer came from, for the `cache` object of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheInfo {
    pub hit: bool,
    /// Served past its freshness because the provider failed.
    pub stale: bool,
    pub age_seconds: u64,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The response body for `obs` in `units`.
pub fn render(obs: &Observation, units: Units, cache: CacheInfo) -> Value {
    let (temperature, feels_like, wind_speed, temp_unit, wind_unit) = match units {
        Units::Metric => (
            obs.temperature_c,
            obs.feels_like_c,
            obs.wind_speed_ms,
            "°C",
            "m/s",
        ),
        Units::Imperial => (
            obs.temperature_c * 9.0 / 5.0 + 32.0,
            obs.feels_like_c * 9.0 / 5.0 + 32.0,
            obs.wind_speed_ms * 2.236_936,
            "°F",
            "mph",
        ),
    };
    let observed_at = OffsetDateTime::from_unix_timestamp(obs.observed_at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    json!({
        "city": obs.city,
        "country": obs.country,
        "latitude": obs.latitude,
        "longitude": obs.longitude,
        "observed_at": observed_at,
        "temperature": round1(temperature),
        "feels_like": round1(feels_like),
        "humidity": obs.humidity_pct.round(),
        "pressure": round1(obs.pressure_hpa),
        "wind_speed": round1(wind_speed),
        "wind_direction": obs.wind_direction_deg.round(),
        "conditions": {
            "code": obs.condition.code,
            "text": obs.condition.text,
            "provider_code": obs.condition.provider_code,
        },
        "units": {
            "system": units.as_str(),
            "temperature": temp_unit,
            "wind_speed": wind_unit,
            "pressure": "hPa",
            "humidity": "%",
            "wind_direction": "degrees",
        },
        "provider": obs.provider,
        "cache": {
            "hit": cache.hit,
            "stale": cache.stale,
            "age_seconds": cache.age_seconds,
        },
    })
}

/// WMO weather interpretation codes (Open-Meteo's `weather_code`).
pub fn wmo_condition(code: i64) -> Condition {
    let (slug, text) = match code {
        0 => ("clear", "Clear sky"),
        1 => ("mostly_clear", "Mainly clear"),
        2 => ("partly_cloudy", "Partly cloudy"),
        3 => ("overcast", "Overcast"),
        45 => ("fog", "Fog"),
        48 => ("fog", "Depositing rime fog"),
        51 => ("drizzle", "Light drizzle"),
        53 => ("drizzle", "Moderate drizzle"),
        55 => ("drizzle", "Dense drizzle"),
        56 | 57 => ("freezing_drizzle", "Freezing drizzle"),
        61 => ("rain", "Slight rain"),
        63 => ("rain", "Moderate rain"),
        65 => ("rain", "Heavy rain"),
        66 | 67 => ("freezing_rain", "Freezing rain"),
        71 => ("snow", "Slight snow fall"),
        73 => ("snow", "Moderate snow fall"),
        75 => ("snow", "Heavy snow fall"),
        77 => ("snow", "Snow grains"),
        80..=82 => ("rain_showers", "Rain showers"),
        85 | 86 => ("snow_showers", "Snow showers"),
        95 => ("thunderstorm", "Thunderstorm"),
        96 | 99 => ("thunderstorm", "Thunderstorm with hail"),
        _ => ("unknown", "Unknown"),
    };
    Condition {
        code: slug.into(),
        text: text.into(),
        provider_code: code,
    }
}

/// OpenWeatherMap condition ids (`weather[0].id`), with its own description as the text.
pub fn owm_condition(id: i64, description: &str) -> Condition {
    let slug = match id {
        200..=299 => "thunderstorm",
        300..=399 => "drizzle",
        511 => "freezing_rain",
        500..=504 => "rain",
        520..=531 => "rain_showers",
        620..=622 => "snow_showers",
        600..=699 => "snow",
        701 | 741 => "fog",
        700..=799 => "haze",
        800 => "clear",
        801 => "mostly_clear",
        802 => "partly_cloudy",
        803 | 804 => "overcast",
        _ => "unknown",
    };
    let mut text = description.trim().to_owned();
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    Condition {
        code: slug.into(),
        text,
        provider_code: id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> Observation {
        Observation {
            city: "Melbourne".into(),
            country: "AU".into(),
            latitude: -37.814,
            longitude: 144.96332,
            observed_at: 1_700_000_000,
            temperature_c: 20.0,
            feels_like_c: -40.0,
            humidity_pct: 55.4,
            pressure_hpa: 1013.25,
            wind_speed_ms: 10.0,
            wind_direction_deg: 180.4,
            condition: wmo_condition(2),
            provider: "open-meteo".into(),
        }
    }

    #[test]
    fn imperial_converts_temperatures_and_wind_but_not_pressure() {
        let hit = CacheInfo {
            hit: false,
            stale: false,
            age_seconds: 0,
        };
        let v = render(&obs(), Units::Imperial, hit);
        assert_eq!(v["temperature"], 68.0);
        assert_eq!(v["feels_like"], -40.0);
        assert_eq!(v["wind_speed"], 22.4);
        assert_eq!(v["pressure"], 1013.3);
        assert_eq!(v["units"]["temperature"], "°F");
        let v = render(&obs(), Units::Metric, hit);
        assert_eq!(v["temperature"], 20.0);
        assert_eq!(v["wind_speed"], 10.0);
        assert_eq!(v["humidity"], 55.0);
        assert_eq!(v["observed_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["conditions"]["code"], "partly_cloudy");
    }

    #[test]
    fn owm_conditions_share_the_vocabulary() {
        assert_eq!(owm_condition(501, "moderate rain").code, "rain");
        assert_eq!(owm_condition(501, "moderate rain").text, "Moderate rain");
        assert_eq!(owm_condition(800, "clear sky").code, wmo_condition(0).code);
        assert_eq!(owm_condition(804, "").code, wmo_condition(3).code);
        assert_eq!(owm_condition(999, "?").code, "unknown");
    }
}
