//! Open-Meteo: the geocoding API (`/v1/search`) and the forecast API's current conditions
//! (`/v1/forecast?current=...`). No key.

use reqwest::Url;
use serde::Deserialize;

use super::{endpoint, Invalid};
use crate::model::{wmo_condition, Observation, Place};

pub const NAME: &str = "open-meteo";

/// The variables asked of `/v1/forecast`; metric, with times as Unix seconds (UTC).
const CURRENT: &str = "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,pressure_msl,wind_speed_10m,wind_direction_10m";

pub fn geocode_url(base: &Url, city: &str, country: Option<&str>) -> Url {
    let mut url = endpoint(base, "v1/search");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("name", city)
            .append_pair("count", "1")
            .append_pair("language", "en")
            .append_pair("format", "json");
        if let Some(c) = country {
            q.append_pair("countryCode", c);
        }
    }
    url
}

pub fn forecast_url(base: &Url, place: &Place) -> Url {
    let mut url = endpoint(base, "v1/forecast");
    url.query_pairs_mut()
        .append_pair("latitude", &place.latitude.to_string())
        .append_pair("longitude", &place.longitude.to_string())
        .append_pair("current", CURRENT)
        .append_pair("wind_speed_unit", "ms")
        .append_pair("timeformat", "unixtime")
        .append_pair("timezone", "GMT");
    url
}

#[derive(Deserialize)]
struct Search {
    // Absent, not empty, when nothing matches.
    #[serde(default)]
    results: Vec<SearchResult>,
}

#[derive(Deserialize)]
struct SearchResult {
    name: String,
    latitude: f64,
    longitude: f64,
    country_code: Option<String>,
}

/// The best match, or `None` when the provider knows no such place.
pub fn parse_geocode(body: &[u8]) -> Result<Option<Place>, Invalid> {
    let search: Search = serde_json::from_slice(body).map_err(Invalid::json)?;
    let Some(r) = search.results.into_iter().next() else {
        return Ok(None);
    };
    check_coordinates(r.latitude, r.longitude)?;
    Ok(Some(Place {
        name: r.name,
        country: r.country_code.unwrap_or_default().to_uppercase(),
        latitude: r.latitude,
        longitude: r.longitude,
    }))
}

#[derive(Deserialize)]
struct Forecast {
    current: Current,
}

#[derive(Deserialize)]
struct Current {
    time: i64,
    temperature_2m: f64,
    relative_humidity_2m: f64,
    apparent_temperature: f64,
    weather_code: i64,
    pressure_msl: f64,
    wind_speed_10m: f64,
    wind_direction_10m: f64,
}

pub fn parse_current(body: &[u8], place: &Place) -> Result<Observation, Invalid> {
    let f: Forecast = serde_json::from_slice(body).map_err(Invalid::json)?;
    let c = f.current;
    check_plausible(c.temperature_2m, c.relative_humidity_2m, c.pressure_msl)?;
    Ok(Observation {
        city: place.name.clone(),
        country: place.country.clone(),
        latitude: place.latitude,
        longitude: place.longitude,
        observed_at: c.time,
        temperature_c: c.temperature_2m,
        feels_like_c: c.apparent_temperature,
        humidity_pct: c.relative_humidity_2m,
        pressure_hpa: c.pressure_msl,
        wind_speed_ms: c.wind_speed_10m,
        wind_direction_deg: c.wind_direction_10m,
        condition: wmo_condition(c.weather_code),
        provider: NAME.into(),
    })
}

pub(crate) fn check_coordinates(lat: f64, lon: f64) -> Result<(), Invalid> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Invalid(format!("coordinates out of range ({lat}, {lon})")));
    }
    Ok(())
}

/// Values no weather on Earth has mean the provider sent garbage, not weather.
pub(crate) fn check_plausible(temp_c: f64, humidity: f64, pressure: f64) -> Result<(), Invalid> {
    if !(-100.0..=70.0).contains(&temp_c)
        || !(0.0..=100.0).contains(&humidity)
        || !(300.0..=1200.0).contains(&pressure)
    {
        return Err(Invalid(format!(
            "implausible values (temperature {temp_c} °C, humidity {humidity} %, pressure {pressure} hPa)"
        )));
    }
    Ok(())
}
