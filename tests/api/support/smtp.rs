//! A small SMTP server for tests, on a real TCP port. It records every message it
//! accepts, and can be told to answer a recipient with any reply code, or to hang up,
//! or to close every idle connection as a relay does when clients sit idle too long.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};

#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent, headers and body, with dot-stuffing undone.
    pub data: String,
    /// When its final dot came in.
    pub at: std::time::Instant,
}

/// What to do instead of accepting a recipient.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer `RCPT TO` with this code and text (e.g. 451, 550).
    Reply(u16, &'static str),
    /// Close the connection without answering.
    HangUp,
    /// Say nothing more, and keep the connection open: a relay that hangs.
    Silence,
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedMail>,
    /// Used up one per `RCPT TO`, before anything else applies.
    next_faults: VecDeque<Fault>,
    /// Applied when that recipient comes up, the given number of times (None: always).
    recipient_faults: HashMap<String, (Fault, Option<usize>)>,
    commands: Vec<String>,
    /// Not offering PIPELINING (RFC 2920) to connections from now on.
    no_pipelining: bool,
    /// Refusing a second EHLO on a connection (which RFC 5321 allows), from now on.
    one_ehlo: bool,
    /// `MAIL` commands that came with more behind them, before their answer: pipelined.
    pipelined_mails: usize,
    /// Connections accepted so far, and those still open.
    connections: usize,
    open: usize,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    received: Arc<Notify>,
    /// Tells every open connection to close; they say so on `closed`.
    hang_up: Arc<Notify>,
    closed: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0 for any free one).
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the test SMTP server could not bind");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let received = Arc::new(Notify::new());
        let hang_up = Arc::new(Notify::new());
        let closed = Arc::new(Notify::new());
        let task = tokio::spawn({
            let (state, received) = (state.clone(), received.clone());
            let (hang_up, closed) = (hang_up.clone(), closed.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (state, received) = (state.clone(), received.clone());
                    let (hang_up, closed) = (hang_up.clone(), closed.clone());
                    {
                        let mut state = state.lock().unwrap();
                        state.connections += 1;
                        state.open += 1;
                    }
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = serve(stream, state.clone(), received) => {}
                            _ = hang_up.notified() => {}
                        }
                        state.lock().unwrap().open -= 1;
                        closed.notify_waiters();
                    });
                }
            }
        });
        Self {
            addr,
            state,
            received,
            hang_up,
            closed,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next `RCPT TO` (whoever it names) gets `fault`, once.
    pub fn fail_next(&self, fault: Fault) {
        self.state.lock().unwrap().next_faults.push_back(fault);
    }

    /// Every `RCPT TO` naming `recipient` gets `fault`.
    pub fn fail_recipient(&self, recipient: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .recipient_faults
            .insert(recipient.to_owned(), (fault, None));
    }

    /// The next `times` `RCPT TO`s naming `recipient` get `fault`.
    pub fn fail_recipient_times(&self, recipient: &str, fault: Fault, times: usize) {
        self.state
            .lock()
            .unwrap()
            .recipient_faults
            .insert(recipient.to_owned(), (fault, Some(times)));
    }

    /// How many connections clients have opened.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Closes every open connection without a word, as a relay does to idle
    /// clients, and returns once they are all closed.
    pub async fn close_connections(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let closed = self.closed.notified();
            if self.state.lock().unwrap().open == 0 {
                return;
            }
            self.hang_up.notify_waiters();
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                panic!("the test SMTP server's connections did not close");
            }
        }
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every command that arrived, in order, on any connection.
    /// From now on, EHLO does not offer PIPELINING.
    pub fn refuse_pipelining(&self) {
        self.state.lock().unwrap().no_pipelining = true;
    }

    /// From now on, a second EHLO on a connection is refused, as a strict relay might.
    pub fn refuse_second_ehlo(&self) {
        self.state.lock().unwrap().one_ehlo = true;
    }

    /// How many `MAIL` commands came pipelined, with the next command already behind.
    pub fn pipelined_mails(&self) -> usize {
        self.state.lock().unwrap().pipelined_mails
    }

    pub fn commands(&self) -> Vec<String> {
        self.state.lock().unwrap().commands.clone()
    }

    /// How many `RCPT TO` commands arrived (accepted or not).
    pub fn rcpt_attempts(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .commands
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("RCPT TO"))
            .count()
    }

    /// The messages received with this subject.
    pub fn with_subject(&self, subject: &str) -> Vec<ReceivedMail> {
        self.received()
            .into_iter()
            .filter(|m| m.header("Subject").as_deref() == Some(subject))
            .collect()
    }

    /// Waits until at least `count` messages with `subject` have arrived.
    pub async fn wait_for_subject(&self, subject: &str, count: usize) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.received.notified();
            let mails = self.with_subject(subject);
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} messages titled {subject:?}, received {}",
                    mails.len()
                );
            }
        }
    }

    /// Waits for a message to `recipient` with `subject`, and returns the first.
    pub async fn wait_for_mail_to(&self, recipient: &str, subject: &str) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.received.notified();
            if let Some(mail) = self
                .with_subject(subject)
                .into_iter()
                .find(|m| m.to == [recipient])
            {
                return mail;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no message titled {subject:?} reached {recipient}");
            }
        }
    }

    /// Waits until at least `count` messages have arrived, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.received.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} messages, the SMTP server received {}",
                    self.received().len()
                );
            }
        }
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>, received: Arc<Notify>) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader);
    let mut line = String::new();
    let mut from = String::new();
    let mut to = Vec::new();
    let mut ehlos = 0;
    if writer
        .write_all(b"220 test.invalid ESMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        state.lock().unwrap().commands.push(command.clone());
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if verb == "EHLO" {
            ehlos += 1;
        }
        let reply: String = match verb.as_str() {
            "EHLO" if ehlos > 1 && state.lock().unwrap().one_ehlo => {
                "503 5.5.1 Error: duplicate EHLO".into()
            }
            "EHLO" if state.lock().unwrap().no_pipelining => {
                "250-test.invalid\r\n250-8BITMIME\r\n250 SMTPUTF8".into()
            }
            "EHLO" => "250-test.invalid\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8".into(),
            "HELO" => "250 test.invalid".into(),
            "MAIL" => {
                if !lines.buffer().is_empty() {
                    state.lock().unwrap().pipelined_mails += 1;
                }
                from = address(&command);
                to.clear();
                "250 2.1.0 Ok".into()
            }
            "RCPT" => {
                let recipient = address(&command);
                let fault = {
                    let mut state = state.lock().unwrap();
                    state.next_faults.pop_front().or_else(|| {
                        let (fault, times) = state.recipient_faults.get_mut(&recipient)?;
                        match times {
                            Some(0) => None,
                            Some(n) => {
                                *n -= 1;
                                Some(fault.clone())
                            }
                            None => Some(fault.clone()),
                        }
                    })
                };
                match fault {
                    Some(Fault::HangUp) => return,
                    Some(Fault::Silence) => std::future::pending().await,
                    Some(Fault::Reply(code, text)) => format!("{code} {text}"),
                    None => {
                        to.push(recipient);
                        "250 2.1.5 Ok".into()
                    }
                }
            }
            "DATA" => {
                if writer
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let mail = ReceivedMail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                    at: std::time::Instant::now(),
                };
                let queued = {
                    let mut state = state.lock().unwrap();
                    state.received.push(mail);
                    state.received.len()
                };
                received.notify_waiters();
                format!("250 2.0.0 Ok: queued as TEST{queued}")
            }
            "RSET" => {
                to.clear();
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "QUIT" => {
                let _ = writer.write_all(b"221 2.0.0 Bye\r\n").await;
                return;
            }
            _ => "502 5.5.2 Command not recognised".into(),
        };
        if writer
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The address in `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_default()
}

impl ReceivedMail {
    /// The message with quoted-printable soft line breaks and escapes undone, good
    /// enough to find links and words in either part.
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "").replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(byte);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A header's value, with folded lines joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut lines = self.data.lines().take_while(|l| !l.is_empty());
        let first = lines.find(|l| l.to_ascii_lowercase().starts_with(&prefix))?;
        let mut value = first[prefix.len()..].trim().to_owned();
        for folded in lines.take_while(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(folded.trim());
        }
        Some(value)
    }

    /// The confirmation link in the plain-text part.
    pub fn confirmation_link(&self) -> String {
        let text = self.decoded();
        let start = text
            .find("http")
            .expect("the mail has no link in its text part");
        text[start..].split_whitespace().next().unwrap().to_owned()
    }

    pub fn confirmation_token(&self) -> String {
        let link = self.confirmation_link();
        match link.split_once("token=") {
            Some((_, token)) => token.to_owned(),
            // Seen once in a full run, not since: say what came, to find out why.
            None => panic!("the link {link:?} has no token, in:\n{}", self.data),
        }
    }

    /// The signed token of the first unsubscribe link in the plain-text part.
    pub fn unsubscribe_token(&self) -> String {
        let text = self.decoded();
        let (_, rest) = text
            .split_once("/unsubscribe?token=")
            .expect("the mail has no unsubscribe link");
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}
