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

/// A TLS server whose certificate no root signed, for the tests of both
/// HTTPS clients (the vendor client's is in `vendors::token`).
#[cfg(test)]
pub(crate) mod untrusted_server {
    use super::https_client;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A TLS server on 127.0.0.1 for "localhost" with a self-signed
    /// certificate made for the test; it answers any request 200 `{}` and
    /// counts the connections it accepted.
    pub(crate) struct UntrustedServer {
        pub port: u16,
        cert: CertificateDer<'static>,
        pub connections: Arc<AtomicUsize>,
    }

    fn aws_lc() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    pub(crate) async fn untrusted_server() -> UntrustedServer {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(aws_lc())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = [0u8; 4096];
                    let _ = tls.read(&mut request).await;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                              content-length: 2\r\nconnection: close\r\n\r\n{}",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        UntrustedServer {
            port,
            cert,
            connections,
        }
    }

    #[tokio::test]
    async fn a_client_that_trusts_the_test_certificate_is_answered() {
        let server = untrusted_server().await;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server.cert.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(aws_lc())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("the handshake succeeds for a client trusting the certificate");
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await.unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 200 OK"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }

    #[tokio::test]
    async fn the_aws_client_refuses_a_certificate_no_amazon_root_signed() {
        use aws_sdk_dynamodb::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
        let server = untrusted_server().await;
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDFAKEFORTESTS",
                "fake-secret-for-tests",
                None,
                None,
                "test",
            ))
            .endpoint_url(format!("https://localhost:{}", server.port))
            .http_client(https_client())
            .retry_config(RetryConfig::disabled())
            .build();
        let error = aws_sdk_dynamodb::Client::from_conf(config)
            .list_tables()
            .send()
            .await
            .expect_err("an untrusted certificate is refused");
        let text = crate::aws::sdk(&error);
        assert!(
            text.contains("invalid peer certificate") && text.contains("UnknownIssuer"),
            "{text}"
        );
        assert!(server.connections.load(Ordering::SeqCst) >= 1, "{text}");
    }
}
