//! `allowed_targets` entries (host names, addresses, CIDR blocks, each
//! with an optional port) and the targets they let a module reach.

use std::net::IpAddr;

use super::Target;

/// One entry of `allowed_targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Allowed {
    /// A host name, compared without case; `None`: any port.
    Name { host: String, port: Option<u16> },
    /// An address or CIDR block (`prefix` bits), any port unless given.
    Net {
        addr: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

impl Allowed {
    /// `db1`, `db1:5433`, `10.0.0.5`, `10.0.0.5:5432`, `[2001:db8::5]:5432`,
    /// `2001:db8::5`, `10.0.0.0/8`, `2001:db8::/32`.
    pub(super) fn parse(s: &str) -> Result<Allowed, String> {
        let bad = || {
            format!(
                "allowed_targets entry {s:?} is not a host, host:port, address, [IPv6]:port or CIDR block"
            )
        };
        let s = s.trim();
        if let Some((addr, bits)) = s.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = bits.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?;
            return Ok(Allowed::Net {
                addr: addr.to_canonical(),
                prefix,
                port: None,
            });
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Allowed::Net {
                addr: addr.to_canonical(),
                prefix: if addr.is_ipv4() { 32 } else { 128 },
                port: None,
            });
        }
        let t = Target::parse(s).map_err(|_| bad())?;
        if t.dbname.is_some() || s.ends_with('/') {
            return Err(bad());
        }
        let port = (s.starts_with('[') || s.contains(':')).then_some(t.port);
        Ok(match t.host.parse::<IpAddr>() {
            Ok(addr) => Allowed::Net {
                addr: addr.to_canonical(),
                prefix: if addr.is_ipv4() { 32 } else { 128 },
                port,
            },
            Err(_) => Allowed::Name {
                host: t.host.to_ascii_lowercase(),
                port,
            },
        })
    }

    /// Names match names, addresses match addresses: a name is never
    /// resolved here (a DNS answer could change before the connection).
    pub(super) fn permits(&self, target: &Target) -> bool {
        let port_ok = |p: &Option<u16>| !p.is_some_and(|p| p != target.port);
        match (self, target.host.parse::<IpAddr>()) {
            (Allowed::Name { host, port }, Err(_)) => {
                host.eq_ignore_ascii_case(&target.host) && port_ok(port)
            }
            (Allowed::Net { addr, prefix, port }, Ok(ip)) => {
                in_block(ip.to_canonical(), *addr, *prefix) && port_ok(port)
            }
            _ => false,
        }
    }
}

fn in_block(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    shift >= bits || (ip >> shift) == (net >> shift)
}

/// Which targets a module may be used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reach {
    /// `allow_any_target: true`.
    Any,
    /// `allowed_targets`; empty when the module has neither.
    Only(Vec<Allowed>),
}
