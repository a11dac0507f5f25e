//! Running external commands with their output passed straight through, and
//! printing what runs, so that a CI log shows every command that was executed.

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::process::Command;

/// A program and its arguments, kept as data so that a stage can print the
/// exact command before running it and reuse the same text in its summary.
pub struct Cmd {
    /// What to execute (for cargo, possibly a full path taken from `$CARGO`).
    program: OsString,
    /// Arguments, passed as-is (no shell involved).
    args: Vec<String>,
    /// Environment variables set for the command, on top of xtask's own.
    envs: Vec<(String, String)>,
}

impl Cmd {
    /// A `cargo` invocation, using the same cargo that runs xtask (see [`cargo_program`]).
    pub fn cargo<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd::new(cargo_program(), args)
    }

    /// Any program (looked up on PATH unless it is a path) with `args`.
    pub fn new<I, S>(program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            envs: Vec::new(),
        }
    }

    /// Sets the environment variable `key` to `value` for this command.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Runs the command in `dir` with inherited stdin/stdout/stderr, so its
    /// output appears live; returns why it failed if it did not exit with 0.
    pub fn run(&self, dir: &Path) -> Result<(), String> {
        let status = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .current_dir(dir)
            .status()
            .map_err(|err| format!("could not start `{self}`: {err}"))?;
        if status.success() {
            Ok(())
        } else {
            // ExitStatus prints e.g. "exit status: 101" or "signal: 11 (SIGSEGV)".
            Err(format!("`{self}` failed: {status}"))
        }
    }
}

impl fmt::Display for Cmd {
    /// Shows the command as one would type it: environment variables first,
    /// the program (xtask's own cargo as `cargo`, not the full toolchain
    /// path; any other as given, so that `/usr/bin/cargo` stays itself) and
    /// arguments quoted for a shell where needed, so the line can be copied
    /// and re-run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.envs {
            write!(f, "{key}={} ", shell_quote(value))?;
        }
        let program = if self.program == cargo_program() {
            "cargo".as_ref()
        } else {
            self.program.as_os_str()
        };
        write!(f, "{}", program.to_string_lossy())?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

/// The cargo to run: `$CARGO` when set (cargo sets it for `cargo xtask`, so the
/// pinned toolchain's cargo is reused), else whatever `cargo` is on PATH.
pub fn cargo_program() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Prints a `==> ` line, the marker that makes xtask's own output easy to find
/// between the (long) output of the commands it runs.
pub fn announce(text: &str) {
    println!("==> {text}");
}

/// Quotes `arg` for a POSIX shell if it contains anything beyond plainly safe
/// characters; used only for display.
fn shell_quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands are displayed as a shell would need them typed.
    #[test]
    fn display_quotes_only_when_needed() {
        let cmd = Cmd::cargo(["bench", "--bench", "*", "it's", ""]);
        assert_eq!(cmd.to_string(), r"cargo bench --bench '*' 'it'\''s' ''");
    }

    /// Any program but xtask's own cargo keeps its full path: the cross
    /// stages' `/usr/bin/cargo` is another toolchain than `cargo`.
    #[test]
    fn display_keeps_other_programs_paths() {
        let cmd = Cmd::new("/usr/bin/cargo", ["test"]);
        assert_eq!(cmd.to_string(), "/usr/bin/cargo test");
    }

    /// Environment variables are shown before the program, as a shell takes them.
    #[test]
    fn display_puts_the_environment_first() {
        let cmd = Cmd::new("valgrind", ["target/debug/examples/stress"])
            .env("A", "1")
            .env("B", "two words");
        assert_eq!(
            cmd.to_string(),
            "A=1 B='two words' valgrind target/debug/examples/stress"
        );
    }
}
