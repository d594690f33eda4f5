//! The SQL that sets up the accounts of a fresh datadir.
//!
//! Passwords and names come from the environment and may hold quotes, backslashes or any
//! Unicode. The session runs with `NO_BACKSLASH_ESCAPES`, so inside a string literal the
//! only special character is the quote itself, and [`literal`] has one rule to get right.

use crate::config::{RootPassword, Settings};

/// The session settings every statement below relies on.
pub const SESSION_SETUP: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'",
    "SET SESSION sql_log_bin = 0",
];

/// A string literal. Correct only under `NO_BACKSLASH_ESCAPES` (see [`SESSION_SETUP`]).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A quoted identifier (database name).
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A database name as a GRANT pattern: `_` and `%` are wildcards there, so they are escaped
/// to grant on this database only (as the official image does).
pub fn grant_pattern(db: &str) -> String {
    ident(&db.replace('_', "\\_").replace('%', "\\%"))
}

/// One statement, and whether its text holds a secret (then a server error about it is
/// reported without the server's message, which may quote the statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// What the statement does, for logs and errors.
    pub what: &'static str,
    /// Whether `sql` contains a password.
    pub secret: bool,
}

/// The statements that set up root, the database and the application user.
/// `root_password` is the password root gets (the random one already drawn).
pub fn account_statements(settings: &Settings, root_password: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let pw = literal(root_password);
    // Root keeps socket authentication for the OS root user (galera-init's own access and
    // `docker exec … mariadb`), and gets the password for everyone else.
    out.push(Statement {
        sql: format!(
            "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket \
             OR mysql_native_password USING PASSWORD({pw})"
        ),
        what: "set the root password",
        secret: true,
    });
    if let Some(host) = settings.root_host.as_deref().filter(|h| *h != "localhost") {
        let account = format!("'root'@{}", literal(host));
        out.push(Statement {
            sql: format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {pw}"),
            what: "create the remote root account (MYSQL_ROOT_HOST)",
            secret: true,
        });
        out.push(Statement {
            sql: format!("GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION"),
            what: "grant the remote root account (MYSQL_ROOT_HOST)",
            secret: false,
        });
    }
    if let Some(db) = &settings.database {
        out.push(Statement {
            sql: format!("CREATE DATABASE IF NOT EXISTS {}", ident(db)),
            what: "create MYSQL_DATABASE",
            secret: false,
        });
    }
    if let Some(user) = &settings.user {
        let account = format!("{}@'%'", literal(&user.name));
        out.push(Statement {
            sql: format!(
                "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {}",
                literal(user.password.expose())
            ),
            what: "create MYSQL_USER",
            secret: true,
        });
        if let Some(db) = &settings.database {
            out.push(Statement {
                sql: format!(
                    "GRANT ALL PRIVILEGES ON {}.* TO {account}",
                    grant_pattern(db)
                ),
                what: "grant MYSQL_USER on MYSQL_DATABASE",
                secret: false,
            });
        }
    }
    out
}

/// The password root gets: the given one, empty, or `random` (drawn by the caller).
pub fn root_password<'a>(choice: &'a RootPassword, random: &'a str) -> &'a str {
    match choice {
        RootPassword::Given(s) => s.expose(),
        RootPassword::Empty => "",
        RootPassword::Random => random,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AppUser, Secret, SstSetting};

    fn settings() -> Settings {
        Settings {
            service_name: "svc".into(),
            discovery_name: "tasks.svc".into(),
            cluster_name: "svc".into(),
            node_address: None,
            root_password: RootPassword::Given(Secret::new("r")),
            root_host: None,
            database: Some("my_db".into()),
            user: Some(AppUser {
                name: "o'brien".into(),
                password: Secret::new("p'a\\ss😀"),
            }),
            sst_method: SstSetting::Auto,
            discovery_timeout: std::time::Duration::from_secs(1),
            force_bootstrap: false,
            cluster_size: None,
            settle_window: std::time::Duration::from_secs(5),
            outage_timeout: std::time::Duration::from_secs(60),
            http_port: 9200,
            pc_recovery_timeout: std::time::Duration::from_secs(60),
            health: Default::default(),
            drain_delay: std::time::Duration::ZERO,
            state_notify: true,
            provider_options: String::new(),
            cluster_key: None,
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(literal("plain"), "'plain'");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("back\\slash"), "'back\\slash'");
        assert_eq!(literal("ünï😀"), "'ünï😀'");
        assert_eq!(literal("''"), "''''''");
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(grant_pattern("my_db%"), "`my\\_db\\%`");
    }

    #[test]
    fn statements_for_the_seed_example() {
        let stmts = account_statements(&settings(), "root'pw");
        let sql: Vec<&str> = stmts.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('root''pw')",
                "CREATE DATABASE IF NOT EXISTS `my_db`",
                "CREATE USER IF NOT EXISTS 'o''brien'@'%' IDENTIFIED BY 'p''a\\ss😀'",
                "GRANT ALL PRIVILEGES ON `my\\_db`.* TO 'o''brien'@'%'",
            ]
        );
        // Exactly the statements holding a password are marked secret.
        for s in &stmts {
            assert_eq!(
                s.secret,
                s.sql.contains("root''pw") || s.sql.contains("p''a"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn remote_root_only_when_asked() {
        let mut s = settings();
        s.root_host = Some("10.0.%".into());
        let stmts = account_statements(&s, "pw");
        assert!(
            stmts
                .iter()
                .any(|s| s.sql == "CREATE USER IF NOT EXISTS 'root'@'10.0.%' IDENTIFIED BY 'pw'")
        );
        s.root_host = None;
        let stmts = account_statements(&s, "pw");
        assert!(!stmts.iter().any(|s| s.sql.contains("'root'@'10")));
        assert!(!stmts.iter().any(|s| s.sql.contains("'root'@'%'")));
    }

    #[test]
    fn user_without_database_gets_no_grant() {
        let mut s = settings();
        s.database = None;
        let stmts = account_statements(&s, "pw");
        assert!(!stmts.iter().any(|s| s.sql.starts_with("GRANT")));
        assert!(stmts.iter().any(|s| s.sql.starts_with("CREATE USER")));
    }
}
