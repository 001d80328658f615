//! How this device reaches its relay: which URLs it accepts, what it trusts there, and a
//! certificate problem told as one sentence naming the host.
//!
//! One trust decision serves both ways the device talks to the relay (HTTP for enrolment and
//! the team's freshness, the sync WebSocket): the platform's trust store plus, optionally, a
//! private CA the team runs. Plain `http://` is for this machine only, unless the device was
//! enrolled with `--insecure`.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use serde::{Deserialize, Serialize};

use super::SyncError;

/// What this device trusts at its relay, kept with the enrolment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trust {
    /// A private certificate authority (PEM) trusted besides the platform's.
    pub ca_pem: Option<String>,
    /// Plain `http://` to a host other than this machine was allowed at enrolment.
    pub insecure: bool,
}

impl Trust {
    /// Read a private CA's certificate file (PEM): it must hold at least one certificate.
    pub fn with_ca_file(self, path: &std::path::Path) -> Result<Trust, SyncError> {
        let source = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|e| SyncError::CaFile {
            path: source.clone(),
            reason: format!("cannot read it: {e}"),
        })?;
        self.with_ca_pem(&pem, &source)
    }

    /// Trust a private CA given as PEM text; `source` says where it came from, for errors.
    pub fn with_ca_pem(mut self, pem: &str, source: &str) -> Result<Trust, SyncError> {
        let bad = |reason: String| SyncError::CaFile {
            path: source.to_string(),
            reason,
        };
        let pem = tidy_pem(pem);
        let certs = pem_certificates(&pem).map_err(bad)?;
        if certs.is_empty() {
            return Err(bad("it holds no PEM certificate".into()));
        }
        self.ca_pem = Some(pem);
        Ok(self)
    }
}

/// A relay URL, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayUrl {
    /// `http(s)://host[:port]`, without a trailing slash.
    pub base: String,
    pub host: String,
    pub tls: bool,
}

impl RelayUrl {
    /// Accept `https://…`, and `http://…` to this machine or when `trust.insecure`.
    pub fn parse(url: &str, trust: &Trust) -> Result<RelayUrl, SyncError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let (tls, rest) = if let Some(rest) = base.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = base.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(SyncError::Unreachable {
                url: base,
                reason: "the relay URL must start with https:// (or http:// on this machine)"
                    .into(),
            });
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host_of(authority);
        if host.is_empty() {
            return Err(SyncError::Unreachable {
                url: base,
                reason: "the relay URL names no host".into(),
            });
        }
        if !tls && !trust.insecure && !is_loopback(&host) {
            return Err(SyncError::Insecure { url: base });
        }
        Ok(RelayUrl { base, host, tls })
    }

    /// The sync WebSocket's address.
    pub fn sync_url(&self) -> String {
        let rest = self
            .base
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&self.base);
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{rest}/v1/sync")
    }
}

/// `host` of `host:port`, `[v6]:port` or `user@host`.
fn host_of(authority: &str) -> String {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default().to_string();
    }
    authority
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// This machine: `localhost` and loopback addresses. Other names are not resolved: what a
/// name points to can change, and "plain text only to this machine" must not.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::Error;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            match e {
                Error::MissingSectionEnd { .. } => "a certificate's BEGIN line has no END line",
                Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
                Error::Base64Decode(_) => "a certificate's text is not valid base64",
                _ => "it is not a PEM certificate",
            }
            .to_string()
        })
}

/// PEM as a person may paste it: copied through a chat or a web form, its line breaks are
/// often lost or doubled. Each BEGIN…END block is rewritten with its base64 on lines of 64,
/// which is what a PEM reader expects; text outside the blocks is dropped.
pub(crate) fn tidy_pem(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let body = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body.find(&end_marker) else {
            // Kept, on lines of its own, for the reader to say what is missing.
            out.push_str(&format!("-----BEGIN {label}-----\n{}\n", body.trim()));
            return out;
        };
        let base64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        out.push_str(&format!("-----BEGIN {label}-----\n"));
        for line in base64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(&end_marker);
        out.push('\n');
        rest = &body[end + end_marker.len()..];
    }
    out
}

/// The platform's trusted roots, read once per process (reading them takes milliseconds).
fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!("reading the platform's trusted certificates: {e}");
        }
        found.certs
    })
}

/// Every certificate this device trusts as a root.
fn roots(trust: &Trust) -> Result<Vec<CertificateDer<'static>>, SyncError> {
    let mut roots = platform_roots().to_vec();
    if let Some(pem) = &trust.ca_pem {
        roots.extend(pem_certificates(pem).map_err(|reason| SyncError::CaFile {
            path: "kept with the enrolment".into(),
            reason,
        })?);
    }
    Ok(roots)
}

/// The TLS client for the sync WebSocket.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, SyncError> {
    let mut store = RootCertStore::empty();
    let (_added, _ignored) = store.add_parsable_certificates(roots(trust)?);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SyncError::Certificate {
            host: "this device".into(),
            reason: e.to_string(),
        })?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An HTTP client for the relay's plain requests, trusting what the WebSocket trusts.
pub fn agent(trust: &Trust, timeout: Duration) -> Result<ureq::Agent, SyncError> {
    let certs: Vec<ureq::tls::Certificate<'static>> = roots(trust)?
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .build()
        .into())
}

/// The TLS failure inside `error`, if that is what it is, as a [`SyncError::Certificate`].
pub fn tls_failure(host: &str, error: &(dyn std::error::Error + 'static)) -> Option<SyncError> {
    let tls = find_rustls(error)?;
    Some(SyncError::Certificate {
        host: host.to_string(),
        reason: describe(tls),
    })
}

fn find_rustls<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    // An io::Error's source() skips the error it wraps: look inside it first.
    if let Some(inner) = error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        && let Some(tls) = find_rustls(inner)
    {
        return Some(tls);
    }
    match error.downcast_ref::<ureq::Error>() {
        Some(ureq::Error::Rustls(tls)) => return Some(tls),
        Some(ureq::Error::Io(io)) => return find_rustls(io),
        _ => {}
    }
    error.source().and_then(find_rustls)
}

fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "its certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "its certificate is not valid yet (is this device's clock right?)".into()
            }
            CertificateError::UnknownIssuer => "its certificate is not signed by an authority \
                this device trusts (a private CA? enrol with --ca-file)"
                .into(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "its certificate is not issued for this host name".into()
            }
            CertificateError::Revoked => "its certificate has been revoked".into(),
            other => format!("its certificate is not acceptable ({other:?})"),
        },
        rustls::Error::InvalidMessage(_) => {
            "it did not answer in TLS (does it serve plain http:// there?)".into()
        }
        other => format!("the TLS handshake failed ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_pasted_without_its_line_breaks_is_tidied_and_junk_is_a_sentence() {
        let long = "QUJD".repeat(20);
        let pasted = format!(
            "from the admin: -----BEGIN CERTIFICATE-----{long}\r\n\r\n==-----END CERTIFICATE----- thanks"
        );
        let tidy = tidy_pem(&pasted);
        let body = format!("{long}==");
        assert_eq!(
            tidy,
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n{}\n-----END CERTIFICATE-----\n",
                &body[..64],
                &body[64..]
            )
        );
        let unended = Trust::default()
            .with_ca_pem("-----BEGIN CERTIFICATE-----QUJD", "the form")
            .unwrap_err()
            .to_string();
        assert_eq!(
            unended,
            "cannot use the CA certificate the form: a certificate's BEGIN line has no END line"
        );
    }

    fn parse(url: &str, insecure: bool) -> Result<RelayUrl, SyncError> {
        RelayUrl::parse(
            url,
            &Trust {
                ca_pem: None,
                insecure,
            },
        )
    }

    #[test]
    fn https_anywhere_plain_http_only_to_this_machine() {
        let url = parse("https://relay.example.com:8443/", false).unwrap();
        assert_eq!(url.host, "relay.example.com");
        assert_eq!(url.sync_url(), "wss://relay.example.com:8443/v1/sync");
        for local in [
            "http://127.0.0.1:7878",
            "http://localhost:1",
            "http://[::1]:80",
        ] {
            let url = parse(local, false).unwrap();
            assert!(!url.tls);
            assert!(url.sync_url().starts_with("ws://"), "{local}");
        }
        for remote in [
            "http://192.168.1.5:7878",
            "http://relay.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(
                matches!(parse(remote, false), Err(SyncError::Insecure { .. })),
                "{remote}"
            );
            assert!(parse(remote, true).is_ok(), "{remote} with --insecure");
        }
        assert!(parse("ftp://relay", true).is_err());
        assert!(parse("https://", false).is_err());
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = Trust::default().with_ca_file(&path).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = Trust::default()
            .with_ca_file(&dir.path().join("missing.pem"))
            .unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
