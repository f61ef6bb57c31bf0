//! A real Postfix (Debian's), started for a test with its own throwaway configuration
//! and queue, listening on a free port. It is the relay the app sends through, and the
//! receiving systems it would meet: `postfix.test` is its own domain, where every user
//! is unknown (it accepts the mail, then bounces it with a DSN); `unreachable.test` is
//! a host that never answers (the mail waits, and its sender is told so). DSNs for
//! `news.example.org`, the bounce mailbox's domain, go to `bounce_port`, where a test
//! SMTP server records them. Postfix starts only as root.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

pub struct Postfix {
    pub port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The daemons a relay needs, from Debian's master.cf, with smtpd on `port`.
fn master_cf(port: u16) -> String {
    let services = [
        ("pickup", "unix", "n", "60", "1"),
        ("cleanup", "unix", "n", "-", "0"),
        ("qmgr", "unix", "n", "300", "1"),
        ("rewrite", "unix", "-", "-", "-"),
        ("bounce", "unix", "-", "-", "0"),
        ("defer", "unix", "-", "-", "0"),
        ("trace", "unix", "-", "-", "0"),
        ("verify", "unix", "-", "-", "1"),
        ("flush", "unix", "n", "1000?", "0"),
        ("proxymap", "unix", "-", "-", "-"),
        ("smtp", "unix", "-", "-", "-"),
        ("relay", "unix", "-", "-", "-"),
        ("showq", "unix", "n", "-", "-"),
        ("error", "unix", "-", "-", "-"),
        ("retry", "unix", "-", "-", "-"),
        ("discard", "unix", "-", "-", "-"),
        ("local", "unix", "-", "-", "-"),
        ("anvil", "unix", "-", "-", "1"),
        ("scache", "unix", "-", "-", "1"),
        ("postlog", "unix-dgram", "n", "-", "1"),
    ];
    let mut cf = format!("{port} inet n - n - - smtpd\n");
    for (name, kind, private, wakeup, limit) in services {
        let program = match name {
            "rewrite" => "trivial-rewrite",
            "defer" | "trace" => "bounce",
            "relay" => "smtp",
            "retry" => "error",
            "postlog" => "postlogd",
            other => other,
        };
        let unprivileged = if name == "local" { "n" } else { "-" };
        cf.push_str(&format!(
            "{name} {kind} {private} {unprivileged} n {wakeup} {limit} {program}\n"
        ));
    }
    cf
}

fn postfix(config: &Path, action: &str) -> std::process::Output {
    // Postfix says why it will not start only on a terminal (or syslog): `script` gives
    // it one.
    Command::new("script")
        .args([
            "-qc",
            &format!("postfix -c {} {action}", config.display()),
            "/dev/null",
        ])
        .output()
        .expect("script (util-linux) runs postfix")
}

impl Postfix {
    pub async fn start(bounce_port: u16) -> Self {
        assert!(
            Path::new("/usr/sbin/postfix").exists(),
            "Postfix is needed for these tests: apt-get install postfix"
        );
        let dir = tempfile::tempdir().unwrap();
        // Postfix's own user works in the queue below it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path();
        let (conf, queue, data) = (root.join("conf"), root.join("queue"), root.join("data"));
        for d in [&conf, &queue, &data] {
            std::fs::create_dir(d).unwrap();
        }
        let chown = Command::new("chown")
            .args(["postfix:postfix"])
            .arg(&data)
            .status()
            .unwrap();
        assert!(chown.success(), "Postfix runs only as root here");
        let port = free_port();
        std::fs::write(conf.join("master.cf"), master_cf(port)).unwrap();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {queue}\n\
             data_directory = {data}\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             myhostname = mx.postfix.test\n\
             mydomain = postfix.test\n\
             mydestination = postfix.test\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             local_recipient_maps =\n\
             alias_maps =\n\
             alias_database =\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             transport_maps = inline:{{ news.example.org=smtp:[127.0.0.1]:{bounce_port}, unreachable.test=smtp:[127.0.0.1]:1 }}\n\
             smtp_dns_support_level = disabled\n\
             delay_warning_time = 1s\n\
             queue_run_delay = 1s\n\
             minimal_backoff_time = 1s\n\
             maximal_backoff_time = 2s\n\
             maillog_file_prefixes = {root}\n\
             maillog_file = {root}/maillog\n\
             smtputf8_enable = no\n\
             biff = no\n",
            queue = queue.display(),
            data = data.display(),
            root = root.display(),
        );
        std::fs::write(conf.join("main.cf"), main_cf).unwrap();
        let started = postfix(&conf, "start");
        assert!(
            started.status.success(),
            "Postfix did not start: {}",
            String::from_utf8_lossy(&started.stdout)
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Postfix did not answer"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Its log, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        postfix(&self.conf(), "stop");
    }
}
