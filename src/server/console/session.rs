//! Console sessions, in memory.
//!
//! A session is named by a random cookie secret of which only the SHA-256 is held (as for API
//! tokens), so a memory dump gives no usable cookie. Sessions are not stored: a restart signs
//! every console user out, and idle expiry needs no write on each page (docs/console.md).
//! Roles are not cached here: each request reads the user's grants from the catalog.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::app::secrets;
use crate::config::ConsoleSettings;
use crate::domain::UserId;

/// The cookie's name. `__Host-` makes browsers require Secure, Path=/ and no Domain, so a
/// sibling host cannot plant one.
pub const COOKIE: &str = "__Host-satellite_session";
/// Sessions one user may hold; a new login beyond it ends the user's least recently used one.
const PER_USER: usize = 20;
/// Sessions held in all; beyond it, the least recently used session ends.
const IN_ALL: usize = 10_000;

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: UserId,
    /// The synchronizer token every form of this session carries (hex).
    pub csrf: String,
    created: OffsetDateTime,
    last_seen: OffsetDateTime,
}

/// A new session's cookie secret and its form token.
pub struct Opened {
    pub cookie: String,
    pub csrf: String,
}

/// The sessions of this process.
#[derive(Debug)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    absolute: Duration,
}

impl Sessions {
    pub fn new(settings: ConsoleSettings) -> Self {
        Sessions {
            by_hash: Mutex::new(HashMap::new()),
            idle: settings.idle_timeout,
            absolute: settings.absolute_timeout,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a fresh session for `user` (never one named by the browser before login).
    pub fn open(&self, user: UserId, now: OffsetDateTime) -> Opened {
        let cookie = secrets::generate("");
        let csrf = secrets::generate("").text;
        let mut map = self.map();
        let mut mine: Vec<_> = map
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(h, s)| (s.last_seen, *h))
            .collect();
        if mine.len() >= PER_USER {
            mine.sort();
            map.remove(&mine[0].1);
        }
        if map.len() >= IN_ALL {
            self.forget_expired(&mut map, now);
        }
        // Only when no expired session made room does a live one end.
        if map.len() >= IN_ALL
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(h, _)| *h)
        {
            map.remove(&oldest);
        }
        map.insert(
            cookie.hash,
            Session {
                user,
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Opened {
            cookie: cookie.text,
            csrf,
        }
    }

    /// The live session named by `cookie`, its idle clock restarted; an expired one is ended.
    pub fn touch(&self, cookie: &str, now: OffsetDateTime) -> Option<Session> {
        let hash = secrets::hash(cookie);
        let mut map = self.map();
        let s = map.get_mut(&hash)?;
        if now - s.last_seen >= self.idle || now - s.created >= self.absolute {
            map.remove(&hash);
            return None;
        }
        s.last_seen = now.max(s.last_seen);
        Some(s.clone())
    }

    /// Ends the session named by `cookie` (logout).
    pub fn end(&self, cookie: &str) -> Option<Session> {
        self.map().remove(&secrets::hash(cookie))
    }

    /// Ends every session of `user` (password changed, user deleted). Returns how many.
    pub fn end_all_of(&self, user: UserId) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, s| s.user != user);
        before - map.len()
    }

    fn forget_expired(&self, map: &mut HashMap<[u8; 32], Session>, now: OffsetDateTime) {
        map.retain(|_, s| now - s.last_seen < self.idle && now - s.created < self.absolute);
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(ConsoleSettings {
            idle_timeout: Duration::minutes(30),
            absolute_timeout: Duration::hours(12),
        })
    }

    const T0: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    #[test]
    fn idle_and_absolute_expiry() {
        let s = sessions();
        let u = UserId(Uuid::from_bytes([1; 16]));
        let a = s.open(u, T0);
        // Kept alive by use every 29 minutes, until 12 hours after login.
        let mut t = T0;
        while t + Duration::minutes(29) < T0 + Duration::hours(12) {
            t += Duration::minutes(29);
            assert!(s.touch(&a.cookie, t).is_some(), "alive at {t}");
        }
        assert!(s.touch(&a.cookie, T0 + Duration::hours(12)).is_none());
        let b = s.open(u, T0);
        assert!(
            s.touch(&b.cookie, T0 + Duration::minutes(30)).is_none(),
            "idle"
        );
        assert!(s.touch("unknown", T0).is_none());
    }

    #[test]
    fn logout_and_revocation_end_sessions() {
        let s = sessions();
        let (u, v) = (
            UserId(Uuid::from_bytes([1; 16])),
            UserId(Uuid::from_bytes([2; 16])),
        );
        let (a, b, c) = (s.open(u, T0), s.open(u, T0), s.open(v, T0));
        assert_ne!(a.cookie, b.cookie);
        assert_ne!(a.csrf, b.csrf);
        assert!(s.end(&a.cookie).is_some());
        assert!(s.touch(&a.cookie, T0).is_none());
        assert_eq!(s.end_all_of(u), 1);
        assert!(s.touch(&b.cookie, T0).is_none());
        assert!(
            s.touch(&c.cookie, T0).is_some(),
            "another user's session stays"
        );
    }

    #[test]
    fn a_user_beyond_its_session_limit_loses_its_least_recently_used_one() {
        let s = sessions();
        let u = UserId(Uuid::from_bytes([1; 16]));
        let first = s.open(u, T0);
        let rest: Vec<_> = (1..PER_USER as i64)
            .map(|i| s.open(u, T0 + Duration::seconds(i)))
            .collect();
        let now = T0 + Duration::minutes(1);
        assert!(
            s.touch(&first.cookie, now).is_some(),
            "{PER_USER} sessions fit"
        );
        // `first` was just used, so the next login ends the one used least recently: rest[0].
        s.open(u, now);
        assert!(s.touch(&first.cookie, now).is_some());
        assert!(s.touch(&rest[0].cookie, now).is_none());
        assert!(rest[1..].iter().all(|o| s.touch(&o.cookie, now).is_some()));
    }

    #[test]
    fn a_full_table_makes_room_from_expired_sessions_before_ending_a_live_one() {
        let s = sessions();
        let user = |n: usize| UserId(Uuid::from_u128(n as u128));
        let stale = s.open(user(0), T0);
        let now = T0 + Duration::hours(1);
        let live: Vec<_> = (1..IN_ALL).map(|n| s.open(user(n), now)).collect();
        let newest = s.open(user(IN_ALL), now);
        assert!(
            s.touch(&stale.cookie, now).is_none(),
            "the expired one made room"
        );
        assert!(
            live.iter().all(|o| s.touch(&o.cookie, now).is_some()),
            "no live session ended"
        );
        // Full of live sessions: the least recently used one ends.
        let later = now + Duration::minutes(1);
        for o in live[1..].iter().chain([&newest]) {
            s.touch(&o.cookie, later);
        }
        s.open(user(IN_ALL + 1), later);
        assert!(s.touch(&live[0].cookie, later).is_none());
    }
}
