//! The backends of the store's black-box test files that run each body (taking an `Arc<dyn Store>`, knowing
//! nothing of the backend) on all of them: `store_tests!("prefix"; body, …)` makes one test per body and
//! backend — a SQLite file, a scratch SQLite database, and PostgreSQL in a schema of its own (`palaver_<prefix>_…`),
//! dropped after.

use std::sync::Arc;

use palaver_store::Store;
use palaver_store::postgres::PgStore;
use palaver_store::sqlite::SqliteStore;

macro_rules! store_tests {
    ($prefix:literal; $($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = $crate::common::sqlite_file().await;
                    super::$name(store).await;
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::sqlite_memory().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, schema) = $crate::common::postgres($prefix).await;
                    super::$name(store).await;
                    $crate::common::drop_postgres(&schema).await;
                }
            )*
        }
    };
}

pub(crate) async fn sqlite_file() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("palaver.db")).await.unwrap();
    (Arc::new(store), dir)
}

pub(crate) async fn sqlite_memory() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_in_memory().await.unwrap())
}

/// A PostgreSQL store in a fresh schema `palaver_<prefix>_<pid>_<random>`, and the schema's name.
pub(crate) async fn postgres(prefix: &str) -> (Arc<dyn Store>, String) {
    let url = postgres_url();
    let schema = format!("palaver_{prefix}_{}_{:08x}", std::process::id(), rand::random::<u32>());
    PgStore::create_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (start it, or run scripts/test, which does): {e}"));
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let store = PgStore::connect_with(options.options([("search_path", &schema)]), 4).await.unwrap();
    (Arc::new(store), schema)
}

pub(crate) async fn drop_postgres(schema: &str) {
    PgStore::drop_schema(&postgres_url(), schema).await.unwrap();
}

pub(crate) fn postgres_url() -> String {
    std::env::var("PALAVER_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}
