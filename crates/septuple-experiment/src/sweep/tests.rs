use super::*;

use crate::config::ExperimentConfig;

fn manifest(networks: usize, seeds: usize) -> SweepManifest {
    let mut c = ExperimentConfig::smoke();
    c.histogram_epochs = Vec::new();
    c.networks = (0..networks)
        .map(|i| NetworkSpec {
            name: format!("n{i}"),
            sizes: vec![784, 10 + i, 10],
        })
        .collect();
    c.seeds = (1..=seeds as u64).collect();
    SweepManifest {
        name: "t".into(),
        experiment: c,
        loss_levels: default_loss_levels(),
        probe_epochs: vec![2],
    }
}

#[test]
fn the_shards_partition_the_runs_exactly_once_each() {
    let sweep = manifest(7, 5).check().unwrap();
    let all = sweep.runs();
    assert_eq!(all.len(), 35);
    for count in 1..=40 {
        let mut union: Vec<RunKey> = (0..count)
            .flat_map(|i| sweep.shard_runs(Shard::new(i, count).unwrap()))
            .collect();
        assert_eq!(union.len(), all.len(), "{count} shards");
        union.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(union, sorted, "{count} shards");
        // Balanced: shard sizes differ by at most one.
        let sizes: Vec<usize> = (0..count)
            .map(|i| sweep.shard_runs(Shard::new(i, count).unwrap()).len())
            .collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    }
}

#[test]
fn shards_and_jobs_parse_or_say_what_they_expect() {
    assert_eq!("2/5".parse::<Shard>().unwrap(), Shard::new(2, 5).unwrap());
    for bad in ["5/5", "1/0", "x/2", "3", "-1/2"] {
        let e = bad.parse::<Shard>().unwrap_err().to_string();
        assert!(e.contains("0 <= i < n"), "{bad}: {e}");
    }
    assert_eq!("auto".parse::<Jobs>().unwrap(), Jobs::Auto);
    assert_eq!(
        "3".parse::<Jobs>().unwrap(),
        Jobs::Fixed(NonZeroUsize::new(3).unwrap())
    );
    assert!("0".parse::<Jobs>().is_err());
    assert_eq!(Jobs::Fixed(NonZeroUsize::new(8).unwrap()).resolve(3), 3);
    assert_eq!(Jobs::Auto.resolve(1), 1);
}

#[test]
fn a_manifest_names_its_first_wrong_field() {
    let mut m = manifest(2, 2);
    m.loss_levels = vec![0.1, 0.2];
    let e = m.check().unwrap_err().to_string();
    assert!(e.contains("loss_levels[1]"), "{e}");
    let mut m = manifest(2, 2);
    m.probe_epochs = vec![3];
    let e = m.check().unwrap_err().to_string();
    assert!(e.contains("probe_epochs[0]"), "{e}");
    let mut m = manifest(2, 2);
    m.name = "a b".into();
    assert!(m.check().unwrap_err().to_string().contains("name"));
    // The last epoch is always a probe epoch.
    assert_eq!(manifest(2, 2).check().unwrap().probe_epochs(), &[2, 5]);
}

#[test]
fn a_loss_curve_ignores_a_torn_last_line_beyond_its_limit_and_rejects_one_within() {
    let dir = std::env::temp_dir().join(format!("septuple-curve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("c.csv");
    std::fs::write(&p, format!("{LOSS_CURVE_HEADER}\n1,0.5\n2,0.25\n3,0.1")).unwrap();
    assert_eq!(read_loss_curve(&p, Some(2)).unwrap(), vec![0.5, 0.25]);
    assert_eq!(read_loss_curve(&p, None).unwrap(), vec![0.5, 0.25, 0.1]);
    std::fs::write(&p, format!("{LOSS_CURVE_HEADER}\n1,0.5\n3,0.25\n")).unwrap();
    let e = read_loss_curve(&p, None).unwrap_err().to_string();
    assert!(e.contains("line 3"), "{e}");
    std::fs::write(&p, "epoch,loss\n").unwrap();
    assert!(read_loss_curve(&p, None).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn curve_text_round_trips_every_bit() {
    let losses = [0.1 + 0.2, 1e-300, 0.3333333333333333, f64::MIN_POSITIVE];
    let dir = std::env::temp_dir().join(format!("septuple-curve-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("c.csv");
    std::fs::write(&p, curve_text(&losses)).unwrap();
    let back = read_loss_curve(&p, None).unwrap();
    assert_eq!(back, losses);
    std::fs::remove_dir_all(&dir).unwrap();
}
