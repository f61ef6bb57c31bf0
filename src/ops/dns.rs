//! One DNS question, for `doctor`: the TXT records at a name, asked of the system's
//! resolver (the first `nameserver` in /etc/resolv.conf, or `DOCTOR_DNS_SERVER`) over
//! UDP with EDNS0, and again over TCP when the answer comes back truncated.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

const TXT: u16 = 16;
const WAIT: Duration = Duration::from_secs(5);

/// The resolver to ask.
pub fn resolver() -> anyhow::Result<SocketAddr> {
    if let Ok(server) = std::env::var("DOCTOR_DNS_SERVER") {
        return server
            .parse()
            .with_context(|| format!("DOCTOR_DNS_SERVER must be ip:port, not {server:?}"));
    }
    let conf =
        std::fs::read_to_string("/etc/resolv.conf").context("Failed to read /etc/resolv.conf")?;
    conf.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .context("/etc/resolv.conf names no nameserver")
}

/// Every TXT record at `name`, each as its strings joined; empty if there are none.
pub async fn txt(server: SocketAddr, name: &str) -> anyhow::Result<Vec<String>> {
    let id: u16 = rand_id();
    let question = query(id, name)?;
    let socket = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .await
    .context("Failed to open a UDP socket")?;
    // Connected: only the resolver's answers are read.
    socket
        .connect(server)
        .await
        .with_context(|| format!("Failed to reach {server}"))?;
    socket
        .send(&question)
        .await
        .with_context(|| format!("Failed to ask {server}"))?;
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, socket.recv(&mut answer))
        .await
        .with_context(|| format!("{server} did not answer"))?
        .context("Failed to read the DNS answer")?;
    answer.truncate(n);
    if answer.len() > 2 && answer[2] & 0x02 != 0 {
        // Truncated: ask again over TCP, where the whole answer fits.
        answer = over_tcp(server, &question).await?;
    }
    read_txt(&answer, id)
}

fn rand_id() -> u16 {
    let mut bytes = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u16::from_be_bytes(bytes)
}

async fn over_tcp(server: SocketAddr, question: &[u8]) -> anyhow::Result<Vec<u8>> {
    let asking = async {
        let mut tcp = TcpStream::connect(server).await?;
        tcp.write_all(&(question.len() as u16).to_be_bytes())
            .await?;
        tcp.write_all(question).await?;
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).await?;
        let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
        tcp.read_exact(&mut answer).await?;
        anyhow::Ok(answer)
    };
    tokio::time::timeout(WAIT, asking)
        .await
        .with_context(|| format!("{server} did not answer over TCP"))?
        .with_context(|| format!("Failed to ask {server} over TCP"))
}

/// A TXT question for `name`, with recursion desired and an EDNS0 record for 4096
/// bytes of answer.
fn query(id: u16, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut q = Vec::with_capacity(64);
    q.extend(id.to_be_bytes());
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            bail!("{name:?} is not a DNS name");
        }
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.push(0);
    q.extend(TXT.to_be_bytes());
    q.extend(1u16.to_be_bytes());
    // OPT: root name, type 41, payload 4096, no extended flags, no options.
    q.extend([0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
    Ok(q)
}

/// The TXT records in an answer to question `id`.
pub(crate) fn read_txt(answer: &[u8], id: u16) -> anyhow::Result<Vec<String>> {
    let short = || anyhow::anyhow!("The DNS answer is cut short");
    let u16_at = |at: usize| -> anyhow::Result<u16> {
        Ok(u16::from_be_bytes([
            *answer.get(at).ok_or_else(short)?,
            *answer.get(at + 1).ok_or_else(short)?,
        ]))
    };
    if u16_at(0)? != id {
        bail!("The DNS answer is to another question");
    }
    match u16_at(2)? & 0x000f {
        0 => {}
        3 => return Ok(Vec::new()), // NXDOMAIN: no such name
        code => bail!("The resolver answered with error code {code}"),
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(answer, at)? + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        at = skip_name(answer, at)?;
        let (kind, len) = (u16_at(at)?, u16_at(at + 8)? as usize);
        let data = answer.get(at + 10..at + 10 + len).ok_or_else(short)?;
        at += 10 + len;
        if kind != TXT {
            continue; // a CNAME on the way
        }
        let mut text = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let n = data[i] as usize;
            text.extend(data.get(i + 1..i + 1 + n).ok_or_else(short)?);
            i += 1 + n;
        }
        records.push(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(records)
}

/// Where the name at `at` ends (labels, or a pointer to them).
fn skip_name(message: &[u8], mut at: usize) -> anyhow::Result<usize> {
    loop {
        let len = *message
            .get(at)
            .ok_or_else(|| anyhow::anyhow!("The DNS answer is cut short"))?;
        match len {
            0 => return Ok(at + 1),
            n if n & 0xc0 == 0xc0 => return Ok(at + 2),
            n => at += 1 + n as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_its_txt_records_joined_and_a_missing_name_none() {
        let question = query(0x1234, "s1._domainkey.example.org").unwrap();
        // The answer: the question echoed, then one TXT record of two strings whose
        // name points back at the question's.
        let mut answer = question[..question.len() - 11].to_vec();
        answer[2] = 0x81;
        answer[3] = 0x80;
        answer[7] = 1; // one answer
        answer[11] = 0; // no additional records
        answer.extend([0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 9]);
        answer.extend([3, b'v', b'=', b'D', 4, b'K', b'I', b'M', b'1']);
        assert_eq!(read_txt(&answer, 0x1234).unwrap(), ["v=DKIM1"]);
        assert!(
            read_txt(&answer, 0x9999).is_err(),
            "another question's answer"
        );
        let mut missing = answer.clone();
        missing[3] = 0x83;
        assert!(read_txt(&missing, 0x1234).unwrap().is_empty());
        assert!(read_txt(&answer[..answer.len() - 3], 0x1234).is_err());
        assert!(
            read_txt(&answer[..3], 0x1234).is_err(),
            "three bytes, and no panic"
        );
        assert!(query(1, "a..b").is_err());
    }
}
