//! A write that cannot get the database in time answers `503 temporarily_unavailable` with
//! `Retry-After`, never a 500 that says nothing, and the service serves again once the
//! database is free. On SQLite another connection holds the write lock past the busy
//! timeout; on PostgreSQL a request blocked behind a table lock holds the pool's only
//! connection, so the next one times out acquiring one.

use std::time::Duration;

use sqlx::Connection;

use crate::helpers::{spawn_app_with, str_of, Backend, Database, TestApp};
use crate::scenarios;

scenarios!(a_write_that_cannot_get_the_database_answers_503_with_retry_after);

/// Another connection to the app's database, holding what the app's writes need.
enum Holder {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Holder {
    async fn take(app: &TestApp) -> Self {
        match app.settings.database.url.starts_with("sqlite:") {
            true => {
                let mut conn = sqlx::SqliteConnection::connect(&app.settings.database.url)
                    .await
                    .unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Holder::Sqlite(conn)
            }
            false => {
                let mut conn = sqlx::PgConnection::connect(&app.settings.database.url)
                    .await
                    .unwrap();
                sqlx::raw_sql("BEGIN; LOCK TABLE refresh_token_families IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Holder::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Holder::Sqlite(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Holder::Postgres(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

async fn a_write_that_cannot_get_the_database_answers_503_with_retry_after(backend: Backend) {
    // PostgreSQL: one connection, so the request blocked behind the lock exhausts the pool.
    let connections = match backend.database {
        Database::Sqlite => "8",
        Database::Postgres => "1",
    };
    let app = spawn_app_with(
        backend,
        &[("LATCHKEY_DATABASE_MAX_CONNECTIONS", connections)],
    )
    .await;
    app.fixture().await;
    let first = app.login("alice@example.com").await;
    let second = app.login("alice@example.com").await;
    let first_refresh = str_of(&first, "refresh_token").to_owned();
    let second_refresh = str_of(&second, "refresh_token").to_owned();

    let holder = Holder::take(&app).await;
    let blocked = {
        let http = app.http.clone();
        let url = app.url("/oauth2/token");
        let token = first_refresh.clone();
        tokio::spawn(async move {
            http.post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", "web"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let answer = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second_refresh),
            ("client_id", "web"),
        ])
        .await;
    assert_eq!(answer.status().as_u16(), 503);
    let retry_after: u64 = answer
        .headers()
        .get("retry-after")
        .expect("503 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    holder.release().await;
    let first_status = blocked.await.unwrap();
    assert!(
        first_status == 200 || first_status == 503,
        "the request that waited answers or says to retry, never 500: {first_status}"
    );

    // Nothing was done by the refused rotation: its token still works once the database is free.
    let (status, body) = app.refresh(&second_refresh).await;
    assert_eq!(status, 200, "{body}");
}
