//! `--config FILE` (TOML): every `monitor` option can be set there, under
//! the long option's name with `_` for `-`. The command line wins. Without
//! `--config`, `/etc/iotwatch/config.toml` is read if it exists.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/iotwatch/config.toml";

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub interface: Option<Vec<String>>,
    pub filter: Option<String>,
    pub snaplen: Option<i32>,
    pub buffer_size: Option<i32>,
    pub promisc: Option<bool>,
    pub immediate: Option<bool>,
    pub events: Option<String>,
    pub syslog: Option<bool>,
    pub db: Option<PathBuf>,
    pub control: Option<PathBuf>,
    pub control_group: Option<String>,
    pub metrics: Option<String>,
    pub write: Option<String>,
    pub file_size: Option<u64>,
    pub file_count: Option<usize>,
    pub home_net: Option<Vec<String>>,
    pub signatures: Option<PathBuf>,
    pub warn_days: Option<i64>,
}

/// The file given, or the default one if it exists, or nothing.
pub fn load(explicit: Option<&Path>) -> Result<FileConfig> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok(FileConfig::default()),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_option_and_refuses_unknown_ones() {
        let c: FileConfig = toml::from_str(
            r#"
            interface = ["br-lan", "wan"]
            filter = "not port 22"
            promisc = false
            db = "/tmp/x.db"
            metrics = "127.0.0.1:9469"
            home_net = ["192.168.8.0/24"]
            warn_days = 30
            "#,
        )
        .unwrap();
        assert_eq!(c.interface.unwrap(), ["br-lan", "wan"]);
        assert_eq!(c.promisc, Some(false));
        assert_eq!(c.warn_days, Some(30));
        let e = toml::from_str::<FileConfig>("interfaces = [\"eth0\"]").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
