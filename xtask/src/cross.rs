//! The cross stages of `cargo xtask test`: the workspace's tests and
//! examples built for aarch64 and riscv64 Linux and run under qemu-user,
//! and what is ported of it built for x86-64 Windows and run under wine.
//!
//! Rustup's pinned toolchain cannot add targets here, so these stages use a
//! second, complete toolchain: Debian's `rustc-web`, `cargo-web` and
//! `rust-web-src` (Rust with the standard library's source), which builds
//! std for the target with `-Zbuild-std` (`RUSTC_BOOTSTRAP=1`). It is called
//! by absolute path, and only here: every native stage keeps the pinned
//! toolchain. The builds go to a target directory of their own.

use std::env;
use std::path::{Path, PathBuf};

use crate::process::Cmd;
use crate::tools;

/// The toolchain the cross stages use (Debian's, by absolute path).
const CARGO: &str = "/usr/bin/cargo";
const RUSTC: &str = "/usr/bin/rustc";
const RUSTDOC: &str = "/usr/bin/rustdoc";
/// Where `rust-web-src` puts the standard library's source.
const STD_SOURCE: &str = "/usr/lib/rustlib/src/rust/library";

/// One emulated target.
pub struct Target {
    /// The Rust target triple.
    pub triple: &'static str,
    /// Short name, for the stage's label.
    pub arch: &'static str,
    /// The GNU triple of its cross gcc and of its libraries under `/usr`.
    gnu: &'static str,
    /// The Debian package of that gcc.
    gcc_package: &'static str,
    /// The program that runs its binaries, and its Debian package.
    emulator: (&'static str, &'static str),
    /// The emulator's arguments before the binary.
    emulator_args: &'static str,
    /// Variables the emulator wants.
    emulator_env: &'static [(&'static str, &'static str)],
    /// Whether a test's child process must be started through the emulator
    /// too (qemu-user), or starts as any program there does (wine).
    emulates_children: bool,
    /// How many random programs sure-coro's property test runs here
    /// (`SURE_PROPTEST_CASES`), where an emulator makes its 8,000 too slow.
    pub property_cases: Option<&'static str>,
}

/// The Linux targets the cross stages test.
pub const TARGETS: [Target; 2] = [
    Target {
        triple: "aarch64-unknown-linux-gnu",
        arch: "aarch64",
        gnu: "aarch64-linux-gnu",
        gcc_package: "gcc-aarch64-linux-gnu",
        emulator: ("qemu-aarch64", "qemu-user"),
        emulator_args: "-L /usr/aarch64-linux-gnu",
        emulator_env: &[],
        emulates_children: true,
        property_cases: Some("1000"),
    },
    Target {
        triple: "riscv64gc-unknown-linux-gnu",
        arch: "riscv64",
        gnu: "riscv64-linux-gnu",
        gcc_package: "gcc-riscv64-linux-gnu",
        emulator: ("qemu-riscv64", "qemu-user"),
        emulator_args: "-L /usr/riscv64-linux-gnu",
        emulator_env: &[],
        emulates_children: true,
        property_cases: Some("1000"),
    },
];

/// x86-64 Windows, run under wine. `x86_64-win7-windows-gnu` has the ABI
/// of `x86_64-pc-windows-gnu`, whose std needs `ProcessPrng`
/// (bcryptprimitives.dll), which Debian's wine 8 lacks: its programs do not
/// start there, while win7-gnu's do.
pub const WINDOWS: Target = Target {
    triple: "x86_64-win7-windows-gnu",
    arch: "windows",
    gnu: "x86_64-w64-mingw32",
    gcc_package: "gcc-mingw-w64-x86-64",
    emulator: ("/usr/lib/wine/wine64", "wine64"),
    emulator_args: "",
    // WINEDEBUG: no wine diagnostics in the test output. winedbg off: on
    // an unhandled exception wine starts its debugger, after which the
    // process ends with another status than the exception's code, which is
    // what Windows ends it with (and what the guard-page test checks).
    emulator_env: &[("WINEDEBUG", "-all"), ("WINEDLLOVERRIDES", "winedbg.exe=d")],
    emulates_children: false,
    property_cases: None,
};

/// The Windows targets that must build, without a linker (`cargo check`).
pub const WINDOWS_CHECKED: [&str; 2] = ["x86_64-pc-windows-gnu", "x86_64-pc-windows-msvc"];

impl Target {
    /// Why this target cannot be tested on this machine, if it cannot: the
    /// first missing piece, and the Debian package that gives it.
    pub fn missing(&self) -> Option<String> {
        let linker = format!("{}-gcc", self.gnu);
        let sysroot = format!("/usr/{}/lib", self.gnu);
        let checks = [
            (
                Path::new(CARGO).is_file(),
                format!("{CARGO} (package cargo-web)"),
            ),
            (
                Path::new(RUSTC).is_file(),
                format!("{RUSTC} (package rustc-web)"),
            ),
            (
                Path::new(STD_SOURCE).is_dir(),
                format!("{STD_SOURCE} (package rust-web-src)"),
            ),
            (
                tools::on_path(&linker),
                format!("{linker} (package {})", self.gcc_package),
            ),
            (
                Path::new(&sysroot).is_dir(),
                format!("{sysroot} (the target's libc for {linker})"),
            ),
            (
                tools::on_path(self.emulator.0) || Path::new(self.emulator.0).is_file(),
                format!("{} (package {})", self.emulator.0, self.emulator.1),
            ),
        ];
        checks
            .into_iter()
            .find(|(present, _)| !present)
            .map(|(_, what)| format!("{what} not found; .ci/run installs it"))
    }

    /// The runner cargo puts before every test binary and example.
    fn runner(&self) -> String {
        format!("{} {}", self.emulator.0, self.emulator_args)
            .trim_end()
            .to_owned()
    }

    /// A cargo command of the cross toolchain for this target: the
    /// subcommand `args[0]`, `-Zbuild-std --target <triple>`, then the rest
    /// of `args` (so that what follows a `--` still goes to the tests), with
    /// the linker, the runner and their companions set.
    pub fn cargo(&self, args: &[&str]) -> Cmd {
        let key = self.triple.to_uppercase().replace('-', "_");
        let mut command = cargo_for(&[self.triple], args)
            .env(
                format!("CARGO_TARGET_{key}_LINKER"),
                format!("{}-gcc", self.gnu),
            )
            .env(format!("CARGO_TARGET_{key}_RUNNER"), self.runner())
            // Tests that re-run their own binary in a child process start
            // it through qemu too; under wine, a Windows program starts
            // another directly.
            .env(
                "SURE_TEST_RUNNER",
                if self.emulates_children {
                    self.runner()
                } else {
                    String::new()
                },
            );
        for (key, value) in self.emulator_env {
            command = command.env(*key, *value);
        }
        if let Some(cases) = self.property_cases {
            command = command.env("SURE_PROPTEST_CASES", cases);
        }
        command
    }
}

/// The cross toolchain's target directory (`target/cross`, or under
/// `CARGO_TARGET_DIR`): its own, as its compiler differs from the native one.
fn target_dir() -> PathBuf {
    let target = env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Path::new(&target).join("cross")
}

/// Where the builds for `triple` go, standard library included (about 2 GB
/// for a target's whole stage).
pub fn build_dir(triple: &str) -> PathBuf {
    target_dir().join(triple)
}

/// A cargo command of the cross toolchain for the targets `triples` (one
/// build for them all, so that their standard libraries build side by
/// side), with neither linker nor runner: the subcommand `args[0]`,
/// `-Zbuild-std`, `--target <triple>` for each, then the rest of `args`.
pub fn cargo_for(triples: &[&str], args: &[&str]) -> Cmd {
    let target_dir = target_dir();
    let (subcommand, rest) = args.split_first().expect("a cargo subcommand");
    let mut all = vec![*subcommand, "-Zbuild-std"];
    for triple in triples {
        all.extend(["--target", triple]);
    }
    all.extend_from_slice(rest);
    Cmd::new(CARGO, all)
        // Line tables are all that backtraces need (function names, files
        // and lines); full debug info makes std and every test binary
        // slower to build and link for the target.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", RUSTC)
        .env("RUSTDOC", RUSTDOC)
        .env("CARGO_TARGET_DIR", target_dir.to_string_lossy())
}
