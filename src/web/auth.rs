//! Basic auth and response headers for every path (the web config's
//! `basic_auth_users` and `http_server_config.headers`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::config::WebConfig;

/// Verified credentials remembered (digests only); more distinct ones start the cache afresh.
const CACHE_ENTRIES: usize = 64;
/// Requests that may wait for the one bcrypt run at a time. More are
/// answered 429 at once: a flood of wrong passwords then costs a correct,
/// not yet cached login at most this many bcrypt runs of waiting (or a 429
/// that the next scrape retries), instead of the whole flood's.
const BCRYPT_QUEUE: usize = 8;

/// State of the auth-and-headers middleware.
pub struct Guard {
    users: HashMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Digests of recently verified user:password pairs (keyed by `salt`),
    /// so a scrape every 15 s costs a SHA-256, not a bcrypt run.
    verified: Mutex<Vec<[u8; 32]>>,
    salt: [u8; 32],
    /// One bcrypt run at a time: wrong passwords can burn one core, not all.
    bcrypt_turn: tokio::sync::Semaphore,
    /// Requests waiting for or holding `bcrypt_turn` (at most `BCRYPT_QUEUE`).
    bcrypt_queue: std::sync::atomic::AtomicUsize,
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Too many requests waiting for a bcrypt check: try again shortly.
    Busy,
}

/// Gives back a place in the bcrypt queue, however the check ends.
struct QueuePlace<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Guard {
    pub fn new(config: &WebConfig) -> Arc<Guard> {
        let mut salt = [0u8; 32];
        // ring's system RNG; only fails where the OS has none.
        let _ = rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut salt);
        Arc::new(Guard {
            users: config.users.iter().map(|(u, h)| (u.clone(), h.clone())).collect(),
            headers: config.headers.clone(),
            verified: Mutex::new(Vec::new()),
            salt,
            bcrypt_turn: tokio::sync::Semaphore::new(1),
            bcrypt_queue: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn digest(&self, user: &str, password: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update((user.len() as u64).to_be_bytes());
        h.update(user.as_bytes());
        h.update(password);
        h.finalize().into()
    }

    /// Whether the request carries the right user and password.
    pub async fn authorized(&self, headers: &HeaderMap) -> bool {
        self.check(headers).await == Verdict::Allowed
    }

    /// Checks the request's credentials: a remembered digest at once, else
    /// one bcrypt run, waiting behind at most `BCRYPT_QUEUE` others.
    pub async fn check(&self, headers: &HeaderMap) -> Verdict {
        use std::sync::atomic::Ordering;
        let Some((user, password)) = basic_credentials(headers) else {
            return Verdict::Denied;
        };
        let digest = self.digest(&user, &password);
        let cached = {
            let verified = self.verified.lock().unwrap();
            // Every entry is compared, in constant time, so the time taken
            // says nothing about which entry matched.
            verified
                .iter()
                .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&digest))
        };
        if bool::from(cached) {
            return Verdict::Allowed;
        }
        // An unknown user still costs one bcrypt run (against some real hash,
        // result ignored), so timing does not tell which users exist.
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => match self.users.values().next() {
                Some(h) => (h.clone(), false),
                None => return Verdict::Denied,
            },
        };
        let _place = QueuePlace(&self.bcrypt_queue);
        if self.bcrypt_queue.fetch_add(1, Ordering::AcqRel) >= BCRYPT_QUEUE {
            return Verdict::Busy;
        }
        let Ok(_turn) = self.bcrypt_turn.acquire().await else {
            return Verdict::Denied;
        };
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok && known {
            let mut verified = self.verified.lock().unwrap();
            if verified.len() >= CACHE_ENTRIES {
                verified.clear();
            }
            verified.push(digest);
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }
}

/// `Authorization: Basic base64(user:password)` → (user, password bytes).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// Middleware: basic auth on every path when users are configured, and the
/// configured response headers on every response (401s included).
pub async fn guard(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let verdict = if guard.users.is_empty() {
        Verdict::Allowed
    } else {
        guard.check(req.headers()).await
    };
    let mut resp = match verdict {
        Verdict::Allowed => next.run(req).await,
        Verdict::Denied => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            "Unauthorized\n",
        )
            .into_response(),
        Verdict::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "Too many password checks waiting; try again\n",
        )
            .into_response(),
    };
    for (name, value) in &guard.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// `router` behind `guard`, when the web config asks for auth or headers.
pub fn protect(router: Router, config: &WebConfig) -> Router {
    if config.users.is_empty() && config.headers.is_empty() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(Guard::new(config), guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_support::{hash, parse};

    #[test]
    fn credentials_are_decoded() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_credentials(&h), None);
        // "user:pa:ss"
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpwYTpzcw==".parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("user".into(), b"pa:ss".to_vec())));
        h.insert(header::AUTHORIZATION, "Bearer dXNlcjpwYTpzcw==".parse().unwrap());
        assert_eq!(basic_credentials(&h), None);
    }

    #[tokio::test]
    async fn guard_verifies_and_caches() {
        let c = parse(&format!("basic_auth_users:\n  u: '{}'\n", hash())).unwrap();
        let g = Guard::new(&c);
        let auth = |creds: &str| {
            let mut h = HeaderMap::new();
            let v = base64::engine::general_purpose::STANDARD.encode(creds);
            h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
            h
        };
        assert!(!g.authorized(&auth("u:wrong")).await);
        assert!(!g.authorized(&auth("nobody:secret")).await);
        assert!(g.verified.lock().unwrap().is_empty(), "failures are not cached");
        assert!(g.authorized(&auth("u:secret")).await);
        assert_eq!(g.verified.lock().unwrap().len(), 1);
        assert!(g.authorized(&auth("u:secret")).await);
        assert_eq!(
            g.verified.lock().unwrap().len(),
            1,
            "second check served from the cache"
        );
    }
}
