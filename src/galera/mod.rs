//! Galera's files: the config galera-init writes on every start, and the state Galera
//! leaves in the datadir (`grastate.dat`, and the position `--wsrep-recover` prints).
//!
//! Rendering and parsing are pure functions; the caller does the I/O.

pub mod grastate;
pub mod gvwstate;

use std::net::IpAddr;

/// The State Snapshot Transfer method a joiner asks its donor for (`wsrep_sst_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SstMethod {
    /// mariabackup: the donor stays usable during the transfer (the default).
    Mariabackup,
    /// rsync: faster on small datasets, but the donor is blocked for writes meanwhile.
    Rsync,
}

impl SstMethod {
    /// The value of `wsrep_sst_method`.
    pub fn as_str(self) -> &'static str {
        match self {
            SstMethod::Mariabackup => "mariabackup",
            SstMethod::Rsync => "rsync",
        }
    }
}

/// The Galera provider library shipped by Debian's galera-4 package.
pub const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// Where galera-init writes its settings. Debian's my.cnf reads `conf.d/` first and
/// `mariadb.conf.d/` last, so this file wins over the distribution's `50-server.cnf`
/// (`bind-address = 127.0.0.1`), while a user's files in `conf.d/` still tune everything
/// this file does not set.
pub const CONFIG_PATH: &str = "/etc/mysql/mariadb.conf.d/99-galera-init.cnf";

/// What the rendered config says about this node and its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `wsrep_cluster_name`.
    pub cluster_name: String,
    /// Every known node, this one included: the `gcomm://` list. Never empty, so a restart
    /// without `--wsrep-new-cluster` can never bootstrap a second cluster by accident.
    pub members: Vec<IpAddr>,
    /// `wsrep_node_address`.
    pub node_address: IpAddr,
    /// `wsrep_node_name`.
    pub node_name: String,
    /// `wsrep_sst_method`.
    pub sst_method: SstMethod,
    /// `wsrep_sst_donor`: preferred donors by node name, the writer last. Empty: Galera
    /// chooses.
    pub donors: Vec<String>,
    /// The operator's Galera options (`WSREP_PROVIDER_OPTIONS`), after galera-init's own:
    /// Galera takes the last value of an option given twice.
    pub provider_options: String,
    /// Folders in the datadir that are not databases (`ignore_db_dirs`).
    pub hidden_dirs: Vec<String>,
    /// `wsrep_notify_cmd`: the command mariadbd runs on every state change (galera-init's
    /// own `notify`, see [`crate::notify`]).
    pub notify_cmd: Option<String>,
}

/// Formats an address the way Galera wants it in a URL: IPv6 in brackets.
pub fn galera_host(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The `gcomm://` cluster address for a member list.
pub fn cluster_address(members: &[IpAddr]) -> String {
    let hosts: Vec<String> = members.iter().map(|a| galera_host(*a)).collect();
    format!("gcomm://{}", hosts.join(","))
}

/// The files mariabackup's SST script keeps when it clears a joiner's datadir (its
/// default `cpat`), and galera-init's record. (rsync's SST copies only directories and
/// InnoDB files, so it leaves the record alone anyway.)
pub fn sst_keep_pattern() -> String {
    format!(
        "{}\\|.*/{}$",
        r".*\.pem$\|.*galera\.cache$\|.*sst_in_progress$\|.*\.sst$\|.*gvwstate\.dat$\|.*grastate\.dat$\|.*\.err$\|.*\.log$\|.*RPM_UPGRADE_MARKER$\|.*RPM_UPGRADE_HISTORY$",
        crate::record::RECORD_FILE.replace('.', r"\.")
    )
}

/// The settings mariadbd checks at start-up whenever wsrep is on, and refuses to start
/// without (it aborts on `binlog_format` other than ROW, on an rsync SST method without a
/// cluster address…).
const REQUIRED: [(&str, &str); 3] = [
    ("binlog_format", "ROW"),
    ("default_storage_engine", "InnoDB"),
    ("innodb_autoinc_lock_mode", "2"),
];

/// The options of `mariadbd --wsrep-recover`, complete on the command line. The recovery
/// runs before the election, so before this start's config file is written, and a new
/// container's `/etc/mysql` is the image's: the file of an earlier start is not there.
/// Without these, mariadbd aborts before recovering anything. (The recovery exits right
/// after reading InnoDB's position: the empty `gcomm://` never connects.)
pub fn recovery_options(sst_method: SstMethod) -> Vec<String> {
    let mut opts = vec![
        "--wsrep-recover".to_string(),
        "--wsrep-on=ON".to_string(),
        format!("--wsrep-provider={PROVIDER}"),
        "--wsrep-cluster-address=gcomm://".to_string(),
        format!("--wsrep-sst-method={}", sst_method.as_str()),
        "--skip-networking".to_string(),
    ];
    opts.extend(
        REQUIRED
            .iter()
            .map(|(k, v)| format!("--{}={v}", k.replace('_', "-"))),
    );
    opts
}

/// Renders the config file. Holds no credentials, so it is written 0644.
pub fn render(cfg: &NodeConfig) -> String {
    let bind = match cfg.node_address {
        IpAddr::V4(_) => "0.0.0.0",
        IpAddr::V6(_) => "::",
    };
    format!(
        "# Written by galera-init on every start: edits here are lost.\n\
         # Put your own settings in /etc/mysql/conf.d/; they apply to everything not set here.\n\
         [mysqld]\n\
         bind-address = {bind}\n\
         {required}\
         wsrep_on = ON\n\
         wsrep_provider = {PROVIDER}\n\
         wsrep_provider_options = \"pc.recovery=TRUE;gcache.recover=yes{extra}\"\n\
         wsrep_cluster_name = {cluster}\n\
         wsrep_cluster_address = {address}\n\
         wsrep_node_address = {node}\n\
         wsrep_node_name = {name}\n\
         wsrep_sst_method = {sst}\n{donor}\
         {notify}\
         {hidden}\
         \n\
         [sst]\n\
         # A state transfer clears the datadir but for these files: galera-init's record\n\
         # (the volume id the other nodes know this node by) is kept too.\n\
         cpat = '{cpat}'\n",
        cpat = sst_keep_pattern(),
        hidden = if cfg.hidden_dirs.is_empty() {
            String::new()
        } else {
            format!(
                "# Folders galera-init keeps in the datadir: not databases.\nignore_db_dirs = {}\n",
                cfg.hidden_dirs.join(",")
            )
        },
        notify = match &cfg.notify_cmd {
            Some(cmd) => format!("wsrep_notify_cmd = {cmd}\n"),
            None => String::new(),
        },
        required = REQUIRED
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect::<String>(),
        donor = if cfg.donors.is_empty() {
            String::new()
        } else {
            // A trailing comma lets Galera fall back to any other node.
            format!("wsrep_sst_donor = {},\n", cfg.donors.join(","))
        },
        extra = match cfg.provider_options.trim().trim_matches(';') {
            "" => String::new(),
            o => format!(";{o}"),
        },
        cluster = cfg.cluster_name,
        address = cluster_address(&cfg.members),
        node = galera_host(cfg.node_address),
        name = cfg.node_name,
        sst = cfg.sst_method.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NodeConfig {
        NodeConfig {
            cluster_name: "mysqldbcluster".into(),
            members: vec!["10.0.1.3".parse().unwrap(), "10.0.1.2".parse().unwrap()],
            node_address: "10.0.1.2".parse().unwrap(),
            node_name: "a1b2c3".into(),
            sst_method: SstMethod::Mariabackup,
            donors: Vec::new(),
            provider_options: String::new(),
            hidden_dirs: vec![".mark".into()],
            notify_cmd: None,
        }
    }

    fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
            .map(str::trim)
    }

    #[test]
    fn the_recovery_needs_no_config_file() {
        let opts = recovery_options(SstMethod::Rsync);
        for want in [
            "--wsrep-recover",
            "--wsrep-on=ON",
            "--binlog-format=ROW",
            "--default-storage-engine=InnoDB",
            "--innodb-autoinc-lock-mode=2",
            "--wsrep-sst-method=rsync",
            "--skip-networking",
        ] {
            assert!(opts.iter().any(|o| o == want), "{want} in {opts:?}");
        }
        assert!(
            opts.iter()
                .any(|o| o.starts_with("--wsrep-cluster-address=gcomm://")),
            "rsync's check wants a cluster address: {opts:?}"
        );
        // Every setting the config file requires is on the recovery's command line too.
        let text = render(&cfg());
        for (k, v) in REQUIRED {
            assert_eq!(value(&text, k), Some(v), "{k} in the config");
        }
    }

    #[test]
    fn renders_every_required_setting() {
        let text = render(&cfg());
        let want = [
            ("bind-address", "0.0.0.0"),
            ("binlog_format", "ROW"),
            ("default_storage_engine", "InnoDB"),
            ("innodb_autoinc_lock_mode", "2"),
            ("wsrep_on", "ON"),
            ("wsrep_provider", PROVIDER),
            ("wsrep_cluster_name", "mysqldbcluster"),
            ("wsrep_cluster_address", "gcomm://10.0.1.3,10.0.1.2"),
            ("wsrep_node_address", "10.0.1.2"),
            ("wsrep_node_name", "a1b2c3"),
            ("wsrep_sst_method", "mariabackup"),
            ("ignore_db_dirs", ".mark"),
        ];
        for (key, val) in want {
            assert_eq!(value(&text, key), Some(val), "{key} in\n{text}");
        }
        assert!(text.starts_with('#'));
        assert_eq!(
            value(&text, "wsrep_sst_donor"),
            None,
            "no donors: Galera chooses"
        );
        assert_eq!(text.matches("[mysqld]").count(), 1);
        assert_eq!(value(&text, "wsrep_notify_cmd"), None);
        let notified = render(&NodeConfig {
            notify_cmd: Some("/usr/local/bin/galera-init notify".into()),
            ..cfg()
        });
        let mysqld = notified.split("[sst]").next().unwrap();
        assert_eq!(
            value(mysqld, "wsrep_notify_cmd"),
            Some("/usr/local/bin/galera-init notify")
        );
    }

    #[test]
    fn sst_keeps_the_record() {
        let text = render(&cfg());
        let sst = text.split("[sst]").nth(1).expect("an [sst] group");
        let cpat = value(sst, "cpat").unwrap().trim_matches('\'');
        assert!(cpat.starts_with(r".*\.pem$\|.*galera\.cache$"), "{cpat}");
        assert!(cpat.ends_with(r"\|.*/galera-init\.json$"), "{cpat}");
        assert_eq!(text.matches("[mysqld]").count(), 1);
    }

    #[test]
    fn ipv6_is_bracketed_and_binds_all_families() {
        let mut c = cfg();
        c.node_address = "fd00::2".parse().unwrap();
        c.members = vec!["fd00::2".parse().unwrap(), "fd00::3".parse().unwrap()];
        c.sst_method = SstMethod::Rsync;
        let text = render(&c);
        assert_eq!(value(&text, "bind-address"), Some("::"));
        assert_eq!(
            value(&text, "wsrep_cluster_address"),
            Some("gcomm://[fd00::2],[fd00::3]")
        );
        assert_eq!(value(&text, "wsrep_node_address"), Some("[fd00::2]"));
        assert_eq!(value(&text, "wsrep_sst_method"), Some("rsync"));
    }

    #[test]
    fn the_operators_provider_options_come_after_ours() {
        assert_eq!(
            value(&render(&cfg()), "wsrep_provider_options"),
            Some("\"pc.recovery=TRUE;gcache.recover=yes\"")
        );
        let mut c = cfg();
        c.provider_options = "gcache.size=1G;evs.suspect_timeout=PT2S;".into();
        assert_eq!(
            value(&render(&c), "wsrep_provider_options"),
            Some("\"pc.recovery=TRUE;gcache.recover=yes;gcache.size=1G;evs.suspect_timeout=PT2S\"")
        );
    }

    #[test]
    fn donors_are_listed_in_order_with_a_fallback() {
        let mut c = cfg();
        c.donors = vec!["node3".into(), "node1".into()];
        assert_eq!(value(&render(&c), "wsrep_sst_donor"), Some("node3,node1,"));
    }
}
