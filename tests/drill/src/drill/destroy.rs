//! The rest of the attack, once the referee has its copy: the database host's files are
//! destroyed and its S3 keys turned on WORM; then every action of the attack is printed with
//! its outcome (those at the crash too).

use super::attack::{self, Action};
use super::referee::Truth;
use super::stage::Stage;
use super::{DrillError, Evidence, worm};

/// dd zeros over the online logs, rm -rf of the archive destination, the online logs,
/// redovault's state and configuration and the rest of the host; then, on S3, the attempts on
/// the archived logs the referee saw (each must be refused).
pub fn destroy(
    stage: &Stage,
    truth: &Truth,
    evidence: &mut Evidence,
    say: &mut dyn FnMut(&str),
) -> Result<(), DrillError> {
    let l = &stage.layout;
    let actions = &mut evidence.actions;
    actions.push(attack::zero_files(&l.oracle.join("online"))?);
    actions.push(attack::remove_tree(
        &l.oracle.join("archive"),
        "the archive destination",
    )?);
    actions.push(attack::remove_tree(
        &l.oracle.join("online"),
        "the online redo logs",
    )?);
    actions.push(attack::remove_tree(
        &l.host_state,
        "redovault's state: manifest, checkpoints, status",
    )?);
    actions.push(attack::remove_tree(
        &l.host_etc,
        "redovault's configuration and the extractor's certificate",
    )?);
    actions.push(attack::remove_tree(&l.host, "everything else on the host")?);
    if let Some(t) = &stage.opts.s3 {
        let prefix = &stage.prefix;
        let keys: Vec<String> = truth
            .threads
            .values()
            .flat_map(|t| t.archived_sha256.values())
            .map(|h| format!("{prefix}/archive/sha256/{h}"))
            .collect();
        actions.extend(worm::attempts(t, prefix, &keys)?);
    } else {
        actions.push(Action::done(
            "attempts on WORM with the database host's credentials",
            "not run: the local store has no credentials (run with S3 for this part)",
        ));
    }
    for a in actions.iter() {
        let mark = match a.refused {
            Some(true) => "refused ",
            Some(false) => "ALLOWED ",
            None => "",
        };
        say(&format!("    {} -> {mark}{}", a.action, a.outcome));
    }
    Ok(())
}
