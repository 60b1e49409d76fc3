//! Traefik's servers transports, compiled: the rustls client configuration (system or given
//! CAs, `insecureSkipVerify`, client certificates, ALPN unless `disableHTTP2`), the pool
//! limits and the forwarding timeouts; and connecting to one server with them (TCP with the
//! dial timeout, then TLS for `https`, then an HTTP/1.1 or HTTP/2 handshake).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use monoio_compat::hyper::{MonoioExecutor, MonoioIo, MonoioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use weir_proto::snapshot::{Scheme, ServersTransport};

use super::pool::{Sender, UpstreamError};
use crate::service::body::UpstreamBody;

/// Go's `http.DefaultMaxIdleConnsPerHost`, used when a transport says 0.
const GO_DEFAULT_IDLE_PER_HOST: usize = 2;
/// Go's `http.Transport.TLSHandshakeTimeout` as Traefik sets it.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A compiled servers transport.
#[derive(Debug)]
pub struct Transport {
    /// Its name.
    pub name: String,
    tls: Arc<ClientConfig>,
    server_name: Option<String>,
    /// Idle connections kept per server (0: none).
    pub max_idle: usize,
    /// TCP connect timeout.
    pub dial_timeout: Duration,
    /// Time allowed for the response head.
    pub response_header_timeout: Option<Duration>,
    /// Lifetime of an idle pooled connection.
    pub idle_timeout: Option<Duration>,
    /// HTTP/2 health pings: (interval without received frames, time to wait for the answer).
    h2_ping: Option<(Duration, Duration)>,
}

impl Transport {
    /// Builds the transport; errors name what is wrong (bad PEM, bad key).
    pub fn build(t: &ServersTransport) -> Result<Transport, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let roots = if t.root_cas.is_empty() {
            system_roots()
        } else {
            let mut roots = RootCertStore::empty();
            for pem in &t.root_cas {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| format!("rootCAs: {e}"))?;
                    roots.add(cert).map_err(|e| format!("rootCAs: {e}"))?;
                }
            }
            roots
        };
        let check = match (t.insecure_skip_verify, &t.peer_cert_uri) {
            (true, _) => Ok(CertCheck::Any),
            (false, Some(uri)) => Ok(CertCheck::PeerUri { roots: Arc::new(roots), uri: uri.clone() }),
            (false, None) => Err(roots),
        };
        let builder = match check {
            Ok(check) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(CustomVerification { check, provider })),
            Err(roots) => builder.with_root_certificates(roots),
        };
        let mut config = match t.certificates.first() {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("certificatesSecrets: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .map_err(|e| format!("certificatesSecrets: {e}"))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| format!("certificatesSecrets: {e}"))?
            }
        };
        config.alpn_protocols = if t.disable_http2 {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        Ok(Transport {
            name: t.name.clone(),
            tls: Arc::new(config),
            server_name: t.server_name.clone(),
            max_idle: match t.max_idle_conns_per_host {
                n if n < 0 => 0,
                0 => GO_DEFAULT_IDLE_PER_HOST,
                n => n as usize,
            },
            dial_timeout: ms(t.dial_timeout_ms).unwrap_or(Duration::from_secs(30)),
            response_header_timeout: ms(t.response_header_timeout_ms),
            idle_timeout: ms(t.idle_conn_timeout_ms),
            h2_ping: ms(t.read_idle_timeout_ms)
                .map(|interval| (interval, ms(t.ping_timeout_ms).unwrap_or(Duration::from_secs(15)))),
        })
    }

    /// The TLS configuration restricted to HTTP/1.1, for upgraded (WebSocket) connections.
    pub fn http1_tls(&self) -> Arc<ClientConfig> {
        crate::http::upgrade::http1_only(&self.tls)
    }

    /// The TLS server name for a server whose URL host is `host`.
    pub fn server_name<'a>(&'a self, host: &'a str) -> &'a str {
        self.server_name.as_deref().unwrap_or(host)
    }

    /// Opens a connection to `addr` and shakes hands as `scheme` says.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        scheme: Scheme,
        host: &str,
    ) -> Result<Sender, UpstreamError> {
        let stream = monoio::time::timeout(self.dial_timeout, monoio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| UpstreamError::DialTimeout { addr })?
            .map_err(|source| UpstreamError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let io = stream.try_into_poll_io().map_err(|(source, _)| UpstreamError::Connect { addr, source })?;
        match scheme {
            Scheme::Http => handshake(MonoioIo::new(io), false, addr, self.h2_ping).await,
            Scheme::H2c => handshake(MonoioIo::new(io), true, addr, self.h2_ping).await,
            Scheme::Https => {
                let name = self.server_name(host);
                let name =
                    ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']').to_string())
                        .map_err(|e| UpstreamError::Tls {
                            addr,
                            reason: format!("server name {name}: {e}"),
                        })?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
                let tls = monoio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connector.connect(name, io))
                    .await
                    .map_err(|_| UpstreamError::DialTimeout { addr })?
                    .map_err(|e| UpstreamError::Tls { addr, reason: e.to_string() })?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                handshake(MonoioIo::new(tls), h2, addr, self.h2_ping).await
            }
        }
    }
}

async fn handshake<T>(
    io: MonoioIo<T>,
    h2: bool,
    addr: SocketAddr,
    h2_ping: Option<(Duration, Duration)>,
) -> Result<Sender, UpstreamError>
where
    T: monoio::io::poll_io::AsyncRead + monoio::io::poll_io::AsyncWrite + Unpin + 'static,
{
    let http = |source| UpstreamError::Http { addr, source };
    if h2 {
        let mut builder = http2::Builder::new(MonoioExecutor);
        builder.timer(MonoioTimer);
        // Traefik's readIdleTimeout/pingTimeout: hyper pings once no frame arrived for the
        // interval (pooled idle connections too) and closes the connection when the answer
        // does not come in time, so a dead backend connection is not reused.
        if let Some((interval, timeout)) = h2_ping {
            builder.keep_alive_interval(interval).keep_alive_timeout(timeout).keep_alive_while_idle(true);
        }
        let (sender, conn) = builder.handshake::<_, UpstreamBody>(io).await.map_err(http)?;
        monoio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, "upstream h2 connection ended: {e}");
            }
        });
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = http1::Builder::new().handshake::<_, UpstreamBody>(io).await.map_err(http)?;
        monoio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, "upstream connection ended: {e}");
            }
        });
        Ok(Sender::H1(sender))
    }
}

/// The system's CA certificates, loaded once per process.
fn system_roots() -> RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            for e in &loaded.errors {
                tracing::warn!("system CA certificates: {e}");
            }
            let (added, _) = roots.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, "system CA certificates loaded");
            roots
        })
        .clone()
}

/// The server-certificate checks a transport makes instead of rustls' default (chain to a
/// root + host name). Signatures are always checked, so a handshake stays a handshake.
#[derive(Debug)]
enum CertCheck {
    /// `insecureSkipVerify`: any certificate is accepted.
    Any,
    /// Traefik's `peerCertURI`: the chain must lead to one of `roots`, and the server's
    /// certificate must carry `uri` among its subject alternative names; the host name is not
    /// compared.
    PeerUri { roots: Arc<RootCertStore>, uri: String },
}

#[derive(Debug)]
struct CustomVerification {
    check: CertCheck,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for CustomVerification {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.check {
            CertCheck::Any => Ok(ServerCertVerified::assertion()),
            CertCheck::PeerUri { roots, uri } => {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    roots,
                    intermediates,
                    now,
                    self.provider.signature_verification_algorithms.all,
                )?;
                if has_uri_san(end_entity, uri) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!("certificate has no URI SAN {uri}")))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether the certificate lists `uri` among its URI subject alternative names.
fn has_uri_san(cert: &CertificateDer<'_>, uri: &str) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else { return false };
    let Ok(Some(san)) = parsed.subject_alternative_name() else { return false };
    san.value
        .general_names
        .iter()
        .any(|n| matches!(n, x509_parser::extensions::GeneralName::URI(u) if *u == uri))
}
