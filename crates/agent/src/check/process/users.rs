//! Resolving the `user` option of the process check (a user name or a numeric uid) via an `/etc/passwd`-format file.

use std::path::Path;

/// Who a process must run as: a uid given directly, or a name looked up at each run (so a
/// user created after the agent started is found without a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMatcher {
    /// A numeric uid from the options.
    Uid(u32),
    /// A user name to resolve in the passwd file.
    Name(String),
}

impl UserMatcher {
    /// Reads the option: all digits is a uid, anything else a user name.
    pub fn from_option(text: &str) -> Result<UserMatcher, String> {
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if text.bytes().all(|byte| byte.is_ascii_digit()) {
            text.parse::<u32>()
                .map(UserMatcher::Uid)
                .map_err(|error| format!("uid {text:?}: {error}"))
        } else if text.contains([':', '\n']) {
            Err(format!(
                "user name {text:?} must not contain ':' or a newline"
            ))
        } else {
            Ok(UserMatcher::Name(text.to_owned()))
        }
    }

    /// The uid to match, resolving a name in `passwd_path`; the error says why it could not.
    pub fn resolve(&self, passwd_path: &Path) -> Result<u32, String> {
        match self {
            UserMatcher::Uid(uid) => Ok(*uid),
            UserMatcher::Name(name) => {
                let passwd = std::fs::read_to_string(passwd_path)
                    .map_err(|error| format!("cannot read {}: {error}", passwd_path.display()))?;
                uid_of_user(&passwd, name)
                    .ok_or_else(|| format!("user {name:?} not found in {}", passwd_path.display()))
            }
        }
    }
}

impl std::fmt::Display for UserMatcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserMatcher::Uid(uid) => write!(formatter, "{uid}"),
            UserMatcher::Name(name) => formatter.write_str(name),
        }
    }
}

/// The uid of `name` in passwd-format text (`name:password:uid:gid:gecos:home:shell`);
/// malformed lines and comments are skipped.
pub fn uid_of_user(passwd: &str, name: &str) -> Option<u32> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let line_name = fields.next()?;
        if line_name != name {
            return None;
        }
        let _password = fields.next()?;
        fields.next()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\napp:x:1001:1001::/home/app:/bin/sh\nbad:x:notanumber:1::/:/bin/sh\n";

    #[test]
    fn finds_uids_by_name() {
        assert_eq!(uid_of_user(PASSWD, "root"), Some(0));
        assert_eq!(uid_of_user(PASSWD, "app"), Some(1001));
        assert_eq!(uid_of_user(PASSWD, "bad"), None);
        assert_eq!(uid_of_user(PASSWD, "broken"), None);
        assert_eq!(uid_of_user(PASSWD, "nobody"), None);
    }

    #[test]
    fn reads_the_option_and_resolves_it() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, PASSWD).unwrap();
        assert_eq!(UserMatcher::from_option("42"), Ok(UserMatcher::Uid(42)));
        assert!(UserMatcher::from_option("").is_err());
        assert!(UserMatcher::from_option("99999999999").is_err());
        assert!(UserMatcher::from_option("a:b").is_err());
        let app = UserMatcher::from_option("app").unwrap();
        assert_eq!(app.resolve(&passwd), Ok(1001));
        assert_eq!(UserMatcher::Uid(7).resolve(&dir.path().join("none")), Ok(7));
        let missing = UserMatcher::from_option("ghost").unwrap().resolve(&passwd);
        assert!(
            missing
                .unwrap_err()
                .starts_with("user \"ghost\" not found in ")
        );
        let unreadable = app.resolve(&dir.path().join("none")).unwrap_err();
        assert!(unreadable.starts_with("cannot read "), "{unreadable}");
    }
}
