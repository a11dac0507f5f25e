//! Reading the few facts xtask needs out of `Cargo.toml` text. A full TOML
//! parser would need a crate; these line-based checks cover how manifests in
//! this workspace are written (table headers on their own line, one key per line).

/// Whether the manifest declares a feature named `feature` in its `[features]`
/// table, so that a feature-matrix stage can skip features that do not exist yet.
pub fn declares_feature(manifest: &str, feature: &str) -> bool {
    let mut in_features = false;
    for line in manifest.lines().map(strip_comment) {
        if let Some(header) = table_header(line) {
            in_features = header == "features";
        } else if in_features && key(line) == Some(feature) {
            return true;
        }
    }
    false
}

/// Whether the manifest declares at least one `[[bench]]` target. Criterion
/// benches need one (to set `harness = false`), so this says whether
/// `cargo bench` has anything of ours to run.
pub fn declares_bench(manifest: &str) -> bool {
    manifest
        .lines()
        .map(strip_comment)
        .any(|line| line == "[[bench]]")
}

/// The line without its `#` comment and surrounding whitespace. A `#` inside a
/// string value would be cut too; no key we look for is affected by that.
fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or_default().trim()
}

/// The name of a `[table]` or `[[array-of-tables]]` header line, if it is one.
fn table_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(inner);
    Some(inner.trim())
}

/// The key of a `key = value` line, unquoted, if the line is one.
fn key(line: &str) -> Option<&str> {
    let (key, _value) = line.split_once('=')?;
    Some(key.trim().trim_matches(|c| c == '"' || c == '\''))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest shaped like the workspace's crates, with a feature in the middle.
    const MANIFEST: &str = r#"
[package]
name = "sure-context"
fp-control = "not a feature"   # same key, wrong table

[features]
default = []
"fp-control" = []  # quoted key

[dependencies]
static_assertions.workspace = true

[[bench]]
name = "switch"
harness = false
"#;

    /// Only keys of the `[features]` table count, quoted or not.
    #[test]
    fn finds_features_only_in_the_features_table() {
        assert!(declares_feature(MANIFEST, "fp-control"));
        assert!(declares_feature(MANIFEST, "default"));
        assert!(!declares_feature(MANIFEST, "name"));
        assert!(!declares_feature(MANIFEST, "static_assertions.workspace"));
        assert!(!declares_feature(
            "[package]\nfp-control = 1\n",
            "fp-control"
        ));
    }

    /// A commented-out feature is not declared.
    #[test]
    fn ignores_commented_out_features() {
        assert!(!declares_feature(
            "[features]\n# fp-control = []\n",
            "fp-control"
        ));
    }

    /// `[[bench]]` tables are recognised, commented-out ones are not.
    #[test]
    fn finds_bench_targets() {
        assert!(declares_bench(MANIFEST));
        assert!(!declares_bench("[package]\n# [[bench]]\n"));
    }
}
