//! What the route handlers share beyond the envelope: wire pagination → store pages, and the answer of the
//! `get_full_*_ids` routes. Store rows → wire types are in `service::wire` (the services need them too).

use crate::error::{ApiError, ApiResult};
use palaver_protocol::pb::sdkws;
use palaver_store::{Page, VersionHead};

/// OpenIM's `pagination{pageNumber, showNumber}` (1-based pages) as a store page, at most `max` rows.
pub(crate) fn page(p: Option<&sdkws::RequestPagination>, max: i64) -> ApiResult<Page> {
    let p = p.ok_or_else(|| ApiError::args("pagination is required"))?;
    let (number, show) = (i64::from(p.page_number), i64::from(p.show_number));
    if number < 1 || show < 1 {
        return Err(ApiError::args("pagination pageNumber and showNumber must be at least 1"));
    }
    if show > max {
        return Err(ApiError::args(format!("pagination showNumber must be at most {max}")));
    }
    Ok(Page { offset: (number - 1).saturating_mul(show), limit: show })
}

/// The answer of a `get_full_*_ids` route: the list's head, and the ids unless the client's hash shows it has
/// them already.
pub(crate) struct FullIds {
    pub version: u64,
    pub version_id: String,
    pub equal: bool,
    pub ids: Vec<String>,
}

pub(crate) fn full_ids(head: VersionHead, ids: Vec<String>, client_hash: u64) -> FullIds {
    let equal = client_hash == crate::service::sync::id_hash(&ids);
    FullIds {
        version: head.version as u64,
        version_id: head.version_id,
        equal,
        ids: if equal { Vec::new() } else { ids },
    }
}
