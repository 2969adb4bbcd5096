//! Keyset pagination, the same for every backend: a list is read a page at a time in a fixed
//! order, and a [`Cursor`] holding the sort key of a page's last item says where the next one
//! starts (`WHERE key < cursor ORDER BY key LIMIT n`), so a page is an index seek however deep
//! it is, and items added while a client pages neither repeat nor hide older ones (OFFSET does
//! both, and reads every row it skips).

use std::fmt;
use std::future::Future;

/// How many items a page holds when the client does not say.
pub const PAGE_DEFAULT: u32 = 50;

/// The most items a page may hold.
pub const PAGE_MAX: u32 = 200;

/// The first byte of every cursor: a later format takes the next number, and old cursors are
/// then refused rather than misread.
const CURSOR_VERSION: u8 = 1;

/// No list sorts by more keys than this; a longer cursor is refused before it is decoded further.
const MAX_CURSOR_KEYS: usize = 4;

/// Where the next page starts: the sort key of the last item of a page (for orders their
/// `created_at` and `id`, for a log its `seq`), as URL-safe text that clients hand back and
/// never read. It only moves where a listing starts, never what its query may return (the
/// buyer or seller filter stays in the query), so a forged one shows nothing its holder could
/// not list anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Vec<i64>);

impl Cursor {
    pub fn new(keys: impl Into<Vec<i64>>) -> Self {
        Self(keys.into())
    }

    /// A cursor as [`Cursor`]'s `Display` wrote it.
    pub fn parse(text: &str) -> Result<Self, BadPage> {
        if text.len() > 2 * (1 + 8 * MAX_CURSOR_KEYS) {
            return Err(BadPage::Cursor);
        }
        let bytes = hex::decode(text).map_err(|_| BadPage::Cursor)?;
        let Some((&CURSOR_VERSION, keys)) = bytes.split_first() else {
            return Err(BadPage::Cursor);
        };
        if keys.is_empty() || keys.len() % 8 != 0 || keys.len() > 8 * MAX_CURSOR_KEYS {
            return Err(BadPage::Cursor);
        }
        Ok(Self(
            keys.chunks_exact(8)
                .map(|k| {
                    let mut be = [0; 8];
                    be.copy_from_slice(k);
                    i64::from_be_bytes(be)
                })
                .collect(),
        ))
    }

    /// Its keys, if it holds `N` of them; a cursor made by a listing with another key is
    /// refused ([`super::StoreError::BadCursor`]).
    pub fn keys<const N: usize>(&self) -> Result<[i64; N], super::StoreError> {
        <[i64; N]>::try_from(self.0.as_slice()).map_err(|_| super::StoreError::BadCursor)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(1 + 8 * self.0.len());
        bytes.push(CURSOR_VERSION);
        for key in &self.0 {
            bytes.extend_from_slice(&key.to_be_bytes());
        }
        f.write_str(&hex::encode(bytes))
    }
}

impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a client asked for that no page can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPage {
    #[error("limit: from 1 to {PAGE_MAX}")]
    Limit,
    #[error("after: not a cursor this server gave out; start again without it")]
    Cursor,
}

/// Which page to read: at most `limit` items, after `after` (from the top without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    after: Option<Cursor>,
}

impl PageRequest {
    /// The request as a client sends it: `limit` (default [`PAGE_DEFAULT`], at most
    /// [`PAGE_MAX`]) and the `after` cursor of a previous page.
    pub fn parse(limit: Option<u32>, after: Option<&str>) -> Result<Self, BadPage> {
        let limit = limit.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(BadPage::Limit);
        }
        let after = after.map(Cursor::parse).transpose()?;
        Ok(Self { limit, after })
    }

    /// The first page of at most `limit` items (clamped to 1..=[`PAGE_MAX`]).
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, PAGE_MAX),
            after: None,
        }
    }

    /// The page after `cursor`, of the same size.
    pub fn then(&self, cursor: Cursor) -> Self {
        Self {
            limit: self.limit,
            after: Some(cursor),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many rows a backend reads: one more than it shows, to know whether a next page exists.
    pub fn fetch(&self) -> u32 {
        self.limit + 1
    }

    pub fn after(&self) -> Option<&Cursor> {
        self.after.as_ref()
    }
}

/// One page of a list, and where the next one starts (`None`: this is the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page from the rows a backend read for `request`, in order: at most
    /// [`PageRequest::fetch`] of them. The extra row is not shown; it only says that a next
    /// page exists, which starts after the last row shown (`key` gives its sort key).
    pub fn of(mut rows: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> Cursor) -> Self {
        let limit = request.limit() as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(key) } else { None };
        Self { items: rows, next }
    }
}

/// Every item of a list, read [`PAGE_MAX`] at a time: for the server's own work that must see
/// them all (restoring the owners of live shows), never for a client's request.
pub async fn every<T, F, Fut>(mut read: F) -> super::StoreResult<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = super::StoreResult<Page<T>>>,
{
    let mut all = Vec::new();
    let mut request = PageRequest::first(PAGE_MAX);
    loop {
        let page = read(request.clone()).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => request = request.then(next),
            None => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_nothing_else_passes() {
        for keys in [vec![1], vec![1_700_000_000_000, 42], vec![0, -5, i64::MAX]] {
            let cursor = Cursor::new(keys.clone());
            let text = cursor.to_string();
            assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
            assert_eq!(Cursor::parse(&text), Ok(cursor));
        }
        let good = Cursor::new([7, 8]).to_string();
        for bad in [
            "",
            "01",
            "zz",
            &good[..good.len() - 2],
            &format!("02{}", &good[2..]),
            "not a cursor",
            &Cursor::new([1; MAX_CURSOR_KEYS + 1]).to_string(),
        ] {
            assert_eq!(Cursor::parse(bad), Err(BadPage::Cursor), "{bad:?}");
        }
        assert!(Cursor::new([7, 8]).keys::<2>().is_ok());
        assert!(Cursor::new([7, 8]).keys::<1>().is_err());
    }

    #[test]
    fn a_limit_is_one_to_the_maximum() {
        assert_eq!(PageRequest::parse(None, None).map(|p| p.limit()), Ok(50));
        assert_eq!(
            PageRequest::parse(Some(200), None).map(|p| p.limit()),
            Ok(200)
        );
        assert_eq!(PageRequest::parse(Some(0), None), Err(BadPage::Limit));
        assert_eq!(PageRequest::parse(Some(201), None), Err(BadPage::Limit));
        assert_eq!(PageRequest::parse(Some(5), Some("x")), Err(BadPage::Cursor));
    }

    #[test]
    fn the_extra_row_only_says_there_is_more() {
        let request = PageRequest::first(2);
        let key = |n: &i64| Cursor::new([*n]);
        let page = Page::of(vec![5, 4, 3], &request, key);
        assert_eq!(page.items, [5, 4]);
        assert_eq!(page.next, Some(Cursor::new([4])));
        let last = Page::of(vec![2, 1], &request, key);
        assert_eq!((last.items, last.next), (vec![2, 1], None));
    }
}
