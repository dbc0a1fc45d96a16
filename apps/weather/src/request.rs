//! What a client asked for, validated: the city (from the query or the path), an optional
//! country and the units. Every rejection names the parameter and why.

use crate::error::ApiError;
use crate::model::Units;

pub const MAX_CITY_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct WeatherQuery {
    /// Trimmed, as the client spelled it.
    pub city: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub units: Units,
}

impl WeatherQuery {
    /// The cache and single-flight key: the same place whatever the spelling's case or the
    /// units asked for (the cache holds metric values and converts on the way out).
    pub fn key(&self) -> String {
        format!(
            "{}|{}",
            self.city.to_lowercase(),
            self.country.as_deref().unwrap_or("")
        )
    }
}

pub fn validate(
    city: Option<&str>,
    country: Option<&str>,
    units: Option<&str>,
) -> Result<WeatherQuery, ApiError> {
    let city = city.map(str::trim).unwrap_or("");
    if city.is_empty() {
        return Err(ApiError::invalid(
            "invalid_city",
            "the city is required: /weather?city=NAME or /weather/NAME",
        ));
    }
    if city.chars().count() > MAX_CITY_CHARS {
        return Err(ApiError::invalid(
            "invalid_city",
            format!("the city is longer than {MAX_CITY_CHARS} characters"),
        ));
    }
    if city.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_city",
            "the city contains control characters",
        ));
    }
    let country = match country.map(str::trim) {
        None | Some("") => None,
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_country",
                "country must be an ISO 3166-1 alpha-2 code such as AU or GB",
            ))
        }
    };
    let units = match units {
        None | Some("") => Units::Metric,
        Some(u) => Units::parse(u).ok_or_else(|| {
            ApiError::invalid("invalid_units", "units must be metric or imperial")
        })?,
    };
    Ok(WeatherQuery {
        city: city.to_owned(),
        country,
        units,
    })
}
