//! The function's settings, from its environment (the template sets them from parameters).
//! A bad value stops the function at init with the variable's name and what was expected.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::retry::RetryPolicy;

/// A credential: shown as `REDACTED` by `Debug`, so it cannot reach a log by accident.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

#[derive(Debug, Clone)]
pub enum ProviderConfig {
    OpenMeteo { geocoding: Url, forecast: Url },
    OpenWeatherMap { base: Url, key: Secret },
}

impl ProviderConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ProviderConfig::OpenMeteo { .. } => crate::provider::open_meteo::NAME,
            ProviderConfig::OpenWeatherMap { .. } => crate::provider::owm::NAME,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub provider: ProviderConfig,
    pub redis_url: Option<Secret>,
    pub cache_ttl: Duration,
    pub stale_ttl: Duration,
    pub retry: RetryPolicy,
    pub breaker_threshold: u32,
    pub breaker_open: Duration,
    pub metrics_namespace: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {expected}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl Config {
    /// Reads the settings through `var` (the process environment in production).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let url = |name: &'static str, default: &str| -> Result<Url, ConfigError> {
            let value = get(name).unwrap_or_else(|| default.to_owned());
            match Url::parse(value.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
                _ => Err(ConfigError {
                    name,
                    value,
                    expected: "an http:// or https:// URL",
                }),
            }
        };
        let number = |name: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError {
                        name,
                        value: v,
                        expected: if min > 0 {
                            "a whole number greater than zero"
                        } else {
                            "a whole number"
                        },
                    }),
                },
            }
        };
        let provider = match get("OPENWEATHERMAP_API_KEY") {
            Some(key) => ProviderConfig::OpenWeatherMap {
                base: url("OPENWEATHERMAP_URL", "https://api.openweathermap.org")?,
                key: Secret(key.trim().to_owned()),
            },
            None => ProviderConfig::OpenMeteo {
                geocoding: url(
                    "OPEN_METEO_GEOCODING_URL",
                    "https://geocoding-api.open-meteo.com",
                )?,
                forecast: url("OPEN_METEO_FORECAST_URL", "https://api.open-meteo.com")?,
            },
        };
        let ms = Duration::from_millis;
        Ok(Config {
            provider,
            redis_url: get("REDIS_URL").map(|u| Secret(u.trim().to_owned())),
            cache_ttl: Duration::from_secs(number("CACHE_TTL_SECONDS", 600, 1)?),
            stale_ttl: Duration::from_secs(number("STALE_TTL_SECONDS", 86_400, 1)?),
            retry: RetryPolicy {
                max_attempts: number("UPSTREAM_MAX_ATTEMPTS", 3, 1)? as u32,
                base: ms(number("UPSTREAM_RETRY_BASE_MS", 200, 1)?),
                max_delay: ms(number("UPSTREAM_RETRY_MAX_MS", 2_000, 1)?),
                attempt_timeout: ms(number("UPSTREAM_TIMEOUT_MS", 2_000, 1)?),
            },
            breaker_threshold: number("BREAKER_FAILURE_THRESHOLD", 5, 1)? as u32,
            breaker_open: Duration::from_secs(number("BREAKER_OPEN_SECONDS", 30, 1)?),
            metrics_namespace: get("METRICS_NAMESPACE").unwrap_or_else(|| "WeatherApi".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn open_meteo_by_default_and_openweathermap_when_its_key_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.provider.name(), "open-meteo");
        assert_eq!(c.cache_ttl, Duration::from_secs(600));
        let c = config(&[("OPENWEATHERMAP_API_KEY", "k3y")]).unwrap();
        assert_eq!(c.provider.name(), "openweathermap");
        let shown = format!("{c:?}");
        assert!(!shown.contains("k3y"), "{shown}");
        // An empty parameter (the template's default) means not configured.
        let c = config(&[("OPENWEATHERMAP_API_KEY", ""), ("REDIS_URL", " ")]).unwrap();
        assert_eq!(c.provider.name(), "open-meteo");
        assert!(c.redis_url.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = config(&[("UPSTREAM_TIMEOUT_MS", "soon")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "UPSTREAM_TIMEOUT_MS=\"soon\": a whole number greater than zero"
        );
        let e = config(&[("OPEN_METEO_FORECAST_URL", "ftp://x")]).unwrap_err();
        assert_eq!(e.name, "OPEN_METEO_FORECAST_URL");
    }
}
