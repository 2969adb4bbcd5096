//! Driver errors as [`StoreError`]s, so `?` converts them in every backend.

use sqlx::error::ErrorKind;

use super::StoreError;

/// sqlx names a refused write's constraint by kind, the same for SQLite and PostgreSQL, so this
/// one mapping serves both. Only uniqueness and check constraints are conflicts (see
/// [`StoreError::Conflict`]); a foreign key or NOT NULL refusal is a backend error.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db)
                if matches!(
                    db.kind(),
                    ErrorKind::UniqueViolation | ErrorKind::CheckViolation
                ) =>
            {
                Self::Conflict(db.message().to_owned())
            }
            _ => Self::Backend(anyhow::Error::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapping SQLite's errors had before it was shared: unique and check are conflicts,
    /// foreign key and NOT NULL are not.
    #[tokio::test]
    async fn only_unique_and_check_violations_are_conflicts() {
        // One connection: each in-memory connection is a database of its own.
        let db = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("db");
        sqlx::raw_sql(
            "PRAGMA foreign_keys = ON; \
             CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE CHECK (n > 0)); \
             CREATE TABLE b (a_id INTEGER REFERENCES a (id)); \
             INSERT INTO a (id, n) VALUES (1, 1);",
        )
        .execute(&db)
        .await
        .expect("schema");
        let write = |sql: &'static str| {
            let db = db.clone();
            async move { StoreError::from(sqlx::query(sql).execute(&db).await.expect_err("refused")) }
        };
        let conflict = |e: &StoreError| matches!(e, StoreError::Conflict(_));
        assert!(conflict(&write("INSERT INTO a (n) VALUES (1)").await));
        assert!(conflict(
            &write("INSERT INTO a (id, n) VALUES (1, 2)").await
        ));
        assert!(conflict(&write("INSERT INTO a (n) VALUES (0)").await));
        assert!(!conflict(&write("INSERT INTO a (n) VALUES (NULL)").await));
        assert!(!conflict(&write("INSERT INTO b (a_id) VALUES (9)").await));
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::NotFound
        ));
    }
}
