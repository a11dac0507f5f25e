//! Where things are in the workspace, found from the source tree itself so that
//! adding a crate or an example needs no change to xtask.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The workspace root, the parent of xtask's own directory: commands are run
/// from there whatever directory `cargo xtask` was started in.
pub fn root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// The manifest of the workspace crate `package`, whose directory under
/// `crates/` is named after the package.
pub fn manifest_path(root: &Path, package: &str) -> PathBuf {
    root.join("crates").join(package).join("Cargo.toml")
}

/// Reads the manifest of `package`, with the path in the error so a failure is self-explaining.
pub fn read_manifest(root: &Path, package: &str) -> Result<String, String> {
    let path = manifest_path(root, package);
    fs::read_to_string(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))
}

/// An example program of a workspace crate, as `cargo run --example` needs it.
pub struct Example {
    /// The package, equal to its directory name under `crates/`.
    pub package: String,
    /// The example's name: the file stem of `crates/<package>/examples/<name>.rs`.
    pub name: String,
}

/// Every `crates/*/examples/*.rs`, sorted by package then name so runs are
/// reproducible; crates without an `examples` directory simply contribute none.
pub fn examples(root: &Path) -> Result<Vec<Example>, String> {
    let crates_dir = root.join("crates");
    let mut examples = Vec::new();
    for crate_dir in sorted_entries(&crates_dir)? {
        let examples_dir = crate_dir.join("examples");
        if !examples_dir.is_dir() {
            continue;
        }
        let Some(package) = file_name(&crate_dir) else {
            continue;
        };
        for file in sorted_entries(&examples_dir)? {
            if file.is_file()
                && file.extension().is_some_and(|ext| ext == "rs")
                && let Some(name) = file.file_stem().and_then(|stem| stem.to_str())
            {
                examples.push(Example {
                    package: package.clone(),
                    name: name.to_owned(),
                });
            }
        }
    }
    Ok(examples)
}

/// The entries of `dir` as full paths, sorted (read_dir's order is arbitrary).
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let read = |dir: &Path| -> io::Result<Vec<PathBuf>> {
        let mut paths = fs::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<io::Result<Vec<_>>>()?;
        paths.sort();
        Ok(paths)
    };
    read(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))
}

/// The last component of `path` as UTF-8, which package names always are.
fn file_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root found from xtask's manifest dir is the workspace, not xtask.
    #[test]
    fn root_is_the_workspace() {
        let root = root();
        assert!(root.join("xtask").join("Cargo.toml").is_file());
        assert!(
            fs::read_to_string(root.join("Cargo.toml"))
                .unwrap()
                .contains("[workspace]")
        );
    }

    /// Example discovery names each example after its file and its crate's directory.
    #[test]
    fn discovers_examples() {
        let dir = std::env::temp_dir().join(format!("xtask-examples-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("crates/b-crate/examples/not-an-example")).unwrap();
        fs::create_dir_all(dir.join("crates/a-crate/src")).unwrap();
        fs::write(dir.join("crates/b-crate/examples/zeta.rs"), "").unwrap();
        fs::write(dir.join("crates/b-crate/examples/alpha.rs"), "").unwrap();
        fs::write(dir.join("crates/b-crate/examples/README.md"), "").unwrap();

        let found: Vec<_> = examples(&dir)
            .unwrap()
            .into_iter()
            .map(|e| format!("{}/{}", e.package, e.name))
            .collect();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, ["b-crate/alpha", "b-crate/zeta"]);
    }
}
