//! Detecting optional external tools, so a stage that needs one can be skipped
//! with a clear reason instead of failing on a machine that lacks it.

use std::env;
use std::process::{Command, Stdio};

/// Whether `program` is an executable file in one of the PATH directories.
/// Searched by hand: a few lines, and `which` is not everywhere.
pub fn on_path(program: &str) -> bool {
    let Some(path) = env::var_os("PATH") else {
        return false;
    };
    let file_name = format!("{program}{}", env::consts::EXE_SUFFIX);
    env::split_paths(&path).any(|dir| {
        let Ok(metadata) = dir.join(&file_name).metadata() else {
            return false;
        };
        #[cfg(unix)]
        let executable = {
            use std::os::unix::fs::PermissionsExt;
            metadata.permissions().mode() & 0o111 != 0
        };
        #[cfg(not(unix))]
        let executable = true;
        metadata.is_file() && executable
    })
}

/// Whether a nightly toolchain is installed, for stages that need unstable
/// flags (AddressSanitizer). Asks rustup first; falls back to trying
/// `cargo +nightly`, which must go through the rustup proxy `cargo` on PATH,
/// not `$CARGO` (that is the pinned toolchain's own binary, which ignores `+nightly`).
pub fn nightly_installed() -> bool {
    let quiet = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
    };
    if let Ok(out) = quiet("rustup", &["toolchain", "list"])
        && out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains("nightly")
    {
        return true;
    }
    quiet("cargo", &["+nightly", "--version"]).is_ok_and(|out| out.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PATH search finds a program every Unix has and rejects a made-up one.
    #[test]
    fn finds_programs_on_path() {
        #[cfg(unix)]
        assert!(on_path("sh"));
        assert!(!on_path("surely-no-such-program-xtask"));
    }

    /// The nightly check answers without panicking whatever is installed.
    #[test]
    fn nightly_check_does_not_panic() {
        let _ = nightly_installed();
    }
}
