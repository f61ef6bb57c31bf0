//! DKIM signing (RFC 6376), relaxed/relaxed, with an RSA (`rsa-sha256`) or Ed25519
//! (`ed25519-sha256`, RFC 8463) key. Signs the finished message bytes just before they
//! go to the relay, covering From, To, Subject, Date, Message-ID, the MIME headers and
//! the List-* headers, as RFC 8058 asks for one-click unsubscribe.
//!
//! Our own code on AWS-LC (`aws-lc-rs`, whose RSA is OpenSSL's, and faster than ring's)
//! rather than lettre's `dkim` feature,
//! which brings in the `rsa` and `ed25519-dalek` crates.

use std::path::Path;

use anyhow::Context;
use aws_lc_rs::{
    digest::{SHA256, digest},
    rand::SystemRandom,
    signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};

/// Headers signed when present, in this order.
const SIGNED_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

pub struct DkimSigner {
    domain: String,
    selector: String,
    key: Key,
    rng: SystemRandom,
}

impl DkimSigner {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, RSA or Ed25519, as
    /// `openssl genpkey` writes) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn load(path: &Path, domain: &str, selector: &str) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read the DKIM key {}", path.display()))?;
        Self::from_pem(&pem, domain, selector)
            .with_context(|| format!("The DKIM key {} is not usable", path.display()))
    }

    pub fn from_pem(pem: &str, domain: &str, selector: &str) -> anyhow::Result<Self> {
        let (label, der) = pem_der(pem)?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => Key::Rsa(
                RsaKeyPair::from_der(&der).map_err(|e| anyhow::anyhow!("not an RSA key: {e}"))?,
            ),
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(key) => Key::Rsa(key),
                Err(_) => Key::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(
                    |e| anyhow::anyhow!("neither an RSA nor an Ed25519 PKCS#8 key: {e}"),
                )?),
            },
            other => anyhow::bail!("expected a PEM private key, found {other:?}"),
        };
        anyhow::ensure!(
            !domain.is_empty() && !selector.is_empty(),
            "the DKIM domain and selector must not be empty"
        );
        Ok(DkimSigner {
            domain: domain.to_owned(),
            selector: selector.to_owned(),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// Where the public key goes in DNS (`selector._domainkey.domain`) and the TXT
    /// record to publish there: for RSA, the key as `openssl pkey -pubout` writes it
    /// (SubjectPublicKeyInfo); for Ed25519, its 32 bytes (RFC 8463).
    pub fn dns_record(&self) -> (String, String) {
        use base64::Engine;
        let name = format!("{}._domainkey.{}", self.selector, self.domain);
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let value = match &self.key {
            Key::Rsa(key) => {
                let spki = rsa_spki(aws_lc_rs::signature::KeyPair::public_key(key).as_ref());
                format!("v=DKIM1; k=rsa; p={}", encode(&spki))
            }
            Key::Ed25519(key) => format!(
                "v=DKIM1; k=ed25519; p={}",
                encode(aws_lc_rs::signature::KeyPair::public_key(key).as_ref())
            ),
        };
        (name, value)
    }

    /// The message with a `DKIM-Signature` header in front of it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign_at(message, SIGNED_HEADERS, now)
    }

    /// Signs the `names` headers that the message has, in that order.
    fn sign_at(&self, message: &[u8], names: &[&str], timestamp: u64) -> Vec<u8> {
        let (headers, body) = split_message(message);
        let fields = header_fields(headers);
        let signed: Vec<&[u8]> = names
            .iter()
            .filter_map(|name| {
                // The last instance of a field is the one a verifier takes first.
                fields
                    .iter()
                    .rev()
                    .find(|field| field_name(field).eq_ignore_ascii_case(name.as_bytes()))
                    .copied()
            })
            .collect();
        let names: Vec<String> = signed
            .iter()
            .map(|field| String::from_utf8_lossy(field_name(field)).to_ascii_lowercase())
            .collect();
        let algorithm = match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        let body_hash = BASE64.encode(digest(&SHA256, &relaxed_body(body)));
        let value = format!(
            "v=1; a={algorithm}; d={}; s={};\r\n c=relaxed/relaxed; q=dns/txt; t={timestamp}; h={};\r\n bh={body_hash};\r\n b=",
            self.domain,
            self.selector,
            names.join(":"),
        );

        let mut data = Vec::with_capacity(1024);
        for field in &signed {
            relaxed_header(field, &mut data);
        }
        relaxed_header(format!("DKIM-Signature: {value}").as_bytes(), &mut data);
        data.truncate(data.len() - 2); // the signature's own header, without its CRLF
        let signature = match &self.key {
            Key::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &self.rng, &data, &mut signature)
                    .expect("RSA signing fails only for a buffer of the wrong size");
                signature
            }
            Key::Ed25519(key) => key.sign(digest(&SHA256, &data).as_ref()).as_ref().to_vec(),
        };

        let mut out = Vec::with_capacity(message.len() + value.len() + 400);
        out.extend_from_slice(b"DKIM-Signature: ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(BASE64.encode(signature).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(message);
        out
    }
}

/// The DER inside a PEM block, and the block's label.
fn pem_der(pem: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ").context("no PEM block")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").context("a broken PEM header")?;
    let end = rest
        .find(&format!("-----END {label}-----"))
        .context("a PEM block without its end line")?;
    let text: String = rest[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = BASE64.decode(text).context("the PEM block is not base64")?;
    Ok((label.to_owned(), der))
}

/// Header section (with its last CRLF) and body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, b""),
    }
}

/// Each header field with its folded lines, without the final CRLF.
fn header_fields(headers: &[u8]) -> Vec<&[u8]> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < headers.len() {
        let line_end = headers[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(headers.len(), |p| at + p);
        let next = (line_end + 2).min(headers.len());
        let continues = matches!(headers.get(next), Some(b' ' | b'\t'));
        if !continues {
            fields.push(&headers[start..line_end]);
            start = next;
        }
        at = next;
    }
    fields
}

fn field_name(field: &[u8]) -> &[u8] {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    field[..colon].trim_ascii_end()
}

/// An RSA public key (PKCS#1 `RSAPublicKey`, DER) inside a SubjectPublicKeyInfo.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match body.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(body);
        out
    }
    // SEQUENCE { OID 1.2.840.113549.1.1.1 (rsaEncryption), NULL }
    const RSA_ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = RSA_ALGORITHM.to_vec();
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// RFC 6376 3.4.2: lower-case name, unfolded value, runs of whitespace as one space,
/// none at either end of the value, then CRLF.
pub fn relaxed_header(field: &[u8], out: &mut Vec<u8>) {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    out.extend(field_name(field).iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or_default();
    let mut space = false;
    for &byte in value.trim_ascii() {
        match byte {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(byte);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// RFC 6376 3.4.4: runs of whitespace as one space, none at a line's end, no empty
/// lines at the end, and a CRLF after the last line.
pub fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut empty_lines = 0;
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if lines.peek().is_none() && line.is_empty() {
            break; // what follows the last CRLF
        }
        let mut canonical = Vec::with_capacity(line.len());
        let mut space = false;
        for &byte in line {
            if byte == b' ' || byte == b'\t' {
                space = true;
            } else {
                if space {
                    canonical.push(b' ');
                    space = false;
                }
                canonical.push(byte);
            }
        }
        if canonical.is_empty() {
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        empty_lines = 0;
        out.extend_from_slice(&canonical);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::KeyPair;
    use ring::signature::{ED25519, UnparsedPublicKey};

    #[test]
    fn relaxed_body_matches_the_rfc() {
        assert_eq!(
            relaxed_body(b" C \r\nD \t E\r\n\tF\r\n\t\r\n\r\n\r\n"),
            b" C\r\nD E\r\n F\r\n"
        );
        assert_eq!(relaxed_body(b"a\r\n\r\nb"), b"a\r\n\r\nb\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
    }

    #[test]
    fn relaxed_header_unfolds_and_squeezes() {
        let mut out = Vec::new();
        relaxed_header(b"Subject : A  \t day\r\n  out ", &mut out);
        assert_eq!(out, b"subject:A day out\r\n");
    }

    #[test]
    fn folded_fields_stay_together() {
        let fields = header_fields(b"A: 1\r\nB: 2\r\n 3\r\nC: 4\r\n");
        assert_eq!(fields, [&b"A: 1"[..], b"B: 2\r\n 3", b"C: 4"]);
    }

    /// The key, message and signature of lettre's own `rsa` relaxed/relaxed test
    /// (src/message/dkim.rs): an independent implementation on another RSA crate.
    /// PKCS#1 v1.5 signatures are deterministic, so ours must match to the byte.
    #[test]
    fn reproduces_an_independent_rsa_signature() {
        let signer = DkimSigner::from_pem(LETTRE_TEST_KEY, "example.org", "dkimtest").unwrap();
        let message = concat!(
            "From: =?utf-8?b?VGVzdCBPJ0xlYXJ5?= <test+ezrz@example.net>\r\n",
            "To: Test2 <test2@example.org>\r\n",
            "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n",
            "Test: test  test very very long with spaces and extra spaces   \twill be\r\n",
            " folded to several lines \r\n",
            "Subject: Test with utf-8 =?utf-8?b?w6s=?=\r\n",
            "Content-Transfer-Encoding: 7bit\r\n",
            "\r\n",
            "test\r\n\r\ntest   \ttest\r\n\r\n\r\n",
        );
        let names = ["date", "from", "subject", "to"];
        let signed = String::from_utf8(signer.sign_at(message.as_bytes(), &names, 0)).unwrap();
        assert_eq!(
            signed,
            concat!(
                "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=dkimtest;\r\n",
                " c=relaxed/relaxed; q=dns/txt; t=0; h=date:from:subject:to;\r\n",
                " bh=qN8je6qJgWFGSnN2MycC/XKPbN6BOrMJyAX2h4m19Ss=;\r\n",
                " b=YaVfmH8dbGEywoLJ4uhbvYqDyQG1UGKFH3PE7zXGgk+YFxUgkwWjoA3aQupDNQtfTjfUsNe0dnrjyZP+ylnESpZBpbCIf5/n3FEh6j3RQthqNbQblcfH/U8mazTuRbVjYBbTZQDaQCMPTz+8D+ZQfXo2oq6dGzTuGvmuYft0CVsq/BIp/EkhZHqiphDeVJSHD4iKW8+L2XwEWThoY92xOYc1G0TtBwz2UJgtiHX2YulH/kRBHeK3dKn9RTNVL3VZ+9ZrnFwIhET9TPGtU2I+q0EMSWF9H9bTrASMgW/U+E0VM2btqJlrTU6rQ7wlQeHdwecLnzXcyhCUInF1+veMNw==\r\n",
            )
            .to_owned()
                + message
        );
    }

    #[test]
    fn an_ed25519_signature_verifies_with_the_public_key() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            BASE64.encode(pkcs8.as_ref())
        );
        let signer = DkimSigner::from_pem(&pem, "example.org", "news").unwrap();
        let message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nBody\r\n";
        let signed = signer.sign_at(message, SIGNED_HEADERS, 1_800_000_000);
        let text = String::from_utf8(signed).unwrap();
        let (dkim, _) = text.split_once("\r\nFrom:").unwrap();
        let (unsigned, b) = dkim.rsplit_once("\r\n b=").unwrap();
        let mut data = Vec::new();
        relaxed_header(b"From: a@example.org", &mut data);
        relaxed_header(b"To: b@example.org", &mut data);
        relaxed_header(b"Subject: Hi", &mut data);
        relaxed_header(format!("{unsigned}\r\n b=").as_bytes(), &mut data);
        data.truncate(data.len() - 2);
        UnparsedPublicKey::new(&ED25519, public)
            .verify(digest(&SHA256, &data).as_ref(), &BASE64.decode(b).unwrap())
            .expect("the signature verifies");
        assert!(dkim.contains("a=ed25519-sha256; d=example.org; s=news;"));
        assert!(dkim.contains("h=from:to:subject;"));
    }

    #[test]
    fn refuses_what_is_not_a_private_key() {
        assert!(DkimSigner::from_pem("not a key", "example.org", "s").is_err());
        let certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(DkimSigner::from_pem(certificate, "example.org", "s").is_err());
    }

    const LETTRE_TEST_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAwOsW7UFcWn1ch3UM8Mll5qZH5hVHKJQ8Z0tUlebUECq0vjw6
VcsIucZ/B70VpCN63whyi7oApdCIS1o0zad7f0UaW/BfxXADqdcFL36uMaG0RHer
uSASjQGnsl9Kozt/dXiDZX5ngjr/arLJhNZSNR4/9VSwqbE2OPXaSaQ9BsqneD0P
8dCVSfkkDZCcfC2864z7hvC01lFzWQKF36ZAoGBERHScHtFMAzUOgGuqqPiP5khw
DQB3Ffccf+BsWLU2OOteshUwTGjpoangbPCYj6kckwNm440lQwuqTinpC92yyIE5
Ol8psNMW49DLowAeZb6JrjLhD+wY9bghTaOkcwIDAQABAoIBAHTZ8LkkrdvhsvoZ
XA088AwVC9fBa6iYoT2v0zw45JomQ/Q2Zt8wa8ibAradQU56byJI65jWwS2ucd+y
c+ldWOBt6tllb50XjCCDrRBnmvtVBuux0MIBOztNlVXlgj/8+ecdZ/lB51Bqi+sF
ACsF5iVmfTcMZTVjsYQu5llUseI6Lwgqpx6ktaXD2PVsVo9Gf01ssZ4GCy69wB/3
20CsOz4LEpSYkq1oE98lMMGCfD7py3L9kWHYNNisam78GM+1ynRxRGwEDUbz6pxs
fGPIAwHLaZsOmibPkBB0PJTW742w86qQ8KAqC6ZbRYOF19rSMj3oTfRnPMHn9Uu5
N8eQcoECgYEA97SMUrz2hqII5i8igKylO9kV8pjcIWKI0rdt8MKj4FXTNYjjO9I+
41ONOjhUOpFci/G3YRKi8UiwbKxIRTvIxNMh2xj6Ws3iO9gQHK1j8xTWxJdjEBEz
EuZI59Mi5H7fxSL1W+n8nS8JVsaH93rvQErngqTUAsihAzjxHWdFwm0CgYEAx2Dh
claESJP2cOKgYp+SUNwc26qMaqnl1f37Yn+AflrQOfgQqJe5TRbicEC+nFlm6XUt
3st1Nj29H0uOMmMZDmDCO+cOs5Qv5A9pG6jSC6wM+2KNHQDtrxlakBFygePEPVVy
GXaY9DRa9Q4/4ataxDR2/VvIAWfEEtMTJIBDtl8CgYAIXEuwLziS6r0qJ8UeWrVp
A7a97XLgnZbIpfBMBAXL+JmcYPZqenos6hEGOgh9wZJCFvJ9kEd3pWBvCpGV5KKu
IgIuhvVMQ06zfmNs1F1fQwDMud9aF3qF1Mf5KyMuWynqWXe2lns0QvYpu6GzNK8G
mICf5DhTr7nfhfh9aZLtMQKBgCxKsmqzG5n//MxhHB4sstVxwJtwDNeZPKzISnM8
PfBT/lQSbqj1Y73japRjXbTgC4Ore3A2JKjTGFN+dm1tJGDUT/H8x4BPWEBCyCfT
3i2noA6sewrJbQPsDvlYVubSEYNKmxlbBmmhw98StlBMv9I8kX6BSDI/uggwid0e
/WvjAoGBAKpZ0UOKQyrl9reBiUfrpRCvIMakBMd79kNiH+5y0Soq/wCAnAuABayj
XEIBhFv+HxeLEnT7YV+Zzqp5L9kKw/EU4ik3JX/XsEihdSxEuGX00ZYOw05FEfpW
cJ5Ku0OTwRtSMaseRPX+T4EfG1Caa/eunPPN4rh+CSup2BVVarOT
-----END RSA PRIVATE KEY-----";
}
