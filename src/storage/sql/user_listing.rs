//! The user listing's SQL (`UserStore::list`), built per filter so that each filter is a plain
//! equality the planner can match to its index (migrations 0013): `$1 IS NULL OR ...` terms
//! would hide the index from both SQLite and PostgreSQL. Users come in `(created_at, id)`
//! order; a keyset page starts after a `UserCursor` with a row-value comparison, which both
//! databases turn into an index range.
//!
//! - a role: `user_roles_role_created_idx` (role, the user's created_at, user id), joined to
//!   the user's row by its key; the other filters are checked on each joined row;
//! - active and verified, either or both: `users_active_created_idx`,
//!   `users_verified_created_idx`, `users_active_verified_created_idx`;
//! - none: `users_created_idx`.
//!
//! A substring of the email cannot use a b-tree index: it is checked on each row of the walk,
//! which stops once a page of users matched.
//!
//! The audit trail's listing (`AuditStore::list`) is built the same way (`audit_page`).
//!
//! Public so that the tests can `EXPLAIN` exactly what the store runs.

use crate::domain::UserFilter;

/// The columns of a user row (`UserRow` in `users.rs` reads them), in the order
/// `INSERT INTO users` binds them.
macro_rules! user_columns {
    () => {
        "id, email, username, display_name, is_active, email_verified, password_hash, attributes, \
         created_at, updated_at, last_login_at, must_change_password, password_changed_at"
    };
}
pub(super) use user_columns;

/// A value to bind, in order, to `$1`, `$2`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// The statement of one listing and its parameters.
#[derive(Debug, Clone)]
pub struct ListingQuery {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl ListingQuery {
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
}

/// The query `AuditStore::list` runs for `f`: each filter a plain equality (the event and
/// the user have indexes that end in `id`), following the trail (`after_id`) in id order,
/// otherwise newest first; the store returns the rows oldest first. Built per filter like
/// the user listing (a `$1 IS NULL OR ...` term, or ordering by an expression, made both
/// databases read and sort the whole trail).
pub fn audit_page(f: &crate::domain::AuditFilter) -> ListingQuery {
    let mut q = ListingQuery {
        sql: String::new(),
        binds: Vec::new(),
    };
    let mut terms: Vec<String> = Vec::new();
    if let Some(after) = f.after_id {
        terms.push(format!("id > {}", q.bind(Bind::Int(after))));
    }
    if let Some(user) = &f.user_id {
        terms.push(format!("user_id = {}", q.bind(Bind::Text(user.clone()))));
    }
    if let Some(event) = &f.event {
        terms.push(format!("event = {}", q.bind(Bind::Text(event.clone()))));
    }
    let where_ = if terms.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", terms.join(" AND "))
    };
    let order = if f.after_id.is_some() {
        "id"
    } else {
        "id DESC"
    };
    let limit = q.bind(Bind::Int(f.limit));
    q.sql = format!(
        "SELECT id, at, event, user_id, client_id, ip, user_agent, detail FROM audit_events\
         {where_} ORDER BY {order} LIMIT {limit}"
    );
    q
}

/// The query `UserStore::list` runs for `f` (the user columns, qualified by `users.`).
pub fn users_page(f: &UserFilter) -> ListingQuery {
    let mut q = ListingQuery {
        sql: String::new(),
        binds: Vec::new(),
    };
    let mut terms: Vec<String> = Vec::new();
    // With a role, the walk is over the role's index; otherwise over the users' own.
    let (from, order_a, order_b) = if let Some(role) = &f.role {
        let p = q.bind(Bind::Text(role.as_str().to_owned()));
        terms.push(format!(
            "ur.role_id = (SELECT id FROM roles WHERE name = {p})"
        ));
        (
            "user_roles ur JOIN users ON users.id = ur.user_id",
            "ur.user_created_at",
            "ur.user_id",
        )
    } else {
        ("users", "users.created_at", "users.id")
    };
    if let Some(active) = f.active {
        let p = q.bind(Bind::Bool(active));
        terms.push(format!("users.is_active = {p}"));
    }
    if let Some(verified) = f.verified {
        let p = q.bind(Bind::Bool(verified));
        terms.push(format!("users.email_verified = {p}"));
    }
    if let Some(s) = &f.email_contains {
        let p = q.bind(Bind::Text(like_pattern(s)));
        terms.push(format!("users.email LIKE {p} ESCAPE '\\'"));
    }
    if let Some(c) = &f.after {
        let a = q.bind(Bind::Int(c.created_at));
        let b = q.bind(Bind::Text(c.id.as_str().to_owned()));
        terms.push(format!("({order_a}, {order_b}) > ({a}, {b})"));
    }
    let limit = q.bind(Bind::Int(f.limit));
    let offset = q.bind(Bind::Int(f.offset));
    let where_ = if terms.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", terms.join(" AND "))
    };
    q.sql = format!(
        "SELECT {} FROM {from}{where_} ORDER BY {order_a}, {order_b} LIMIT {limit} OFFSET {offset}",
        qualified_user_columns()
    );
    q
}

/// `user_columns!()` with each column prefixed by `users.` (the role walk joins two tables).
fn qualified_user_columns() -> String {
    user_columns!()
        .split(',')
        .map(|c| format!("users.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `LIKE` pattern matching `s` anywhere, its metacharacters escaped (`ESCAPE '\'`).
pub(super) fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RoleName, UserCursor, UserId};

    #[test]
    fn each_filter_is_a_plain_equality_and_the_cursor_a_row_value() {
        let q = users_page(&UserFilter {
            limit: 10,
            ..Default::default()
        });
        assert!(q
            .sql
            .ends_with("FROM users ORDER BY users.created_at, users.id LIMIT $1 OFFSET $2"));
        assert_eq!(q.binds, [Bind::Int(10), Bind::Int(0)]);

        let id = UserId::generate();
        let q = users_page(&UserFilter {
            active: Some(false),
            verified: Some(true),
            role: Some(RoleName::parse("member").unwrap()),
            email_contains: Some("A_b".into()),
            limit: 5,
            offset: 0,
            after: Some(UserCursor {
                created_at: 7,
                id: id.clone(),
            }),
        });
        assert!(q.sql.contains(
            "FROM user_roles ur JOIN users ON users.id = ur.user_id WHERE \
             ur.role_id = (SELECT id FROM roles WHERE name = $1) AND users.is_active = $2 \
             AND users.email_verified = $3 AND users.email LIKE $4 ESCAPE '\\' AND \
             (ur.user_created_at, ur.user_id) > ($5, $6) ORDER BY ur.user_created_at, \
             ur.user_id LIMIT $7 OFFSET $8"
        ));
        assert!(q.sql.starts_with("SELECT users.id, users.email, "));
        assert_eq!(
            q.binds,
            [
                Bind::Text("member".into()),
                Bind::Bool(false),
                Bind::Bool(true),
                Bind::Text("%a\\_b%".into()),
                Bind::Int(7),
                Bind::Text(id.as_str().to_owned()),
                Bind::Int(5),
                Bind::Int(0),
            ]
        );
    }
}
