//! A DNS server of the tests' own, on a free UDP port: it answers every TXT question with
//! the one record it was given (or with none), as a zone with that record would.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

pub struct DnsServer {
    pub addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    pub async fn start(record: Option<String>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                if let Some(answer) = answer(&buf[..n], record.as_deref()) {
                    let _ = socket.send_to(&answer, from).await;
                }
            }
        });
        Self { addr, _task: task }
    }
}

fn answer(query: &[u8], record: Option<&str>) -> Option<Vec<u8>> {
    // The question ends after its name's labels and its type and class.
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + query[end] as usize;
    }
    end += 5;
    let mut out = query.get(..end)?.to_vec();
    out[2] = 0x81; // a response, recursion desired
    out[3] = 0x80; // recursion available, no error
    out[6..12].copy_from_slice(&[0, u8::from(record.is_some()), 0, 0, 0, 0]);
    if let Some(record) = record {
        let mut data = Vec::new();
        for chunk in record.as_bytes().chunks(255) {
            data.push(chunk.len() as u8);
            data.extend_from_slice(chunk);
        }
        out.extend([0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
        out.extend((data.len() as u16).to_be_bytes());
        out.extend(data);
    }
    Some(out)
}
