//! A private certificate authority for tests, and certificates it issues for the relay.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};

/// A test CA: its certificate (PEM) is what a device is told to trust.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// How a certificate the CA issues is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Current,
    /// Ended in 2021.
    Expired,
}

impl TestCa {
    pub fn new(name: &str) -> anyhow::Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ok(TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Write the CA's certificate to `path` (what `--ca-file` takes).
    pub fn write(&self, path: &Path) -> anyhow::Result<PathBuf> {
        std::fs::write(path, self.pem())?;
        Ok(path.to_path_buf())
    }

    /// Issue a certificate for `hosts` (names or IP addresses) and write it and its key as
    /// `cert.pem` and `key.pem` in `dir`; returns their paths.
    pub fn issue(
        &self,
        dir: &Path,
        hosts: &[&str],
        validity: Validity,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("relay"),
        );
        if validity == Validity::Expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        std::fs::create_dir_all(dir)?;
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok((cert_path, key_path))
    }
}
