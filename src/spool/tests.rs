use super::*;

fn entry(id: u64) -> Entry {
    Entry {
        id,
        channels: vec!["engine_fps_id".into(), "sms_metrics".into()],
        message: format!(r#"{{"id":"engine_fps_id","data":{{"fps":{id}}}}}"#),
    }
}

fn ids(spool: &Spool) -> Vec<u64> {
    spool.pending().map(|e| e.id).collect()
}

fn log_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join(LOG_FILE)
}

/// The log file's size on disk.
fn log_len(dir: &tempfile::TempDir) -> u64 {
    fs::metadata(log_path(dir)).unwrap().len()
}

/// Opens the spool in `dir`, bounded by `max_bytes`, and appends `entry(id)` for each of `ids`
/// (none of which may drop anything).
fn spool_with(
    dir: &tempfile::TempDir,
    max_bytes: u64,
    ids: impl IntoIterator<Item = u64>,
) -> Spool {
    let mut spool = Spool::open(dir.path(), max_bytes).unwrap();
    for id in ids {
        assert!(spool.append(&entry(id)).unwrap().is_empty());
    }
    spool
}

/// Opens the spool in `dir` again, which must come back without a warning.
fn reopen_clean(dir: &tempfile::TempDir, max_bytes: u64) -> Spool {
    let mut spool = Spool::open(dir.path(), max_bytes).unwrap();
    assert_eq!(spool.take_warnings(), vec![]);
    spool
}

#[test]
fn pending_entries_survive_a_restart_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = spool_with(&dir, 1 << 20, 1..=5);
        spool.ack(2).unwrap();
        spool.ack(4).unwrap();
        spool.ack(99).unwrap(); // unknown: ignored
    }
    let spool = reopen_clean(&dir, 1 << 20);
    assert_eq!(ids(&spool), vec![1, 3, 5]);
    assert_eq!(spool.pending().next(), Some(&entry(1)));
    assert_eq!(spool.next_free_id(), 6);
    assert_eq!(spool.len(), 3);
}

#[test]
fn acking_everything_cuts_the_file_to_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = spool_with(&dir, 1 << 20, 1..=10);
    assert!(spool.bytes() > HEADER_LEN);
    for id in 1..=10 {
        spool.ack(id).unwrap();
    }
    assert_eq!(spool.bytes(), HEADER_LEN);
    assert_eq!(log_len(&dir), HEADER_LEN);
    assert!(spool.is_empty());
    drop(spool);
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert!(spool.is_empty());
}

#[test]
fn compaction_rewrites_when_acked_bytes_dominate() {
    let dir = tempfile::tempdir().unwrap();
    let max = 64 * 1024;
    let mut spool = Spool::open(dir.path(), max).unwrap();
    let mut high_water = 0;
    // Keep one entry pending (so the cheap cut-to-header never applies) while acking the rest.
    spool.append(&entry(0)).unwrap();
    for id in 1..=2000 {
        spool.append(&entry(id)).unwrap();
        spool.ack(id).unwrap();
        high_water = high_water.max(spool.bytes());
        if id % 100 == 0 {
            spool.sync().unwrap();
            assert_eq!(spool.bytes(), log_len(&dir));
        }
    }
    // 2000 entries of ~90 bytes would be ~180 KB without compaction, and nothing was dropped.
    assert!(high_water <= max, "{high_water}");
    assert!(spool.bytes() < max / 2 + 200, "{}", spool.bytes());
    assert_eq!(ids(&spool), vec![0]);
    drop(spool);
    assert_eq!(ids(&reopen_clean(&dir, max)), vec![0]);
}

#[test]
fn a_truncated_tail_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    drop(spool_with(&dir, 1 << 20, 1..=3));
    let path = log_path(&dir);
    let len = log_len(&dir);
    let last_start = len - record::append_len(&entry(3));
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();

    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let warnings = spool.take_warnings();
    assert_eq!(
        warnings,
        vec![SpoolWarning::Corrupt {
            path: path.clone(),
            offset: last_start,
            skipped_bytes: len - 5 - last_start,
            kind: CorruptKind::Truncated
        }]
    );
    assert!(
        warnings[0].to_string().contains("truncated record"),
        "{}",
        warnings[0]
    );
    assert_eq!(ids(&spool), vec![1, 2]);
    // The file was rewritten clean: new appends are readable after another restart.
    spool.append(&entry(4)).unwrap();
    drop(spool);
    assert_eq!(ids(&reopen_clean(&dir, 1 << 20)), vec![1, 2, 4]);
}

#[test]
fn a_flipped_byte_skips_from_the_damaged_record_on() {
    let dir = tempfile::tempdir().unwrap();
    drop(spool_with(&dir, 1 << 20, 1..=4));
    let path = log_path(&dir);
    let mut bytes = fs::read(&path).unwrap();
    let size = record::append_len(&entry(1));
    let second = HEADER_LEN + size;
    bytes[(second + size / 2) as usize] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    match spool.take_warnings().as_slice() {
        [
            SpoolWarning::Corrupt {
                offset,
                kind: CorruptKind::CrcMismatch,
                skipped_bytes,
                ..
            },
        ] => {
            assert_eq!(*offset, second);
            assert_eq!(*skipped_bytes, bytes.len() as u64 - second);
        }
        other => panic!("unexpected warnings {other:?}"),
    }
    assert_eq!(ids(&spool), vec![1]);
}

#[test]
fn a_damaged_length_field_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    drop(spool_with(&dir, 4096, 1..=2));
    let path = log_path(&dir);
    let mut bytes = fs::read(&path).unwrap();
    let second = (HEADER_LEN + record::append_len(&entry(1))) as usize;
    bytes[second + 3] = 0x7f; // length ≈ 2 GB
    fs::write(&path, &bytes).unwrap();
    let mut spool = Spool::open(dir.path(), 4096).unwrap();
    assert!(matches!(
        spool.take_warnings().as_slice(),
        [SpoolWarning::Corrupt {
            kind: CorruptKind::BadLength(_),
            ..
        }]
    ));
    assert_eq!(ids(&spool), vec![1]);
}

#[test]
fn a_foreign_file_is_reported_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(log_path(&dir), b"this is not a spool at all").unwrap();
    let mut spool = Spool::open(dir.path(), 4096).unwrap();
    assert!(matches!(
        spool.take_warnings().as_slice(),
        [SpoolWarning::Corrupt {
            offset: 0,
            kind: CorruptKind::BadHeader,
            ..
        }]
    ));
    assert!(spool.is_empty());
    spool.append(&entry(1)).unwrap();
    drop(spool);
    assert_eq!(ids(&Spool::open(dir.path(), 4096).unwrap()), vec![1]);
}

#[test]
fn random_garbage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    drop(spool_with(&dir, 1 << 16, 1..=20));
    let original = fs::read(log_path(&dir)).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..200 {
        let mut bytes = original.clone();
        for _ in 0..(round % 7 + 1) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state as usize) % bytes.len();
            bytes[i] = (state >> 32) as u8;
        }
        bytes.truncate(bytes.len() - (state as usize % 40));
        fs::write(log_path(&dir), &bytes).unwrap();
        let spool = Spool::open(dir.path(), 1 << 16).unwrap();
        // Whatever survived is a prefix of what was written.
        let got = ids(&spool);
        assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn unknown_versions_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = record::header().to_vec();
    bytes[8] = 9;
    let crc = crc32fast::hash(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    fs::write(log_path(&dir), &bytes).unwrap();
    assert!(matches!(
        Spool::open(dir.path(), 4096),
        Err(SpoolError::UnsupportedVersion { version: 9, .. })
    ));
    assert_eq!(fs::read(log_path(&dir)).unwrap(), bytes);
}

#[test]
fn a_full_spool_drops_the_oldest_and_stays_in_bound() {
    let dir = tempfile::tempdir().unwrap();
    let max = 2000;
    let mut spool = Spool::open(dir.path(), max).unwrap();
    let mut dropped = Vec::new();
    for id in 1..=200 {
        dropped.extend(spool.append(&entry(id)).unwrap());
        assert!(spool.bytes() <= max, "{} > {max}", spool.bytes());
        assert_eq!(spool.bytes(), log_len(&dir));
    }
    let pending = ids(&spool);
    // Drops are the oldest, in order, and nothing is lost without being reported.
    assert_eq!(dropped, (1..=dropped.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        pending,
        (dropped.len() as u64 + 1..=200).collect::<Vec<_>>()
    );
    assert!(pending.len() >= 15, "{}", pending.len());
    drop(spool);
    let spool = Spool::open(dir.path(), max).unwrap();
    assert_eq!(ids(&spool), pending);
}

#[test]
fn refuse_new_keeps_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        max_bytes: 600,
        when_full: WhenFull::RefuseNew,
        fsync: FsyncPolicy::Always,
    };
    let mut spool = Spool::open_with(dir.path(), config).unwrap();
    let mut id = 0;
    let err = loop {
        id += 1;
        match spool.append(&entry(id)) {
            Ok(dropped) => assert!(dropped.is_empty()),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, SpoolError::Full { max: 600, .. }), "{err}");
    assert_eq!(ids(&spool), (1..id).collect::<Vec<_>>());
    // Acking makes room again.
    spool.ack(1).unwrap();
    spool.append(&entry(id)).unwrap();
    assert!(spool.bytes() <= 600);
}

#[test]
fn an_entry_larger_than_the_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 256).unwrap();
    let big = Entry {
        id: 1,
        channels: vec!["c".into()],
        message: "x".repeat(300),
    };
    assert!(matches!(
        spool.append(&big),
        Err(SpoolError::EntryTooLarge {
            id: 1,
            max: 256,
            ..
        })
    ));
    assert!(spool.is_empty());
}

#[test]
fn a_bound_too_small_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Spool::open(dir.path(), MIN_BYTES - 1),
        Err(SpoolError::BoundTooSmall(255))
    ));
    Spool::open(dir.path(), MIN_BYTES).unwrap();
}

#[test]
fn duplicate_pending_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 4096).unwrap();
    spool.append(&entry(1)).unwrap();
    assert!(matches!(
        spool.append(&entry(1)),
        Err(SpoolError::DuplicateId(1))
    ));
    spool.ack(1).unwrap();
    spool.append(&entry(1)).unwrap();
}

#[test]
fn a_lowered_bound_drops_the_oldest_on_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(spool_with(&dir, 1 << 20, 1..=50));
    let mut spool = Spool::open(dir.path(), 1000).unwrap();
    let kept = ids(&spool);
    match spool.take_warnings().as_slice() {
        [
            SpoolWarning::OverBound {
                dropped, max: 1000, ..
            },
        ] => {
            assert_eq!(dropped, &(1..=dropped.len() as u64).collect::<Vec<_>>());
            assert_eq!(kept, (dropped.len() as u64 + 1..=50).collect::<Vec<_>>());
        }
        other => panic!("unexpected warnings {other:?}"),
    }
    assert!(spool.bytes() <= 1000);
}

#[test]
fn one_spool_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 4096).unwrap();
    assert!(matches!(
        Spool::open(dir.path(), 4096),
        Err(SpoolError::Locked(_))
    ));
    drop(spool);
    Spool::open(dir.path(), 4096).unwrap();
}

#[test]
fn sync_and_fsync_policies_work() {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Batched(3),
        FsyncPolicy::Manual,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open_with(
            dir.path(),
            SpoolConfig {
                fsync,
                ..SpoolConfig::new(1 << 16)
            },
        )
        .unwrap();
        for id in 1..=7 {
            spool.append(&entry(id)).unwrap();
        }
        spool.ack(3).unwrap();
        spool.sync().unwrap();
        assert_eq!(spool.unsynced, 0);
        assert_eq!(spool.bytes(), log_len(&dir));
    }
}

#[test]
fn buffered_acks_reach_the_file_on_drop_and_with_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = spool_with(&dir, 1 << 20, 1..=4);
        spool.ack(1).unwrap();
        let before = log_len(&dir);
        spool.append(&entry(5)).unwrap();
        let after = log_len(&dir);
        assert_eq!(
            after - before,
            record::ACK_LEN + record::append_len(&entry(5))
        );
        spool.ack(2).unwrap(); // only buffered: written on drop
    }
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(ids(&spool), vec![3, 4, 5]);
}

proptest::proptest! {
    // Each case fsyncs on every restart and compaction: 64 cases keep the suite fast.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any sequence of appends, acks and restarts leaves exactly the model's pending entries, in order.
    #[test]
    fn matches_a_model_across_restarts(ops in proptest::collection::vec((0u8..10, 1u64..40), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let max = 3000;
        let mut spool = Spool::open(dir.path(), max).unwrap();
        let mut model: Vec<u64> = Vec::new();
        let mut next = 1;
        for (op, arg) in ops {
            match op {
                0..=5 => {
                    let e = Entry { id: next, channels: vec!["c".into()], message: "m".repeat(arg as usize * 3) };
                    next += 1;
                    let dropped = spool.append(&e).unwrap();
                    model.retain(|id| !dropped.contains(id));
                    model.push(e.id);
                }
                6..=8 => {
                    let id = if model.is_empty() { arg } else { model[arg as usize % model.len()] };
                    spool.ack(id).unwrap();
                    model.retain(|&m| m != id);
                }
                _ => {
                    drop(spool);
                    spool = Spool::open(dir.path(), max).unwrap();
                    proptest::prop_assert_eq!(spool.take_warnings(), vec![]);
                }
            }
            proptest::prop_assert!(spool.bytes() <= max);
            proptest::prop_assert_eq!(ids(&spool), model.clone());
        }
    }
}
