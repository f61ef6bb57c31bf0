//! A real Dovecot (Debian's `dovecot-imapd`) for the tests: its own throwaway
//! configuration, maildir and TLS certificate (signed by a throwaway CA, which a test
//! names in `BOUNCE_IMAP_CA_FILE`), on free ports. Mail goes into it with IMAP APPEND,
//! as any delivery agent would leave it there.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use futures_util::TryStreamExt;

pub const USER: &str = "bounces";
pub const PASSWORD: &str = "mailbox-pass";

pub struct Dovecot {
    pub imap_port: u16,
    pub imaps_port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, made once a run.
fn certificates() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl is needed to make the test certificates");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Newsletter test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        dir
    })
    .path()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dovecot {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let dovecot = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("Dovecot is needed for these tests: apt-get install dovecot-imapd");
        let certs = certificates();
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).unwrap();
        // Dovecot will not keep mail as root: as root, the mail belongs to `nobody`.
        let me = std::fs::metadata(dir.path()).unwrap();
        let (uid, gid, users) = if me.uid() == 0 {
            std::os::unix::fs::chown(&mail, Some(65534), Some(65534)).unwrap();
            (65534, 65534, String::new())
        } else {
            let name = std::env::var("USER").unwrap_or_default();
            (
                me.uid(),
                me.gid(),
                format!("default_internal_user = {name}\ndefault_login_user = {name}\n"),
            )
        };
        std::fs::write(
            dir.path().join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}\n"),
        )
        .unwrap();
        let (imap_port, imaps_port) = (free_port(), free_port());
        let root = dir.path().display();
        let certs = certs.display();
        let config = format!(
            "base_dir = {root}/run\n\
             state_dir = {root}/state\n\
             log_path = {root}/dovecot.log\n\
             {users}\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = yes\n\
             ssl_cert = <{certs}/server.pem\n\
             ssl_key = <{certs}/server.key\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             mail_location = maildir:{root}/mail/%u\n\
             first_valid_uid = 1\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {root}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={root}/mail/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    port = {imaps_port}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        );
        let conf = dir.path().join("dovecot.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(dovecot)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Dovecot did not start");
        let dovecot = Self {
            imap_port,
            imaps_port,
            dir,
            child,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", imap_port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Dovecot did not answer: {}",
                std::fs::read_to_string(dovecot.dir.path().join("dovecot.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        dovecot
    }

    /// `BOUNCE_IMAP_URL` for its INBOX: `imaps://` on its TLS port, or `imap://` on
    /// the other (where it offers STARTTLS).
    pub fn url(&self, implicit_tls: bool) -> String {
        if implicit_tls {
            format!(
                "imaps://{USER}:{PASSWORD}@localhost:{}/INBOX",
                self.imaps_port
            )
        } else {
            format!(
                "imap://{USER}:{PASSWORD}@localhost:{}/INBOX",
                self.imap_port
            )
        }
    }

    /// The CA that signed its certificate, for `BOUNCE_IMAP_CA_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        certificates().join("ca.pem")
    }

    async fn session(&self) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.imap_port))
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .unwrap()
    }

    /// Puts messages in the INBOX, as delivered mail.
    pub async fn deliver(&self, messages: &[String]) {
        let mut session = self.session().await;
        for raw in messages {
            session
                .append("INBOX", None, None, raw.as_bytes())
                .await
                .unwrap();
        }
        session.logout().await.unwrap();
    }

    /// How many messages each folder holds.
    pub async fn count(&self, folder: &str) -> usize {
        let mut session = self.session().await;
        let count = match session.select(folder).await {
            Ok(mailbox) => mailbox.exists as usize,
            Err(_) => 0,
        };
        session.logout().await.unwrap();
        count
    }

    /// Waits until `folder` holds `count` messages.
    pub async fn wait_for(&self, folder: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.count(folder).await;
            if now == count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{folder} holds {now} messages, not {count}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The subjects of the messages in `folder`.
    pub async fn subjects(&self, folder: &str) -> Vec<String> {
        let mut session = self.session().await;
        session.select(folder).await.unwrap();
        let fetched: Vec<_> = session
            .fetch("1:*", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let subjects = fetched
            .iter()
            .filter_map(|f| {
                f.header()
                    .map(|h| String::from_utf8_lossy(h).trim().to_owned())
            })
            .collect();
        session.logout().await.unwrap();
        subjects
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its children too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
