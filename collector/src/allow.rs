//! Which extractors may ship which databases: the `[[extractor]]` allow-list, read by the
//! config and checked by each session at its Hello.

/// One `[[extractor]]`: who may ship, and which databases.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(default)]
pub struct ExtractorAllow {
    /// The extractor id (certificate CN or DNS SAN under TLS); required.
    #[serde(deserialize_with = "redovault::config::sections::non_blank")]
    pub id: String,
    /// Databases it may ship; empty: any.
    pub db_ids: Vec<u32>,
}

/// True when extractor `id` may ship database `db_id` under this allow-list (always when
/// the list is empty).
pub fn allowed(list: &[ExtractorAllow], id: &str, db_id: u32) -> bool {
    list.is_empty()
        || list
            .iter()
            .any(|e| e.id == id && (e.db_ids.is_empty() || e.db_ids.contains(&db_id)))
}
