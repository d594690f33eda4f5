//! The command line: what to run, decided before anything else happens.
//!
//! Like the official image's `CMD`, arguments that start with `-` (or a leading `mariadbd` /
//! `mysqld`) are options for mariadbd, and any other command runs as is, supervised but
//! without cluster logic (`docker run IMAGE bash`).

use std::ffi::OsString;

/// What galera-init was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Run a Galera node; the arguments go to mariadbd.
    Node {
        /// Extra mariadbd options.
        mariadbd_args: Vec<OsString>,
    },
    /// `galera-init bootstrap`: an operator's override, run in a node's container
    /// (`docker exec TASK galera-init bootstrap`): the most advanced node present restarts
    /// the cluster without waiting for the missing ones.
    Bootstrap,
    /// `galera-init healthcheck [--ready] [--donor-ok]`: the Docker HEALTHCHECK, asked of
    /// the local node.
    Healthcheck(crate::commands::healthcheck::Check),
    /// `galera-init status [--json] [ADDRESS|NAME...]`: every node of the cluster.
    Status {
        /// Print JSON instead of the table.
        json: bool,
        /// Addresses or DNS names to ask (default: the node's discovery name).
        targets: Vec<String>,
    },
    /// Run another command under galera-init's PID-1 supervision.
    Exec {
        /// The command and its arguments.
        argv: Vec<OsString>,
    },
}

fn command() -> clap::Command {
    clap::Command::new("galera-init")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "PID-1 entrypoint of a MariaDB Galera image: discovers its peers through \
             tasks.$DB_SERVICE_NAME, bootstraps or joins, and supervises mariadbd.",
        )
        .override_usage(
            "galera-init [MARIADBD-OPTIONS...]\n       galera-init mariadbd [MARIADBD-OPTIONS...]\n       galera-init bootstrap\n       galera-init healthcheck [--ready [--donor-ok]]\n       galera-init status [--json] [ADDRESS|NAME...]\n       galera-init COMMAND [ARGS...]",
        )
        .after_help(
            "`galera-init bootstrap`, run in a node (docker exec), is the operator's override when \
             the cluster waits for nodes that are gone: the most advanced node present restarts it.\n\
             Configuration comes from the environment (DB_SERVICE_NAME, MYSQL_ROOT_PASSWORD, …); \
             see the README.\nGive the container a stop grace period long enough for InnoDB and \
             Galera to shut down (docker service create --stop-grace-period 2m): galera-init never \
             kills mariadbd on its own.",
        )
        .arg(
            clap::Arg::new("args")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_parser(clap::value_parser!(OsString))
                .value_name("ARGS"),
        )
}

fn healthcheck_command() -> clap::Command {
    clap::Command::new("galera-init healthcheck")
        .about(
            "The Docker HEALTHCHECK: asks the local galera-init (its state port on loopback, no \
             credentials). Exit 0 while the node makes progress or waits on purpose, 1 only \
             when a restart would help.",
        )
        .arg(
            clap::Arg::new("ready")
                .long("ready")
                .action(clap::ArgAction::SetTrue)
                .help("Healthy only if the node can serve now: Primary, wsrep_ready, Synced"),
        )
        .arg(
            clap::Arg::new("donor-ok")
                .long("donor-ok")
                .action(clap::ArgAction::SetTrue)
                .requires("ready")
                .help("With --ready: a Donor that keeps serving counts as ready"),
        )
}

fn status_command() -> clap::Command {
    clap::Command::new("galera-init status")
        .about(
            "Every node of the cluster, like MaxScale's `list servers`: Server, Address, Port, \
             Connections, Status. Asks the nodes' state ports; by default the nodes DNS lists \
             under DISCOVERY_NAME (tasks.$DB_SERVICE_NAME).",
        )
        .arg(
            clap::Arg::new("json")
                .long("json")
                .action(clap::ArgAction::SetTrue)
                .help("Print JSON"),
        )
        .arg(
            clap::Arg::new("targets")
                .num_args(0..)
                .value_name("ADDRESS|NAME")
                .help("Nodes to ask: addresses or DNS names"),
        )
}

/// Parses the command line (`args` includes the program name). `--help` and `--version`
/// come back as a clap error of the matching kind, which prints itself.
pub fn parse(args: Vec<OsString>) -> Result<Mode, clap::Error> {
    let first = args.get(1).and_then(|a| a.to_str());
    if matches!(first, Some("-h" | "--help" | "-V" | "--version")) {
        command().try_get_matches_from(&args)?;
    }
    let rest: Vec<OsString> = args.into_iter().skip(1).collect();
    let Some(first) = rest.first().map(|a| a.to_string_lossy().into_owned()) else {
        return Ok(Mode::Node {
            mariadbd_args: rest,
        });
    };
    let base = first.rsplit('/').next().unwrap_or(&first);
    if first.starts_with('-') {
        Ok(Mode::Node {
            mariadbd_args: rest,
        })
    } else if first == "bootstrap" && rest.len() == 1 {
        Ok(Mode::Bootstrap)
    } else if first == "healthcheck" {
        // The image's HEALTHCHECK, every 2 s: its exact forms need no parser.
        let flags: Vec<&str> = rest[1..].iter().filter_map(|a| a.to_str()).collect();
        let quick = match flags[..] {
            [] => Some((false, false)),
            ["--ready"] => Some((true, false)),
            ["--ready", "--donor-ok"] | ["--donor-ok", "--ready"] => Some((true, true)),
            _ => None,
        };
        if let Some((ready, donor_ok)) = quick.filter(|_| flags.len() == rest.len() - 1) {
            return Ok(Mode::Healthcheck(crate::commands::healthcheck::Check {
                ready,
                donor_ok,
            }));
        }
        let m = healthcheck_command().try_get_matches_from(&rest)?;
        Ok(Mode::Healthcheck(crate::commands::healthcheck::Check {
            ready: m.get_flag("ready"),
            donor_ok: m.get_flag("donor-ok"),
        }))
    } else if first == "status" {
        let m = status_command().try_get_matches_from(&rest)?;
        Ok(Mode::Status {
            json: m.get_flag("json"),
            targets: m
                .get_many::<String>("targets")
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
        })
    } else if base == "mariadbd" || base == "mysqld" {
        Ok(Mode::Node {
            mariadbd_args: rest[1..].to_vec(),
        })
    } else {
        Ok(Mode::Exec { argv: rest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Mode, clap::Error> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn node(args: &[&str]) -> Mode {
        Mode::Node {
            mariadbd_args: args.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_strs(&["galera-init"]).unwrap(), node(&[]));
        assert_eq!(
            parse_strs(&["galera-init", "--innodb-buffer-pool-size=1G", "-v"]).unwrap(),
            node(&["--innodb-buffer-pool-size=1G", "-v"])
        );
        assert_eq!(
            parse_strs(&["galera-init", "mariadbd", "--max-connections=500"]).unwrap(),
            node(&["--max-connections=500"])
        );
        assert_eq!(parse_strs(&["galera-init", "mysqld"]).unwrap(), node(&[]));
        assert_eq!(
            parse_strs(&["galera-init", "/usr/sbin/mariadbd"]).unwrap(),
            node(&[])
        );
        assert_eq!(
            parse_strs(&["galera-init", "bash", "-c", "echo hi"]).unwrap(),
            Mode::Exec {
                argv: ["bash", "-c", "echo hi"]
                    .iter()
                    .map(OsString::from)
                    .collect()
            }
        );
        assert_eq!(
            parse_strs(&["galera-init", "bootstrap"]).unwrap(),
            Mode::Bootstrap
        );
        use crate::commands::healthcheck::Check;
        assert_eq!(
            parse_strs(&["galera-init", "healthcheck"]).unwrap(),
            Mode::Healthcheck(Check::default())
        );
        assert_eq!(
            parse_strs(&["galera-init", "healthcheck", "--ready", "--donor-ok"]).unwrap(),
            Mode::Healthcheck(Check {
                ready: true,
                donor_ok: true
            })
        );
        assert!(parse_strs(&["galera-init", "healthcheck", "--donor-ok"]).is_err());
        assert!(parse_strs(&["galera-init", "healthcheck", "--bogus"]).is_err());
        assert_eq!(
            parse_strs(&["galera-init", "status", "--json", "10.0.0.2", "tasks.db"]).unwrap(),
            Mode::Status {
                json: true,
                targets: vec!["10.0.0.2".into(), "tasks.db".into()]
            }
        );
        // Only the first argument is ours: a later --help belongs to the command.
        assert_eq!(
            parse_strs(&["galera-init", "mariadbd", "--help"]).unwrap(),
            node(&["--help"])
        );
    }

    #[test]
    fn help_and_version() {
        let help = parse_strs(&["galera-init", "--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--stop-grace-period"));
        let version = parse_strs(&["galera-init", "--version"]).unwrap_err();
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
