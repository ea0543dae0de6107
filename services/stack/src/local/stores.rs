//! The stack's PostgreSQL database and Redis keys: created, cleared, dropped.

use super::StackError;

/// Creates `database` through `admin_url` when it does not exist; returns its URL.
pub(super) async fn create_database(admin_url: &str, database: &str) -> Result<String, StackError> {
    let err = |message: String| StackError::Database {
        database: database.to_owned(),
        url: admin_url.to_owned(),
        message,
    };
    if !database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(err("use letters, digits and _ only".to_owned()));
    }
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| err(format!("{e} (is PostgreSQL running?)")))?;
    let task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await
        .map_err(|e| err(e.to_string()))?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE \"{database}\""))
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    drop(client);
    let _ = task.await;
    Ok(with_database(admin_url, database))
}

/// Deletes every Redis key that starts with `prefix` (streams, cursors, caches of a stack).
pub async fn clear_redis_keys(url: &str, prefix: &str) -> Result<(), StackError> {
    let err = |message: String| StackError::Redis {
        prefix: prefix.to_owned(),
        url: url.to_owned(),
        message,
    };
    if prefix.is_empty() {
        return Err(err(
            "refusing to delete every key: give the stack a key prefix".to_owned(),
        ));
    }
    let client = redis::Client::open(url).map_err(|e| err(e.to_string()))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| err(format!("{e} (is Redis running?)")))?;
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| err(e.to_string()))?;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Drops `database` (used by tests that made their own).
pub async fn drop_database(admin_url: &str, database: &str) -> Result<(), StackError> {
    let err = |message: String| StackError::Database {
        database: database.to_owned(),
        url: admin_url.to_owned(),
        message,
    };
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| err(e.to_string()))?;
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .await
        .map_err(|e| err(e.to_string()))?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// `url` with its database path replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_keeps_everything_but_the_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
