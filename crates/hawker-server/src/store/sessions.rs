//! The session cache every backend shares. It reads nothing itself: a backend hands it the rows
//! it asks for (`session_changes`, the newest tokens), so the rules below hold for each backend
//! without a copy.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hawker_core::ids::UserId;

use super::{StoreResult, User};
use crate::clock::Clock;

/// Who a token belongs to, kept in memory so that a herd of buyers does not cost a database read
/// per request. An entry stays until its session may have changed:
///
/// - this process forgets the entries a write of its own touches (a logout, a new role) at once;
/// - every update or removal of a user or a token, by any process, is counted in
///   `session_changes` (triggers in the schema). A lookup reads it when the last read is
///   [`SESSION_CHECK_EVERY`] old and forgets the users named there, so another process's change
///   (`hawker user set-role`) shows within that time; a whole-cache forget covers changes pruned
///   before they were read.
///
/// `warm_sessions` loads the newest tokens at start, so a restart mid-show does not send every
/// viewer's next request to the database.
pub(super) struct SessionCache {
    /// By token hash: the user (shared by their tokens where loaded together: a seller's
    /// blocked words are not copied per token), and the session's CSRF token.
    entries: Mutex<HashMap<String, Session>>,
    /// Bumped by every forget; a read that started before one does not cache what it read.
    generation: AtomicU64,
    /// The last `session_changes.seq` applied; held while the table is read.
    applied: Mutex<i64>,
    /// When `session_changes` is next due to be read, in ms of the clock's monotonic time
    /// (0: at once), so a lookup that is not due does not take the lock. Monotonic: a wall
    /// clock stepped back would put off the next read by as much.
    next_check_ms: AtomicU64,
    clock: Clock,
}

/// A cached session: its user and its CSRF token (a cookie session's).
type Session = (Arc<User>, Option<String>);

/// How often a lookup reads `session_changes`: another process's change to a user or a token
/// reaches this one within it.
const SESSION_CHECK_EVERY: Duration = Duration::from_secs(2);
/// Past this many entries the cache drops about half of them, so it cannot grow without bound.
/// `warm_sessions` loads half as many.
const SESSION_CACHE_MAX: usize = 200_000;

impl SessionCache {
    pub(super) fn new(clock: Clock) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            applied: Mutex::new(0),
            next_check_ms: AtomicU64::new(0),
            clock,
        }
    }

    pub(super) fn get(&self, hash: &str) -> Option<(User, Option<String>)> {
        let entries = self.entries.lock().ok()?;
        let (user, csrf) = entries.get(hash)?;
        Some((User::clone(user), csrf.clone()))
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(super) fn put(&self, read_at: u64, hash: &str, user: Arc<User>, csrf: Option<String>) {
        if let Ok(mut entries) = self.entries.lock() {
            if self.generation() != read_at {
                return;
            }
            if entries.len() >= SESSION_CACHE_MAX {
                // Every other entry, in the map's own (unordered) order: dropping one only costs
                // its next lookup a read, so no generation bump.
                let mut keep = false;
                entries.retain(|_, _| {
                    keep = !keep;
                    keep
                });
            }
            entries.insert(hash.to_owned(), (user, csrf));
        }
    }

    /// Forgets the entries `which` picks, and tells readers under way not to cache theirs.
    pub(super) fn forget(&self, which: impl Fn(&str, &User) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.retain(|hash, (user, _)| !which(hash, user));
        }
    }

    fn forget_all(&self) {
        self.forget(|_, _| true);
    }

    /// Forgets one token (a logout) without a pass over the others.
    pub(super) fn forget_token(&self, hash: &str) {
        self.forget_tokens([hash]);
    }

    /// Forgets these tokens (expired ones) without a pass over the others.
    pub(super) fn forget_tokens<'a>(&self, hashes: impl IntoIterator<Item = &'a str>) {
        let mut hashes = hashes.into_iter().peekable();
        if hashes.peek().is_none() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            for hash in hashes {
                entries.remove(hash);
            }
        }
    }

    /// Reads the session changes written since the last read, if that read is due, and forgets
    /// the users they name. `changes(applied)` reads `(seq, user_id)` in one snapshot, in `seq`
    /// order: the oldest change kept, then every one after `applied`.
    pub(super) fn catch_up(
        &self,
        changes: impl FnOnce(i64) -> StoreResult<Vec<(i64, i64)>>,
    ) -> StoreResult<()> {
        let now_ms = |cache: &Self| cache.clock.elapsed().as_millis() as u64;
        if now_ms(self) < self.next_check_ms.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        // Another lookup may have read them while this one waited for the lock.
        if now_ms(self) < self.next_check_ms.load(Ordering::Acquire) {
            return Ok(());
        }
        let read_at = now_ms(self);
        let changes = changes(*applied)?;
        if let Some(&(oldest, _)) = changes.first() {
            if oldest > *applied + 1 {
                // Changes after ours were pruned unread: any entry may be stale.
                self.forget_all();
            } else {
                let users: HashSet<i64> = changes
                    .iter()
                    .filter(|(seq, _)| *seq > *applied)
                    .map(|(_, user)| *user)
                    .collect();
                if !users.is_empty() {
                    self.forget(|_, user| users.contains(&user.id.0));
                }
            }
            *applied = changes
                .last()
                .map_or(*applied, |(seq, _)| (*seq).max(*applied));
        }
        let next = read_at + SESSION_CHECK_EVERY.as_millis() as u64;
        self.next_check_ms.store(next, Ordering::Release);
        Ok(())
    }

    /// Loads the newest sessions into a fresh cache; a cache in use is left as it is. `last_seq()`
    /// reads the last `session_changes.seq`, `newest(limit)` up to `limit` of the newest tokens
    /// as `(hash, user, csrf)`. Returns how many it loaded.
    pub(super) fn warm(
        &self,
        last_seq: impl FnOnce() -> StoreResult<i64>,
        newest: impl FnOnce(usize) -> StoreResult<Vec<(String, User, Option<String>)>>,
    ) -> StoreResult<usize> {
        // Held throughout, so no catch-up runs meanwhile; and only a fresh cache is warmed, so
        // nothing cached before can miss the changes `applied` is about to skip.
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = self.entries.lock().is_ok_and(|e| e.is_empty());
        if *applied != 0 || !fresh {
            return Ok(0);
        }
        let counted = last_seq()?;
        // After the count and before the tokens: a lookup that read a token before this
        // cannot cache it, and one that reads after it sees every change up to `counted`.
        self.forget_all();
        let read_at = self.generation();
        let sessions = newest(SESSION_CACHE_MAX / 2)?;
        let mut users: HashMap<UserId, Arc<User>> = HashMap::new();
        let mut warmed = 0;
        for (hash, user, csrf) in sessions {
            let user = users
                .entry(user.id)
                .or_insert_with(|| Arc::new(user))
                .clone();
            self.put(read_at, &hash, user, csrf);
            warmed += 1;
        }
        *applied = counted;
        Ok(warmed)
    }
}

#[cfg(test)]
mod tests {
    use hawker_core::account::Role;

    use super::*;
    use crate::store::StoreError;

    fn user(id: i64) -> User {
        User {
            id: UserId(id),
            email: format!("u{id}@example.com"),
            display_name: format!("User {id}"),
            role: Role::Buyer,
            blocked_words: vec![],
            shipping_fee_cents: 0,
            daily_spend_limit_cents: None,
        }
    }

    fn put(cache: &SessionCache, hash: &str, id: i64) {
        cache.put(cache.generation(), hash, Arc::new(user(id)), None);
    }

    fn cached(cache: &SessionCache, hash: &str) -> Option<i64> {
        cache.get(hash).map(|(u, _)| u.id.0)
    }

    fn len(cache: &SessionCache) -> usize {
        cache.entries.lock().expect("entries").len()
    }

    /// Makes the next `catch_up` due without waiting `SESSION_CHECK_EVERY`.
    fn due(cache: &SessionCache) {
        cache.next_check_ms.store(0, Ordering::Release);
    }

    #[test]
    fn a_put_session_is_got_back_with_its_csrf() {
        let cache = SessionCache::new(Clock::manual());
        cache.put(0, "t", Arc::new(user(1)), Some("csrf".into()));
        let (found, csrf) = cache.get("t").expect("cached");
        assert_eq!(found.id, UserId(1));
        assert_eq!(csrf.as_deref(), Some("csrf"));
        assert!(cache.get("other").is_none());
    }

    #[test]
    fn a_read_that_started_before_a_forget_is_not_cached() {
        let cache = SessionCache::new(Clock::manual());
        let read_at = cache.generation();
        cache.forget(|_, _| false);
        cache.put(read_at, "t", Arc::new(user(1)), None);
        assert_eq!(cached(&cache, "t"), None);

        let read_at = cache.generation();
        cache.forget_token("another");
        cache.put(read_at, "t", Arc::new(user(1)), None);
        assert_eq!(cached(&cache, "t"), None);

        // Forgetting no tokens is no forget: a read under way still caches.
        let read_at = cache.generation();
        cache.forget_tokens([]);
        cache.put(read_at, "t", Arc::new(user(1)), None);
        assert_eq!(cached(&cache, "t"), Some(1));
    }

    #[test]
    fn forgets_drop_only_what_they_name() {
        let cache = SessionCache::new(Clock::manual());
        put(&cache, "a", 1);
        put(&cache, "b", 1);
        put(&cache, "c", 2);
        put(&cache, "d", 3);
        cache.forget_token("a");
        assert_eq!(cached(&cache, "a"), None);
        assert_eq!(cached(&cache, "b"), Some(1));
        cache.forget(|_, u| u.id == UserId(1));
        assert_eq!(cached(&cache, "b"), None);
        cache.forget_tokens(["c"]);
        assert_eq!(cached(&cache, "c"), None);
        assert_eq!(cached(&cache, "d"), Some(3));
    }

    #[test]
    fn a_full_cache_drops_half_its_entries() {
        let cache = SessionCache::new(Clock::manual());
        let shared = Arc::new(user(1));
        for i in 0..SESSION_CACHE_MAX {
            cache.put(0, &i.to_string(), shared.clone(), None);
        }
        assert_eq!(len(&cache), SESSION_CACHE_MAX);
        cache.put(0, "new", shared, None);
        assert_eq!(len(&cache), SESSION_CACHE_MAX / 2 + 1);
        assert_eq!(cached(&cache, "new"), Some(1));
        assert_eq!(cache.generation(), 0, "dropping entries is no forget");
    }

    #[test]
    fn catch_up_forgets_the_users_changed_since_the_last_read() {
        let cache = SessionCache::new(Clock::manual());
        put(&cache, "a", 1);
        put(&cache, "b", 2);
        put(&cache, "c", 7);
        cache
            .catch_up(|applied| {
                assert_eq!(applied, 0);
                Ok(vec![(1, 1)])
            })
            .expect("caught up");
        assert_eq!(cached(&cache, "a"), None);
        assert_eq!(cached(&cache, "b"), Some(2));

        // Not due again for SESSION_CHECK_EVERY.
        cache
            .catch_up(|_| panic!("read before it was due"))
            .expect("caught up");

        // The oldest change kept comes back with the new ones; it was applied already.
        due(&cache);
        cache
            .catch_up(|applied| {
                assert_eq!(applied, 1);
                Ok(vec![(1, 7), (2, 2)])
            })
            .expect("caught up");
        assert_eq!(cached(&cache, "b"), None);
        assert_eq!(cached(&cache, "c"), Some(7));

        // Nothing new: nothing forgotten, not even a generation.
        due(&cache);
        let generation = cache.generation();
        cache
            .catch_up(|applied| {
                assert_eq!(applied, 2);
                Ok(vec![(1, 7)])
            })
            .expect("caught up");
        assert_eq!(cached(&cache, "c"), Some(7));
        assert_eq!(cache.generation(), generation);
    }

    #[test]
    fn catch_up_forgets_everything_when_changes_were_pruned_unread() {
        let cache = SessionCache::new(Clock::manual());
        cache.catch_up(|_| Ok(vec![(1, 9)])).expect("caught up");
        put(&cache, "a", 1);
        put(&cache, "b", 2);
        due(&cache);
        // Seq 2 was pruned before this server read it: whom it named is unknown.
        cache
            .catch_up(|applied| {
                assert_eq!(applied, 1);
                Ok(vec![(3, 3)])
            })
            .expect("caught up");
        assert_eq!(cached(&cache, "a"), None);
        assert_eq!(cached(&cache, "b"), None);
        due(&cache);
        cache
            .catch_up(|applied| {
                assert_eq!(applied, 3);
                Ok(vec![])
            })
            .expect("caught up");
    }

    #[test]
    fn a_failed_read_of_changes_is_read_again_at_the_next_lookup() {
        let cache = SessionCache::new(Clock::manual());
        let failed = cache.catch_up(|_| Err(StoreError::NotFound));
        assert!(failed.is_err());
        let mut read = false;
        cache
            .catch_up(|_| {
                read = true;
                Ok(vec![])
            })
            .expect("caught up");
        assert!(read);
    }

    #[test]
    fn only_a_fresh_cache_is_warmed() {
        let cache = SessionCache::new(Clock::manual());
        let warmed = cache
            .warm(
                || Ok(9),
                |limit| {
                    assert_eq!(limit, SESSION_CACHE_MAX / 2);
                    Ok(vec![
                        ("a".into(), user(1), Some("x".into())),
                        ("b".into(), user(1), None),
                    ])
                },
            )
            .expect("warmed");
        assert_eq!(warmed, 2);
        assert_eq!(
            cache.get("a").and_then(|(_, csrf)| csrf).as_deref(),
            Some("x")
        );
        assert_eq!(cached(&cache, "b"), Some(1));
        // Changes up to the count were applied by warming.
        due(&cache);
        cache
            .catch_up(|applied| {
                assert_eq!(applied, 9);
                Ok(vec![])
            })
            .expect("caught up");
        assert_eq!(
            cache
                .warm(|| panic!("warmed a cache in use"), |_| Ok(vec![]))
                .expect("warmed"),
            0
        );
    }
}
