//! The ground-truth journal: one JSON line per ended (committed or rolled back) transaction,
//! appended once the record holding its 5.4 is written to the online log.

use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Transaction id `usn.slot.sqn`.
    pub xid: String,
    /// Undo segment number.
    pub usn: u16,
    pub slot: u16,
    /// Wrap sequence.
    pub sqn: u32,
    /// Redo thread.
    pub thread: u16,
    /// Log sequence of the file holding the 5.4.
    pub sequence: u32,
    /// Commit SCN (the SCN of the record holding the 5.4).
    pub scn: u64,
    /// Commit time, ISO 8601 UTC (the 5.4 time field on 23ai logs, and the LWN timestamp).
    pub time: String,
    /// Commit time, Unix seconds.
    pub unix_time: i64,
    /// True when the transaction rolled back (5.4 flag 0x04).
    pub rollback: bool,
    /// Block of the record holding the 5.4.
    pub block: u32,
    /// Offset of that record in its block (counting the 16-byte block header).
    pub offset: u16,
    /// SCN of the transaction's first record (5.2).
    pub begin_scn: u64,
    /// Table changed.
    pub table: String,
    pub data_object_id: u32,
    /// Extended ROWIDs of the rows changed, in order.
    pub row_ids: Vec<String>,
    /// Number of row changes (inserts + updates + deletes).
    pub op_count: u32,
    pub inserts: u32,
    pub updates: u32,
    pub deletes: u32,
    /// True for a long transaction of the mix.
    pub long: bool,
}

/// Reads a journal file's lines.
pub fn parse_journal(text: &str) -> Result<Vec<JournalEntry>, serde_json::Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

/// ISO 8601 UTC of Unix seconds (`2026-03-07T01:44:40Z`).
pub fn iso8601(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time() {
        assert_eq!(iso8601(1_772_847_880), "2026-03-07T01:44:40Z");
    }
}
