//! A team's own certificate authority, for a relay on a LAN or a first deployment without a
//! public certificate: `fieldbook-relay tls-ca` makes the CA once (its key stays in the
//! folder, owner-only) and issues the relay's certificate for the names devices use. Devices
//! trust it with `fieldbook enroll … --ca-file ca.pem`. Running it again renews the relay's
//! certificate under the same CA, so enrolled devices keep trusting it.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("cannot make the certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("give at least one host name or address the devices use (--host)")]
    NoHost,
}

/// What `issue` wrote.
#[derive(Debug)]
pub struct Issued {
    /// The CA's certificate: what devices trust.
    pub ca: PathBuf,
    /// The relay's certificate chain and key: `serve --tls-cert … --tls-key …`.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA was made now (else an existing one signed).
    pub new_ca: bool,
}

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const RELAY_CERT: &str = "relay.pem";
const RELAY_KEY: &str = "relay-key.pem";

/// Issue a certificate for `hosts`, valid `days`, under the CA in `dir` (made if missing).
pub fn issue(dir: &Path, hosts: &[String], days: u32) -> Result<Issued, CaError> {
    if hosts.is_empty() {
        return Err(CaError::NoHost);
    }
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| CaError::File {
            path,
            reason: e.to_string(),
        }
    };
    std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    let now = time::OffsetDateTime::now_utc();
    let (ca_cert, ca_key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let new_ca = !ca_key.exists();
    let (issuer, ca_pem) = if new_ca {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, "Fieldbook relay CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now;
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key)?;
        write_private(&ca_key, &key.serialize_pem())?;
        std::fs::write(&ca_cert, cert.pem()).map_err(file_error(&ca_cert))?;
        (Issuer::new(params, key), cert.pem())
    } else {
        let read = |p: &Path| std::fs::read_to_string(p).map_err(file_error(p));
        let pem = read(&ca_cert)?;
        let key = KeyPair::from_pem(&read(&ca_key)?)?;
        (Issuer::from_ca_cert_pem(&pem, key)?, pem)
    };
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, hosts[0].as_str());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days.max(1)));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let (cert_path, key_path) = (dir.join(RELAY_CERT), dir.join(RELAY_KEY));
    write_private(&key_path, &key.serialize_pem())?;
    // The chain: the relay's certificate, then the CA's (harmless for devices that trust it).
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca_pem))
        .map_err(file_error(&cert_path))?;
    Ok(Issued {
        ca: ca_cert,
        cert: cert_path,
        key: key_path,
        new_ca,
    })
}

/// Write `text` to `path` readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), CaError> {
    use std::io::Write;
    let error = |e: std::io::Error| CaError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(error)?;
    // A key file left from an earlier run keeps its mode when reopened: set it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(error)?;
    }
    file.write_all(text.as_bytes()).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewal_keeps_the_ca_devices_trust() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["127.0.0.1".to_string(), "relay.lan".to_string()];
        let first = issue(dir.path(), &hosts, 30).unwrap();
        assert!(first.new_ca);
        let ca = std::fs::read(&first.ca).unwrap();
        let cert = std::fs::read(&first.cert).unwrap();
        let again = issue(dir.path(), &hosts, 30).unwrap();
        assert!(!again.new_ca);
        assert_eq!(std::fs::read(&again.ca).unwrap(), ca);
        assert_ne!(std::fs::read(&again.cert).unwrap(), cert);
        assert!(matches!(issue(dir.path(), &[], 30), Err(CaError::NoHost)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in [dir.path().join(CA_KEY), again.key] {
                let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            }
        }
    }
}
