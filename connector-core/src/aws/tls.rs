//! The AWS SDK's HTTPS client. One TLS stack for the whole connector: rustls
//! on aws-lc-rs, here and in the vendor client (`vendors::token`).
//!
//! AWS service endpoints present certificates of Amazon Trust Services, so
//! the SDK trusts those roots alone, compiled in: nothing is read from the
//! system's certificate store (the SDK's default reads and parses it for
//! every client it builds, the bulk of a function's start-up). The roots are
//! <https://www.amazontrust.com/repository/>: Amazon Root CA 1–4 and the
//! Starfield Services Root CA - G2 that cross-signs them.

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Amazon Trust Services' root certificates (PEM).
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("amazon-trust-services.pem");

/// The HTTPS client every AWS SDK client of the connector uses.
pub fn https_client() -> SharedHttpClient {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context of PEM roots builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{pem::PemObject, CertificateDer};

    #[test]
    fn the_aws_roots_are_amazon_trust_services_five_root_cas() {
        let certs: Vec<CertificateDer> =
            CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
                .collect::<Result<_, _>>()
                .expect("PEM");
        let mut store = rustls::RootCertStore::empty();
        let (valid, invalid) = store.add_parsable_certificates(certs);
        assert_eq!((valid, invalid), (5, 0));
        let subjects: Vec<String> = store
            .roots
            .iter()
            .map(|anchor| String::from_utf8_lossy(anchor.subject.as_ref()).into_owned())
            .collect();
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert_eq!(
                subjects.iter().filter(|s| s.contains(name)).count(),
                1,
                "{name} in {subjects:?}"
            );
        }
    }
}
