//! OpenWeatherMap: the Geocoding API (`/geo/1.0/direct`) and Current Weather Data
//! (`/data/2.5/weather`), both keyed with `appid`.

use reqwest::Url;
use serde::Deserialize;

use super::open_meteo::{check_coordinates, check_plausible};
use super::{endpoint, Invalid};
use crate::model::{owm_condition, Observation, Place};

pub const NAME: &str = "openweathermap";

pub fn geocode_url(base: &Url, city: &str, country: Option<&str>, key: &str) -> Url {
    let mut url = endpoint(base, "geo/1.0/direct");
    let q = match country {
        Some(c) => format!("{city},{c}"),
        None => city.to_owned(),
    };
    url.query_pairs_mut()
        .append_pair("q", &q)
        .append_pair("limit", "1")
        .append_pair("appid", key);
    url
}

pub fn weather_url(base: &Url, place: &Place, key: &str) -> Url {
    let mut url = endpoint(base, "data/2.5/weather");
    url.query_pairs_mut()
        .append_pair("lat", &place.latitude.to_string())
        .append_pair("lon", &place.longitude.to_string())
        .append_pair("units", "metric")
        .append_pair("appid", key);
    url
}

#[derive(Deserialize)]
struct Location {
    name: String,
    lat: f64,
    lon: f64,
    country: Option<String>,
}

/// The best match, or `None` when the provider knows no such place (an empty array).
pub fn parse_geocode(body: &[u8]) -> Result<Option<Place>, Invalid> {
    let found: Vec<Location> = serde_json::from_slice(body).map_err(Invalid::json)?;
    let Some(l) = found.into_iter().next() else {
        return Ok(None);
    };
    check_coordinates(l.lat, l.lon)?;
    Ok(Some(Place {
        name: l.name,
        country: l.country.unwrap_or_default().to_uppercase(),
        latitude: l.lat,
        longitude: l.lon,
    }))
}

#[derive(Deserialize)]
struct Current {
    weather: Vec<Weather>,
    main: Main,
    wind: Wind,
    dt: i64,
}

#[derive(Deserialize)]
struct Weather {
    id: i64,
    description: String,
}

#[derive(Deserialize)]
struct Main {
    temp: f64,
    feels_like: f64,
    pressure: f64,
    humidity: f64,
}

#[derive(Deserialize)]
struct Wind {
    speed: f64,
    #[serde(default)]
    deg: f64,
}

/// Current weather asked with `units=metric` (°C, m/s, hPa).
pub fn parse_current(body: &[u8], place: &Place) -> Result<Observation, Invalid> {
    let c: Current = serde_json::from_slice(body).map_err(Invalid::json)?;
    let w = c
        .weather
        .first()
        .ok_or_else(|| Invalid("`weather` is empty".into()))?;
    check_plausible(c.main.temp, c.main.humidity, c.main.pressure)?;
    Ok(Observation {
        city: place.name.clone(),
        country: place.country.clone(),
        latitude: place.latitude,
        longitude: place.longitude,
        observed_at: c.dt,
        temperature_c: c.main.temp,
        feels_like_c: c.main.feels_like,
        humidity_pct: c.main.humidity,
        pressure_hpa: c.main.pressure,
        wind_speed_ms: c.wind.speed,
        wind_direction_deg: c.wind.deg,
        condition: owm_condition(w.id, &w.description),
        provider: NAME.into(),
    })
}
