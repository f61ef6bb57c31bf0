//! The two backends' migrations keep step, and the binary embeds every file.

use std::path::Path;

use newsletter::store::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

fn versions_in(folder: &str) -> Vec<(i64, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut versions: Vec<(i64, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let (version, rest) = name.split_once('_').expect("NNNN_description.sql");
            let description = rest.strip_suffix(".sql").expect("a .sql file");
            (version.parse().unwrap(), description.to_owned())
        })
        .collect();
    versions.sort();
    versions
}

fn embedded(list: &[(i64, &str, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(v, d, _)| (*v, d.to_string())).collect()
}

#[test]
fn both_folders_have_the_same_versions() {
    let sqlite = versions_in("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, versions_in("postgres"));
}

#[test]
fn the_binary_embeds_every_migration_file() {
    assert_eq!(embedded(SQLITE_MIGRATIONS), versions_in("sqlite"));
    assert_eq!(embedded(POSTGRES_MIGRATIONS), versions_in("postgres"));
}
