//! Who is at the other end of a request: the connection's peer, and the client address a
//! configured proxy forwards (`FV_TRUSTED_PROXIES`). Rate limits key on [`ClientIp`]; absolute
//! links trust `X-Forwarded-*` headers only when [`ClientIp::via_trusted_proxy`] says so.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The TCP peer of the connection a request arrived on, set by the connection loop.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// The client's address as resolved through trusted proxies, set by [`resolve`] on every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp {
    /// The client: the peer, or behind trusted proxies the nearest untrusted forwarded address.
    pub ip: IpAddr,
    /// The peer is a configured proxy, so its `X-Forwarded-Proto`/`X-Forwarded-Host` may be believed.
    pub via_trusted_proxy: bool,
}

/// The networks whose `X-Forwarded-For` (and `-Proto`, `-Host`) are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// The proxies of `FV_TRUSTED_PROXIES`.
    pub fn new(nets: &[IpNet]) -> Self {
        TrustedProxies(nets.into())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: when the peer is trusted, walk `X-Forwarded-For` from the right
    /// (the entry the nearest proxy appended) past trusted hops to the first untrusted address.
    /// A malformed entry stops the walk at the last address known good, so a client cannot
    /// choose its own address by prepending entries.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        if !self.trusts(peer) {
            return ClientIp { ip: peer.to_canonical(), via_trusted_proxy: false };
        }
        let mut ip = peer.to_canonical();
        let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
        for hop in hops.iter().rev().flat_map(|v| v.rsplit(',')) {
            let Ok(hop) = hop.trim().parse::<IpAddr>() else { break };
            ip = hop.to_canonical();
            if !self.trusts(ip) {
                break;
            }
        }
        ClientIp { ip, via_trusted_proxy: true }
    }
}

/// Parses one entry of `FV_TRUSTED_PROXIES`: an IP address or a CIDR network.
pub fn parse_trusted_proxy(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{entry}` is neither an IP address nor a CIDR network"))
}

/// Middleware: sets [`ClientIp`] from the connection's [`Peer`] (loopback when a request comes
/// without one, e.g. from an in-process call).
pub async fn resolve(proxies: TrustedProxies, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<Peer>().map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
    let client = proxies.resolve(peer, req.headers());
    req.extensions_mut().insert(client);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().expect("header"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let nets = ["10.0.0.0/8", " 192.168.1.1"].map(|s| parse_trusted_proxy(s).expect("parse"));
        let proxies = TrustedProxies::new(&nets);
        // An untrusted peer is the client whatever it claims.
        let c = proxies.resolve(ip("203.0.113.9"), &headers(&["1.2.3.4"]));
        assert_eq!(c, ClientIp { ip: ip("203.0.113.9"), via_trusted_proxy: false });
        // Behind a trusted proxy: the rightmost untrusted entry, not the client's own first entry.
        let c = proxies.resolve(ip("10.1.1.1"), &headers(&["6.6.6.6, 198.51.100.7", "10.2.2.2"]));
        assert_eq!(c, ClientIp { ip: ip("198.51.100.7"), via_trusted_proxy: true });
        // A malformed hop stops the walk at the last good address.
        let c = proxies.resolve(ip("192.168.1.1"), &headers(&["6.6.6.6, junk, 10.3.3.3"]));
        assert_eq!(c.ip, ip("10.3.3.3"));
        // No header: the proxy itself.
        assert_eq!(proxies.resolve(ip("10.1.1.1"), &HeaderMap::new()).ip, ip("10.1.1.1"));
        // IPv4-mapped IPv6 peers are matched as IPv4.
        assert!(proxies.resolve(ip("::ffff:10.0.0.5"), &HeaderMap::new()).via_trusted_proxy);
    }

    #[test]
    fn the_setting_names_a_bad_entry() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: crate::config::Config,
        }
        let cli = Cli::try_parse_from(["fv", "--trusted-proxies", "::1,127.0.0.1/32"]).expect("parse");
        assert_eq!(cli.config.trusted_proxies.len(), 2);
        assert!(crate::config::Config::default().trusted_proxies.is_empty());
        let Err(e) = Cli::try_parse_from(["fv", "--trusted-proxies", "10.0.0.0/8,nope"]) else { panic!("accepted") };
        assert!(e.to_string().contains("`nope`"), "{e}");
    }
}
