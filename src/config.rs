//! Configuration from the environment, validated before anything touches the disk.
//!
//! Every variable is read and checked here, into one [`Settings`] value, so that a typo in a
//! Swarm service definition ends start-up with one line that names the variable, before the
//! datadir or any config file is written. The credential variables follow the official
//! MariaDB image: each exists as `MYSQL_*` and `MARIADB_*` (the latter wins), and each also
//! as `*_FILE` for Docker secrets (setting a variable and its `_FILE` is an error).
//!
//! The module is pure: the environment and the file system come in as parameters, so the
//! whole table of cases is unit-tested without touching the process environment.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::galera::SstMethod;
use crate::peer::auth::ClusterKey;

/// A value that must never be printed: passwords. `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for SQL that sets it. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the root account gets its password on a fresh datadir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootPassword {
    /// `MYSQL_ROOT_PASSWORD`.
    Given(Secret),
    /// `MYSQL_ALLOW_EMPTY_PASSWORD=yes`: root has an empty password.
    Empty,
    /// `MYSQL_RANDOM_ROOT_PASSWORD=yes`: a random password, written to a 0600 file.
    Random,
}

/// The application account created on a fresh datadir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUser {
    /// `MYSQL_USER`.
    pub name: String,
    /// `MYSQL_PASSWORD`.
    pub password: Secret,
}

/// `SST_METHOD`: one method, or the joiner's choice by the donor's data size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SstSetting {
    /// `auto` (the default): rsync while the donor's data is small (a transfer of a few
    /// seconds, during which rsync blocks the donor's writes), mariabackup above
    /// ([`crate::decision::donor::RSYNC_LIMIT`]) or when the size is unknown.
    Auto,
    /// Always this method.
    Fixed(SstMethod),
}

impl SstSetting {
    /// The method to name where no joiner chooses (a bootstrap, `--wsrep-recover`): the
    /// fixed one, else mariabackup.
    pub fn default_method(self) -> SstMethod {
        match self {
            SstSetting::Fixed(m) => m,
            SstSetting::Auto => SstMethod::Mariabackup,
        }
    }
}

/// Health settings from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// `NON_PRIMARY_GRACE`: how long a node cut off from every peer may stay non-Primary
    /// before the Docker health check says a restart would help.
    pub non_primary_grace: Duration,
    /// `AVAILABLE_WHEN_DONOR`: a Donor counts as able to serve on `/health`.
    pub available_when_donor: bool,
    /// `EVICT_ON_PROOF` (default yes): a member proven dead is evicted at once
    /// ([`crate::evict`]); with `no`, Galera's own timeouts decide alone.
    pub evict_on_proof: bool,
    /// The port Galera listens on for its peers (`gmcast.listen_addr` in
    /// `WSREP_PROVIDER_OPTIONS`, else 4567): probed before an eviction.
    pub galera_port: u16,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            non_primary_grace: DEFAULT_NON_PRIMARY_GRACE,
            available_when_donor: false,
            evict_on_proof: true,
            galera_port: DEFAULT_GALERA_PORT,
        }
    }
}

/// Everything galera-init takes from the environment, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `DB_SERVICE_NAME`: the Swarm service whose tasks are the cluster's nodes.
    pub service_name: String,
    /// `DISCOVERY_NAME`: the DNS name listing every node, default `tasks.<DB_SERVICE_NAME>`.
    pub discovery_name: String,
    /// `CLUSTER_NAME`: `wsrep_cluster_name`, default `DB_SERVICE_NAME`.
    pub cluster_name: String,
    /// `NODE_ADDRESS`: this node's address, when the DNS answer cannot tell it.
    pub node_address: Option<IpAddr>,
    /// How root gets its password on a fresh datadir.
    pub root_password: RootPassword,
    /// `MYSQL_ROOT_HOST`: the host pattern root may log in from over the network. `None`
    /// means root logs in only through the local socket.
    pub root_host: Option<String>,
    /// `MYSQL_DATABASE`: a database created on a fresh datadir.
    pub database: Option<String>,
    /// `MYSQL_USER` and `MYSQL_PASSWORD`: an account with all privileges on the database.
    pub user: Option<AppUser>,
    /// `SST_METHOD`: `auto` (default), `mariabackup` or `rsync`.
    pub sst_method: SstSetting,
    /// `DISCOVERY_TIMEOUT`: how long to wait for DNS to list this node before giving up.
    pub discovery_timeout: Duration,
    /// `FORCE_BOOTSTRAP`: bootstrap from this node's data even when Galera says it is not
    /// safe. A manual override, logged loudly.
    pub force_bootstrap: bool,
    /// `CLUSTER_SIZE`: how many nodes the operator deployed, when given.
    pub cluster_size: Option<usize>,
    /// `SETTLE_WINDOW`: how long the set of nodes in DNS must stay unchanged before a
    /// bootstrap.
    pub settle_window: Duration,
    /// `OUTAGE_TIMEOUT`: after a full outage, how long to wait for every expected node
    /// before a majority is enough.
    pub outage_timeout: Duration,
    /// `HTTP_PORT`: where the node serves its state (and, later, its health).
    pub http_port: u16,
    /// `PC_RECOVERY_TIMEOUT`: how long Galera's pc.recovery may take to restore the saved
    /// Primary component before the node stops mariadbd and elects instead.
    pub pc_recovery_timeout: Duration,
    /// `NON_PRIMARY_GRACE` and `AVAILABLE_WHEN_DONOR`: what the health checks accept.
    pub health: HealthSettings,
    /// `DRAIN_DELAY`: how long after a stop signal the node answers 503 to proxies before
    /// mariadbd gets the signal.
    pub drain_delay: Duration,
    /// `STATE_NOTIFY` (default yes): mariadbd runs `galera-init notify` on every state
    /// change (`wsrep_notify_cmd`), so the verdicts follow it at once ([`crate::notify`]).
    pub state_notify: bool,
    /// `WSREP_PROVIDER_OPTIONS`: Galera options added after galera-init's own
    /// (`gcache.size=1G`, `evs.suspect_timeout=PT2S`…); empty when unset.
    pub provider_options: String,
    /// `CLUSTER_KEY_FILE` (or `CLUSTER_KEY`): the key peers sign their state reports with
    /// ([`crate::peer::auth`]); `None`: reports are not signed.
    pub cluster_key: Option<ClusterKey>,
}

/// A configuration error. Each names the variable and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set: {hint}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable and its `_FILE` twin are both set.
    #[error("both {var} and {var}_FILE are set: set only one of them")]
    Both {
        /// The variable without `_FILE`.
        var: String,
    },
    /// A `_FILE` variable names a file that cannot be read.
    #[error(
        "{var}_FILE names {path}, which cannot be read ({reason}): mount the secret or fix the path"
    )]
    File {
        /// The variable without `_FILE`.
        var: String,
        /// The path it names.
        path: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// A variable has a value that is not allowed.
    #[error("{var} {problem}")]
    Invalid {
        /// The variable.
        var: String,
        /// What is wrong and what to do, in a sentence that follows the variable's name.
        problem: String,
    },
}

/// Reads a variable of the process environment; `None` when it is unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;
/// Reads a secret file named by a `_FILE` variable.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>;

/// Default for `DISCOVERY_TIMEOUT`.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Default for `SETTLE_WINDOW`.
pub const DEFAULT_SETTLE_WINDOW: Duration = Duration::from_secs(5);
/// Default for `PC_RECOVERY_TIMEOUT`.
pub const DEFAULT_PC_RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Default for `NON_PRIMARY_GRACE`: long enough for Swarm to replace the lost tasks and
/// for the node to restore its component with them, before a restart is tried.
pub const DEFAULT_NON_PRIMARY_GRACE: Duration = Duration::from_secs(300);

/// Default for `DRAIN_DELAY`: two health-check intervals of a proxy checking every second.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(2);
/// Default for `OUTAGE_TIMEOUT`.
pub const DEFAULT_OUTAGE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default for `HTTP_PORT`.
pub const DEFAULT_HTTP_PORT: u16 = 9200;

/// The credential variables, each as its names in order of precedence: the `MARIADB_*`
/// names win over the `MYSQL_*` one, as in the official image.
const ROOT_PASSWORD: &[&str] = &["MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"];
const ALLOW_EMPTY: &[&str] = &[
    "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
    "MARIADB_ALLOW_EMPTY_PASSWORD",
    "MYSQL_ALLOW_EMPTY_PASSWORD",
];
const RANDOM_ROOT: &[&str] = &["MARIADB_RANDOM_ROOT_PASSWORD", "MYSQL_RANDOM_ROOT_PASSWORD"];
const ROOT_HOST: &[&str] = &["MARIADB_ROOT_HOST", "MYSQL_ROOT_HOST"];
const DATABASE: &[&str] = &["MARIADB_DATABASE", "MYSQL_DATABASE"];
const USER: &[&str] = &["MARIADB_USER", "MYSQL_USER"];
const PASSWORD: &[&str] = &["MARIADB_PASSWORD", "MYSQL_PASSWORD"];
const CLUSTER_KEY: &[&str] = &["CLUSTER_KEY"];

/// Every variable whose value may be a credential. galera-init removes them, and their
/// `_FILE` twins, from the environment it passes to mariadbd.
pub const CREDENTIAL_VARS: &[&[&str]] = &[
    ROOT_PASSWORD,
    ALLOW_EMPTY,
    RANDOM_ROOT,
    ROOT_HOST,
    DATABASE,
    USER,
    PASSWORD,
    CLUSTER_KEY,
];

impl Settings {
    /// Reads and validates the whole configuration.
    pub fn from_env(env: Lookup, read_file: ReadFile) -> Result<Settings, ConfigError> {
        let plain = |name: &str| env(name).filter(|v| !v.is_empty());
        let (service_name, discovery_name, cluster_name, node_address) = identity(&plain)?;
        let t = tuning(&plain)?;
        let secrets = Secrets { env, read_file };
        let (root_password, root_host) = root_account(&secrets)?;
        let (database, user) = app_account(&secrets)?;
        let cluster_key = cluster_key(&secrets)?;
        Ok(Settings {
            service_name,
            discovery_name,
            cluster_name,
            node_address,
            root_password,
            root_host,
            database,
            user,
            sst_method: t.sst_method,
            discovery_timeout: t.discovery_timeout,
            force_bootstrap: t.force_bootstrap,
            cluster_size: t.cluster_size,
            settle_window: t.settle_window,
            outage_timeout: t.outage_timeout,
            http_port: t.http_port,
            pc_recovery_timeout: t.pc_recovery_timeout,
            health: t.health,
            drain_delay: t.drain_delay,
            state_notify: t.state_notify,
            provider_options: t.provider_options,
            cluster_key,
        })
    }
}

/// A non-empty variable's value.
type Plain<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The service, the DNS name that lists its nodes, the cluster's name and this node's
/// address.
fn identity(plain: Plain) -> Result<(String, String, String, Option<IpAddr>), ConfigError> {
    let service_name = plain("DB_SERVICE_NAME").ok_or(ConfigError::Missing {
        var: "DB_SERVICE_NAME",
        hint: "set it to the Swarm service name (e.g. --env DB_SERVICE_NAME=mysqldbcluster)",
    })?;
    check_dns_name("DB_SERVICE_NAME", &service_name)?;

    let discovery_name = plain("DISCOVERY_NAME").unwrap_or_else(|| format!("tasks.{service_name}"));
    check_dns_name("DISCOVERY_NAME", &discovery_name)?;

    let cluster_name = plain("CLUSTER_NAME").unwrap_or_else(|| service_name.clone());
    if cluster_name.len() > 64
        || !cluster_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(invalid(
            "CLUSTER_NAME",
            "must be 1 to 64 letters, digits, '-', '_' or '.': choose a simpler name",
        ));
    }

    let node_address = match plain("NODE_ADDRESS") {
        None => None,
        Some(v) => Some(v.parse::<IpAddr>().map_err(|_| {
            invalid(
                "NODE_ADDRESS",
                "is not an IP address: set it to this node's IPv4 or IPv6 address, or unset it",
            )
        })?),
    };
    Ok((service_name, discovery_name, cluster_name, node_address))
}

/// The settings that tune the node (methods, timings, ports, flags).
struct Tuning {
    sst_method: SstSetting,
    discovery_timeout: Duration,
    settle_window: Duration,
    outage_timeout: Duration,
    pc_recovery_timeout: Duration,
    drain_delay: Duration,
    state_notify: bool,
    health: HealthSettings,
    provider_options: String,
    cluster_size: Option<usize>,
    http_port: u16,
    force_bootstrap: bool,
}

fn tuning(plain: Plain) -> Result<Tuning, ConfigError> {
    let sst_method = match plain("SST_METHOD").as_deref() {
        None | Some("auto") => SstSetting::Auto,
        Some("mariabackup") => SstSetting::Fixed(SstMethod::Mariabackup),
        Some("rsync") => SstSetting::Fixed(SstMethod::Rsync),
        Some(_) => {
            return Err(invalid(
                "SST_METHOD",
                "must be 'auto', 'mariabackup' or 'rsync'",
            ));
        }
    };

    let seconds = |var: &str, default: Duration, min: u64| match plain(var) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(secs) if secs >= min => Ok(Duration::from_secs(secs)),
            _ => Err(invalid(
                var,
                &format!("must be a whole number of seconds, at least {min}"),
            )),
        },
    };
    let discovery_timeout = seconds("DISCOVERY_TIMEOUT", DEFAULT_DISCOVERY_TIMEOUT, 1)?;
    let settle_window = seconds("SETTLE_WINDOW", DEFAULT_SETTLE_WINDOW, 0)?;
    let outage_timeout = seconds("OUTAGE_TIMEOUT", DEFAULT_OUTAGE_TIMEOUT, 0)?;
    let pc_recovery_timeout = seconds("PC_RECOVERY_TIMEOUT", DEFAULT_PC_RECOVERY_TIMEOUT, 1)?;
    let non_primary_grace = seconds("NON_PRIMARY_GRACE", DEFAULT_NON_PRIMARY_GRACE, 1)?;
    let drain_delay = seconds("DRAIN_DELAY", DEFAULT_DRAIN_DELAY, 0)?;
    let provider_options = plain("WSREP_PROVIDER_OPTIONS").unwrap_or_default();
    if provider_options
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(invalid(
            "WSREP_PROVIDER_OPTIONS",
            "must be Galera options separated by ';' (e.g. gcache.size=1G;evs.suspect_timeout=PT3S), without quotes, backslashes or line breaks",
        ));
    }
    let available_when_donor = match plain("AVAILABLE_WHEN_DONOR") {
        None => false,
        Some(v) => parse_bool("AVAILABLE_WHEN_DONOR", &v)?,
    };
    let state_notify = match plain("STATE_NOTIFY") {
        None => true,
        Some(v) => parse_bool("STATE_NOTIFY", &v)?,
    };
    let evict_on_proof = match plain("EVICT_ON_PROOF") {
        None => true,
        Some(v) => parse_bool("EVICT_ON_PROOF", &v)?,
    };
    let galera_port = galera_port(&provider_options)?;
    let cluster_size = match plain("CLUSTER_SIZE") {
        None => None,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(invalid(
                    "CLUSTER_SIZE",
                    "must be the number of replicas, a whole number of at least 1",
                ));
            }
        },
    };
    let http_port = match plain("HTTP_PORT") {
        None => DEFAULT_HTTP_PORT,
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(invalid("HTTP_PORT", "must be a TCP port number (1-65535)")),
        },
    };

    let force_bootstrap = match plain("FORCE_BOOTSTRAP") {
        None => false,
        Some(v) => parse_bool("FORCE_BOOTSTRAP", &v)?,
    };
    Ok(Tuning {
        sst_method,
        discovery_timeout,
        settle_window,
        outage_timeout,
        pc_recovery_timeout,
        drain_delay,
        state_notify,
        health: HealthSettings {
            non_primary_grace,
            available_when_donor,
            evict_on_proof,
            galera_port,
        },
        provider_options,
        cluster_size,
        http_port,
        force_bootstrap,
    })
}

/// Galera's default port for its peers.
pub const DEFAULT_GALERA_PORT: u16 = 4567;

/// The port of `gmcast.listen_addr` in `WSREP_PROVIDER_OPTIONS` (`tcp://0.0.0.0:4567`),
/// else Galera's default.
fn galera_port(provider_options: &str) -> Result<u16, ConfigError> {
    let Some(value) = provider_options.split(';').find_map(|o| {
        let (k, v) = o.split_once('=')?;
        (k.trim() == "gmcast.listen_addr").then(|| v.trim())
    }) else {
        return Ok(DEFAULT_GALERA_PORT);
    };
    match value.rsplit_once(':').map(|(_, p)| p.parse::<u16>()) {
        Some(Ok(p)) if p > 0 => Ok(p),
        _ => Err(invalid(
            "WSREP_PROVIDER_OPTIONS",
            "gmcast.listen_addr must end with a port (e.g. gmcast.listen_addr=tcp://0.0.0.0:4567)",
        )),
    }
}

/// root's password (or how it is made) and the host pattern it may log in from.
fn root_account(secrets: &Secrets) -> Result<(RootPassword, Option<String>), ConfigError> {
    let root_secret = secrets.get(ROOT_PASSWORD)?;
    let allow_empty = secrets.get_bool(ALLOW_EMPTY)?;
    let random_root = secrets.get_bool(RANDOM_ROOT)?;
    let root_password = match (root_secret, allow_empty, random_root) {
        (Some((_, pw)), false, false) => RootPassword::Given(Secret(pw)),
        (None, true, false) => RootPassword::Empty,
        (None, false, true) => RootPassword::Random,
        (None, false, false) => {
            return Err(ConfigError::Missing {
                var: "MYSQL_ROOT_PASSWORD",
                hint: "set it (or MARIADB_ROOT_PASSWORD, or a _FILE variant), \
                       or set MYSQL_RANDOM_ROOT_PASSWORD=yes or MYSQL_ALLOW_EMPTY_PASSWORD=yes",
            });
        }
        _ => {
            return Err(invalid(
                "MYSQL_ROOT_PASSWORD",
                "conflicts with MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD: \
                 set only one of the three",
            ));
        }
    };

    let root_host = secrets.get(ROOT_HOST)?.map(|(_, v)| v);
    if let Some(host) = &root_host
        && (host.len() > 255 || host.contains(['\'', '\\', '`']))
    {
        return Err(invalid(
            "MYSQL_ROOT_HOST",
            "must be a host name, address or pattern such as '%' or '10.0.%'",
        ));
    }
    Ok((root_password, root_host))
}

/// The database and the account created on a fresh datadir.
fn app_account(secrets: &Secrets) -> Result<(Option<String>, Option<AppUser>), ConfigError> {
    let database = secrets.get(DATABASE)?;
    if let Some((var, db)) = &database
        && (db.chars().count() > 64 || db.ends_with(' ') || db.contains(['/', '\\', '.', '`']))
    {
        return Err(invalid(
            var,
            "must be at most 64 characters, must not end with a space, \
             and must not contain '/', '\\', '.' or '`'",
        ));
    }
    let database = database.map(|(_, v)| v);

    let user = match (secrets.get(USER)?, secrets.get(PASSWORD)?) {
        (None, None) => None,
        (Some((var, _)), None) => {
            return Err(invalid(
                &var,
                "is set but MYSQL_PASSWORD is not: set MYSQL_PASSWORD (or MARIADB_PASSWORD, \
                 or a _FILE variant) too",
            ));
        }
        (None, Some((var, _))) => {
            return Err(invalid(
                &var,
                "is set but MYSQL_USER is not: set MYSQL_USER too, or unset it",
            ));
        }
        (Some((var, name)), Some((_, pw))) => {
            if name == "root" {
                return Err(invalid(
                    &var,
                    "must not be 'root': root is set up from MYSQL_ROOT_PASSWORD; \
                     choose another user name",
                ));
            }
            if name.chars().count() > 80 {
                return Err(invalid(&var, "must be at most 80 characters"));
            }
            Some(AppUser {
                name,
                password: Secret(pw),
            })
        }
    };
    Ok((database, user))
}

/// The cluster key, when one is given.
fn cluster_key(secrets: &Secrets) -> Result<Option<ClusterKey>, ConfigError> {
    Ok(match secrets.get(CLUSTER_KEY)? {
        None => None,
        Some((_, key)) if key.trim().len() < crate::peer::auth::MIN_KEY_LEN => {
            return Err(invalid(
                "CLUSTER_KEY",
                "must be at least 16 characters: make one with `openssl rand -base64 32` \
                 and give every node the same one (CLUSTER_KEY_FILE, a Docker secret)",
            ));
        }
        Some((_, key)) => Some(ClusterKey::new(key.trim().as_bytes())),
    })
}

fn invalid(var: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_string(),
        problem: problem.to_string(),
    }
}

/// A name resolvable by DNS: letters, digits, '-', '_' and '.', not starting with '.' or '-'.
fn check_dns_name(var: &'static str, name: &str) -> Result<(), ConfigError> {
    let ok = name.len() <= 253
        && !name.starts_with(['.', '-'])
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            var,
            "is not a valid DNS name: use letters, digits, '-', '_' and '.' only",
        ))
    }
}

/// Booleans are strict: a typo must not silently mean "yes" (or "no").
fn parse_bool(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(invalid(
            var,
            "must be yes or no (also accepted: 1/0, true/false, on/off)",
        )),
    }
}

/// Reads the credential variables, with their `MARIADB_*`, `MYSQL_*` and `_FILE` forms.
struct Secrets<'a> {
    env: Lookup<'a>,
    read_file: ReadFile<'a>,
}

impl Secrets<'_> {
    /// The value of the first name in `names` that is set (directly or through `_FILE`),
    /// with the name it came from. Empty values count as unset, as in the official image.
    fn get(&self, names: &[&str]) -> Result<Option<(String, String)>, ConfigError> {
        let mut found = None;
        for name in names {
            let value = self.one(name)?;
            if found.is_none() {
                found = value.map(|v| (name.to_string(), v));
            }
        }
        Ok(found)
    }

    fn get_bool(&self, names: &[&str]) -> Result<bool, ConfigError> {
        match self.get(names)? {
            None => Ok(false),
            Some((var, value)) => parse_bool(&var, &value),
        }
    }

    /// One name: the variable, or the content of the file its `_FILE` twin names.
    fn one(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{name}_FILE");
        let direct = (self.env)(name).filter(|v| !v.is_empty());
        let file = (self.env)(&file_var).filter(|v| !v.is_empty());
        match (direct, file) {
            (Some(_), Some(_)) => Err(ConfigError::Both {
                var: name.to_string(),
            }),
            (Some(v), None) => Ok(Some(v)),
            (None, None) => Ok(None),
            (None, Some(path)) => {
                let bytes = (self.read_file)(Path::new(&path)).map_err(|e| ConfigError::File {
                    var: name.to_string(),
                    path: path.clone(),
                    reason: e.kind().to_string(),
                })?;
                let text = String::from_utf8(bytes).map_err(|_| ConfigError::File {
                    var: name.to_string(),
                    path: path.clone(),
                    reason: "not valid UTF-8".to_string(),
                })?;
                if text.contains('\0') {
                    return Err(ConfigError::File {
                        var: name.to_string(),
                        path,
                        reason: "contains a NUL byte".to_string(),
                    });
                }
                // Like `$(< file)` in the official image: trailing newlines are not part of
                // the secret.
                let value = text.trim_end_matches(['\n', '\r']).to_string();
                Ok(Some(value).filter(|v| !v.is_empty()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: HashMap<&str, &[u8]> = HashMap::from([
            ("/run/secrets/root", &b"from-file\n"[..]),
            ("/run/secrets/user", &b"appuser"[..]),
            ("/run/secrets/nul", &b"a\0b"[..]),
            ("/run/secrets/empty", &b"\n"[..]),
            ("/run/secrets/key", &b"0123456789abcdef0123\n"[..]),
        ]);
        let lookup = move |k: &str| env.get(k).cloned();
        let read = move |p: &Path| {
            files
                .get(p.to_str().unwrap())
                .map(|b| b.to_vec())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        Settings::from_env(&lookup, &read)
    }

    const BASE: &[(&str, &str)] = &[
        ("DB_SERVICE_NAME", "mysqldbcluster"),
        ("MYSQL_ROOT_PASSWORD", "rootpass"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = BASE.to_vec();
        for (k, val) in extra {
            v.retain(|(k2, _)| k2 != k);
            v.push((k, val));
        }
        v
    }

    #[test]
    fn seed_example_gives_defaults() {
        let s = settings(&with(&[
            ("MYSQL_DATABASE", "mytestdb"),
            ("MYSQL_USER", "mysqldbuser"),
            ("MYSQL_PASSWORD", "mysqldbpass"),
        ]))
        .unwrap();
        assert_eq!(s.service_name, "mysqldbcluster");
        assert_eq!(s.discovery_name, "tasks.mysqldbcluster");
        assert_eq!(s.cluster_name, "mysqldbcluster");
        assert_eq!(
            s.root_password,
            RootPassword::Given(Secret::new("rootpass"))
        );
        assert_eq!(s.database.as_deref(), Some("mytestdb"));
        let user = s.user.unwrap();
        assert_eq!(user.name, "mysqldbuser");
        assert_eq!(user.password.expose(), "mysqldbpass");
        assert_eq!(s.sst_method, SstSetting::Auto);
        assert_eq!(s.discovery_timeout, DEFAULT_DISCOVERY_TIMEOUT);
        assert_eq!(s.settle_window, DEFAULT_SETTLE_WINDOW);
        assert_eq!(s.outage_timeout, DEFAULT_OUTAGE_TIMEOUT);
        assert_eq!(s.cluster_size, None);
        assert_eq!(s.http_port, 9200);
        assert_eq!(s.root_host, None);
        assert_eq!(s.node_address, None);
        assert!(!s.force_bootstrap);
        assert!(s.health.evict_on_proof);
        assert_eq!(s.health.galera_port, 4567);
        assert!(s.state_notify);
    }

    #[test]
    fn eviction_settings() {
        let s = settings(&with(&[
            ("EVICT_ON_PROOF", "no"),
            ("STATE_NOTIFY", "off"),
            (
                "WSREP_PROVIDER_OPTIONS",
                "gcache.size=1G; gmcast.listen_addr=tcp://0.0.0.0:4800",
            ),
        ]))
        .unwrap();
        assert!(!s.health.evict_on_proof);
        assert_eq!(s.health.galera_port, 4800);
        assert!(!s.state_notify);
    }

    #[test]
    fn overrides() {
        let s = settings(&with(&[
            ("CLUSTER_NAME", "prod_1"),
            ("DISCOVERY_NAME", "galera.default.svc.cluster.local"),
            ("NODE_ADDRESS", "10.0.0.7"),
            ("SST_METHOD", "rsync"),
            ("DISCOVERY_TIMEOUT", "30"),
            ("FORCE_BOOTSTRAP", "yes"),
            ("MYSQL_ROOT_HOST", "10.0.%"),
            ("CLUSTER_SIZE", "3"),
            ("SETTLE_WINDOW", "0"),
            ("OUTAGE_TIMEOUT", "30"),
            ("HTTP_PORT", "8080"),
        ]))
        .unwrap();
        assert_eq!(s.cluster_size, Some(3));
        assert_eq!(s.settle_window, Duration::ZERO);
        assert_eq!(s.outage_timeout, Duration::from_secs(30));
        assert_eq!(s.http_port, 8080);
        assert_eq!(s.cluster_name, "prod_1");
        assert_eq!(s.discovery_name, "galera.default.svc.cluster.local");
        assert_eq!(s.node_address, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(s.sst_method, SstSetting::Fixed(SstMethod::Rsync));
        assert_eq!(s.discovery_timeout, Duration::from_secs(30));
        assert!(s.force_bootstrap);
        assert_eq!(s.root_host.as_deref(), Some("10.0.%"));
    }

    #[test]
    fn mariadb_names_win_over_mysql_names() {
        let s = settings(&with(&[
            ("MARIADB_ROOT_PASSWORD", "maria"),
            ("MYSQL_DATABASE", "a"),
            ("MARIADB_DATABASE", "b"),
            ("MYSQL_USER", "u1"),
            ("MARIADB_USER", "u2"),
            ("MYSQL_PASSWORD", "p1"),
        ]))
        .unwrap();
        assert_eq!(s.root_password, RootPassword::Given(Secret::new("maria")));
        assert_eq!(s.database.as_deref(), Some("b"));
        assert_eq!(s.user.as_ref().unwrap().name, "u2");
        assert_eq!(s.user.unwrap().password.expose(), "p1");
    }

    #[test]
    fn file_variants_are_read_and_trimmed() {
        let s = settings(&[
            ("DB_SERVICE_NAME", "svc"),
            ("MYSQL_ROOT_PASSWORD_FILE", "/run/secrets/root"),
            ("MARIADB_USER_FILE", "/run/secrets/user"),
            ("MYSQL_PASSWORD", "pw"),
        ])
        .unwrap();
        assert_eq!(
            s.root_password,
            RootPassword::Given(Secret::new("from-file"))
        );
        assert_eq!(s.user.unwrap().name, "appuser");
    }

    #[test]
    fn root_password_choices() {
        let empty = settings(&[
            ("DB_SERVICE_NAME", "s"),
            ("MYSQL_ALLOW_EMPTY_PASSWORD", "yes"),
        ]);
        assert_eq!(empty.unwrap().root_password, RootPassword::Empty);
        let official = settings(&[
            ("DB_SERVICE_NAME", "s"),
            ("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1"),
        ]);
        assert_eq!(official.unwrap().root_password, RootPassword::Empty);
        let random = settings(&[
            ("DB_SERVICE_NAME", "s"),
            ("MARIADB_RANDOM_ROOT_PASSWORD", "true"),
        ]);
        assert_eq!(random.unwrap().root_password, RootPassword::Random);
        let no = settings(&[
            ("DB_SERVICE_NAME", "s"),
            ("MYSQL_ROOT_PASSWORD", "x"),
            ("MYSQL_ALLOW_EMPTY_PASSWORD", "no"),
        ]);
        assert_eq!(
            no.unwrap().root_password,
            RootPassword::Given(Secret::new("x"))
        );
    }

    /// Each bad input, with the variable its one-line error must name.
    #[test]
    fn bad_input_names_the_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![("MYSQL_ROOT_PASSWORD", "x")],
                "DB_SERVICE_NAME is not set",
            ),
            (with(&[("DB_SERVICE_NAME", "bad name")]), "DB_SERVICE_NAME"),
            (with(&[("DISCOVERY_NAME", "-x")]), "DISCOVERY_NAME"),
            (with(&[("CLUSTER_NAME", "a'b")]), "CLUSTER_NAME"),
            (with(&[("NODE_ADDRESS", "node1")]), "NODE_ADDRESS"),
            (with(&[("SST_METHOD", "xtrabackup")]), "SST_METHOD"),
            (
                with(&[("WSREP_PROVIDER_OPTIONS", "gcache.size=1G\"; x=\"")]),
                "WSREP_PROVIDER_OPTIONS must be",
            ),
            (with(&[("DISCOVERY_TIMEOUT", "soon")]), "DISCOVERY_TIMEOUT"),
            (with(&[("DISCOVERY_TIMEOUT", "0")]), "DISCOVERY_TIMEOUT"),
            (with(&[("FORCE_BOOTSTRAP", "maybe")]), "FORCE_BOOTSTRAP"),
            (with(&[("CLUSTER_SIZE", "0")]), "CLUSTER_SIZE must be"),
            (with(&[("CLUSTER_SIZE", "three")]), "CLUSTER_SIZE must be"),
            (with(&[("SETTLE_WINDOW", "5s")]), "SETTLE_WINDOW must be"),
            (with(&[("OUTAGE_TIMEOUT", "-1")]), "OUTAGE_TIMEOUT must be"),
            (with(&[("HTTP_PORT", "70000")]), "HTTP_PORT must be"),
            (with(&[("EVICT_ON_PROOF", "sometimes")]), "EVICT_ON_PROOF"),
            (with(&[("STATE_NOTIFY", "often")]), "STATE_NOTIFY"),
            (
                with(&[("WSREP_PROVIDER_OPTIONS", "gmcast.listen_addr=tcp://0.0.0.0")]),
                "gmcast.listen_addr must end with a port",
            ),
            (
                with(&[("PC_RECOVERY_TIMEOUT", "0")]),
                "PC_RECOVERY_TIMEOUT must be",
            ),
            (
                vec![("DB_SERVICE_NAME", "s")],
                "MYSQL_ROOT_PASSWORD is not set",
            ),
            (
                with(&[("MYSQL_ROOT_PASSWORD_FILE", "/run/secrets/root")]),
                "both MYSQL_ROOT_PASSWORD and MYSQL_ROOT_PASSWORD_FILE",
            ),
            (
                with(&[("MARIADB_PASSWORD", "a"), ("MARIADB_PASSWORD_FILE", "/x")]),
                "both MARIADB_PASSWORD and MARIADB_PASSWORD_FILE",
            ),
            (
                vec![
                    ("DB_SERVICE_NAME", "s"),
                    ("MYSQL_ROOT_PASSWORD_FILE", "/nope"),
                ],
                "MYSQL_ROOT_PASSWORD_FILE names /nope",
            ),
            (
                vec![
                    ("DB_SERVICE_NAME", "s"),
                    ("MYSQL_ROOT_PASSWORD_FILE", "/run/secrets/nul"),
                ],
                "MYSQL_ROOT_PASSWORD_FILE names /run/secrets/nul",
            ),
            (
                vec![
                    ("DB_SERVICE_NAME", "s"),
                    ("MYSQL_ROOT_PASSWORD_FILE", "/run/secrets/empty"),
                ],
                "MYSQL_ROOT_PASSWORD is not set",
            ),
            (
                with(&[("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")]),
                "MYSQL_ROOT_PASSWORD conflicts",
            ),
            (
                with(&[("MYSQL_ALLOW_EMPTY_PASSWORD", "sure")]),
                "MYSQL_ALLOW_EMPTY_PASSWORD must be yes or no",
            ),
            (
                with(&[("MYSQL_USER", "u")]),
                "MYSQL_USER is set but MYSQL_PASSWORD",
            ),
            (
                with(&[("MYSQL_PASSWORD", "p")]),
                "MYSQL_PASSWORD is set but MYSQL_USER",
            ),
            (
                with(&[("MYSQL_USER", "root"), ("MYSQL_PASSWORD", "p")]),
                "MYSQL_USER must not be 'root'",
            ),
            (with(&[("MYSQL_DATABASE", "a/b")]), "MYSQL_DATABASE"),
            (with(&[("MYSQL_DATABASE", "a`b")]), "MYSQL_DATABASE"),
            (
                with(&[("CLUSTER_KEY", "short")]),
                "CLUSTER_KEY must be at least 16",
            ),
            (
                with(&[
                    ("CLUSTER_KEY", "0123456789abcdef"),
                    ("CLUSTER_KEY_FILE", "/x"),
                ]),
                "both CLUSTER_KEY and CLUSTER_KEY_FILE",
            ),
            (
                with(&[("CLUSTER_KEY_FILE", "/run/secrets/none")]),
                "CLUSTER_KEY_FILE names /run/secrets/none",
            ),
            (with(&[("MYSQL_ROOT_HOST", "x'y")]), "MYSQL_ROOT_HOST"),
        ];
        for (vars, want) in cases {
            let err = settings(&vars).expect_err(want).to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn the_cluster_key_comes_from_its_file() {
        assert_eq!(settings(BASE).unwrap().cluster_key, None);
        let s = settings(&with(&[("CLUSTER_KEY_FILE", "/run/secrets/key")])).unwrap();
        assert_eq!(
            s.cluster_key,
            Some(ClusterKey::new(b"0123456789abcdef0123"))
        );
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = settings(&with(&[("MYSQL_USER", "u"), ("MYSQL_PASSWORD", "hunter2")])).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("rootpass"), "{debug}");
    }

    #[test]
    fn unicode_values_are_kept() {
        let s = settings(&with(&[
            ("MYSQL_ROOT_PASSWORD", "pä'ss\\wörd\"😀"),
            ("MYSQL_DATABASE", "dátabase-ü"),
        ]))
        .unwrap();
        assert_eq!(
            s.root_password,
            RootPassword::Given(Secret::new("pä'ss\\wörd\"😀"))
        );
        assert_eq!(s.database.as_deref(), Some("dátabase-ü"));
    }

    proptest::proptest! {
        /// Any value for any variable: the configuration is read or refused with one line,
        /// and never panics.
        #[test]
        fn any_environment_is_read_or_refused_in_one_line(
            values in proptest::collection::vec(
                (0..ALL_VARS.len(), r"[ -~äü😀\t]{0,24}"),
                0..8,
            )
        ) {
            let mut vars: Vec<(&str, &str)> = BASE.to_vec();
            for (i, v) in &values {
                vars.retain(|(k, _)| *k != ALL_VARS[*i]);
                vars.push((ALL_VARS[*i], v.as_str()));
            }
            if let Err(e) = settings(&vars) {
                proptest::prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }

    /// Every variable galera-init reads.
    const ALL_VARS: &[&str] = &[
        "DB_SERVICE_NAME",
        "DISCOVERY_NAME",
        "CLUSTER_NAME",
        "NODE_ADDRESS",
        "MYSQL_ROOT_PASSWORD",
        "MYSQL_ALLOW_EMPTY_PASSWORD",
        "MYSQL_RANDOM_ROOT_PASSWORD",
        "MYSQL_ROOT_HOST",
        "MYSQL_DATABASE",
        "MYSQL_USER",
        "MYSQL_PASSWORD",
        "MARIADB_ROOT_PASSWORD",
        "MYSQL_PASSWORD_FILE",
        "SST_METHOD",
        "DISCOVERY_TIMEOUT",
        "FORCE_BOOTSTRAP",
        "CLUSTER_SIZE",
        "SETTLE_WINDOW",
        "OUTAGE_TIMEOUT",
        "HTTP_PORT",
        "PC_RECOVERY_TIMEOUT",
        "NON_PRIMARY_GRACE",
        "AVAILABLE_WHEN_DONOR",
        "EVICT_ON_PROOF",
        "STATE_NOTIFY",
        "DRAIN_DELAY",
        "WSREP_PROVIDER_OPTIONS",
        "CLUSTER_KEY",
        "CLUSTER_KEY_FILE",
    ];
}
