//! `/admin/v1/users`: the user listing, with the filters and paging of `latchkey users list`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{authorize, ok};
use crate::domain::{RoleName, UserFilter, UserId};
use crate::http::api::error::ApiError;
use crate::http::AppState;
use crate::services::UserView;

/// The most users one page may ask for.
const MAX_LIMIT: i64 = 1000;

/// `GET /admin/v1/users?active=&verified=&role=&email_contains=&limit=&offset=&after=`: read
/// as text, so that a bad value is refused naming its parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListUsersQuery {
    active: Option<String>,
    verified: Option<String>,
    role: Option<String>,
    email_contains: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    after: Option<String>,
}

#[derive(serde::Serialize)]
pub struct ListUsersResponse {
    users: Vec<UserView>,
    /// The `after` of the next page: the last user's id when the page is full, else `null`.
    next_after: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(StatusCode::BAD_REQUEST, message.into())
}

fn flag(name: &str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(invalid(format!("{name} must be true or false"))),
    }
}

fn number(name: &str, raw: Option<&str>, default: i64, range: (i64, i64)) -> Result<i64, ApiError> {
    let n = match raw {
        None => default,
        Some(r) => r
            .parse::<i64>()
            .map_err(|_| invalid(format!("{name} must be a whole number")))?,
    };
    if n < range.0 || n > range.1 {
        return Err(invalid(format!(
            "{name} must be between {} and {}",
            range.0, range.1
        )));
    }
    Ok(n)
}

/// `GET /admin/v1/users`
pub async fn get_users(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (api, _) = authorize(&req, &state).await?;
    let q = web::Query::<ListUsersQuery>::from_query(req.query_string())
        .map_err(|e| invalid(format!("invalid query: {e}")))?
        .into_inner();
    let limit = number("limit", q.limit.as_deref(), 100, (1, MAX_LIMIT))?;
    let offset = number("offset", q.offset.as_deref(), 0, (0, i64::MAX))?;
    let after = match q.after.as_deref() {
        Some(raw) => Some(UserId::parse(raw).map_err(|_| invalid("after must be a user id"))?),
        None => None,
    };
    if after.is_some() && offset > 0 {
        return Err(invalid("after cannot be combined with offset"));
    }
    let role = q
        .role
        .as_deref()
        .map(RoleName::parse)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    let filter = UserFilter {
        active: flag("active", q.active.as_deref())?,
        verified: flag("verified", q.verified.as_deref())?,
        role,
        email_contains: q.email_contains,
        limit,
        offset,
        after: None,
    };
    let users = api.admin.list_users(&filter, after.as_ref()).await?;
    let next_after = if users.len() as i64 == limit {
        users.last().map(|u| u.id.clone())
    } else {
        None
    };
    Ok(ok(StatusCode::OK, &ListUsersResponse { users, next_after }))
}
