//! DKIM signing off the async threads: a pool of one thread a core, so that signing
//! (an RSA-2048 signature is about half a millisecond of a core) uses every core while
//! the async threads go on talking to the relay. Each message is handed over, signed
//! there, and handed back.

use std::{
    sync::{Arc, Mutex},
    thread,
};

use tokio::sync::{mpsc, oneshot};

use crate::sending::dkim::DkimSigner;

type Job = (Vec<u8>, oneshot::Sender<Vec<u8>>);

pub struct SigningPool {
    signer: Arc<DkimSigner>,
    jobs: mpsc::Sender<Job>,
}

impl SigningPool {
    /// Starts `threads` signing threads; they end when the pool is dropped.
    pub fn start(signer: DkimSigner, threads: usize) -> anyhow::Result<Self> {
        let signer = Arc::new(signer);
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>(threads * 64);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let (queue, signer) = (queue.clone(), signer.clone());
            thread::Builder::new()
                .name(format!("dkim-{n}"))
                .spawn(move || {
                    loop {
                        // One thread waits for the next job while the others sign.
                        let job = queue.lock().map(|mut q| q.blocking_recv());
                        let Ok(Some((message, done))) = job else {
                            return;
                        };
                        let _ = done.send(signer.sign(&message));
                    }
                })
                .map_err(|e| anyhow::anyhow!("Failed to start a DKIM signing thread: {e}"))?;
        }
        Ok(Self { signer, jobs })
    }

    /// One thread a core.
    pub fn for_this_machine(signer: DkimSigner) -> anyhow::Result<Self> {
        Self::start(
            signer,
            thread::available_parallelism().map_or(1, |n| n.get()),
        )
    }

    /// The message with its `DKIM-Signature`, signed on a pool thread (or here, should
    /// the pool be gone).
    pub async fn sign(&self, message: Vec<u8>) -> Vec<u8> {
        let (done, signed) = oneshot::channel();
        let job = (message, done);
        match self.jobs.send(job).await {
            Ok(()) => match signed.await {
                Ok(signed) => signed,
                // A thread that took the job and died: it is not tried again there.
                Err(_) => panic!("a DKIM signing thread died while signing"),
            },
            Err(mpsc::error::SendError((message, _))) => self.signer.sign(&message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pool_signs_every_message_it_is_given() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let signer = DkimSigner::from_pem(&pem, "example.org", "s1").unwrap();
        let pool = SigningPool::start(signer, 2).unwrap();
        let message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nHello.\r\n";
        let all =
            futures_util::future::join_all((0..100).map(|_| pool.sign(message.to_vec()))).await;
        for signed in all {
            assert!(signed.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256;"));
            assert!(signed.ends_with(message));
        }
    }
}
