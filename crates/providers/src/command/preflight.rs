//! What preflight asks of the command provider: every program a selected drill runs can be
//! found.

use std::path::{Path, PathBuf};

use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Platform;

/// Preflight for [`Need::Program`](crate::preflight::Need::Program): a problem at `commands`
/// unless `program` can be found.
pub fn preflight(program: &str, platform: &Platform, problems: &mut Problems) {
    if locate_program(program, &platform.base_dir()).is_none() {
        problems.push(
            Problem::at(
                platform.locate("commands"),
                format!("program `{program}` is not installed or not on PATH"),
            )
            .hint("install it, or give its absolute path in the platform file"),
        );
    }
}

/// Where `program` would be found, for preflight (absolute or relative paths as given, else PATH).
#[must_use]
pub fn locate_program(program: &str, base_dir: &Path) -> Option<PathBuf> {
    let is_executable = |p: &Path| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        }
        #[cfg(not(unix))]
        {
            p.is_file()
        }
    };
    if program.contains('/') {
        let path = base_dir.join(program);
        return is_executable(&path).then_some(path);
    }
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| is_executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_on_path_or_not_at_all() {
        assert!(locate_program("no-such-program-firedrill", Path::new(".")).is_none());
        assert!(locate_program("sh", Path::new(".")).is_some());
    }

    #[test]
    fn a_missing_program_is_one_problem_naming_it_and_a_present_one_none() {
        let platform = firedrill_platform::load_str(
            Path::new("t.yaml"),
            "name: t\nregions:\n  a: { role: primary }\n  b: { role: failover }\n",
            &|_| None,
        )
        .unwrap_or_else(|p| panic!("platform: {p}"));
        let mut problems = Problems::default();
        preflight("sh", &platform, &mut problems);
        assert!(problems.is_empty(), "{problems}");
        preflight("no-such-program-firedrill", &platform, &mut problems);
        let text = problems.to_string();
        assert!(
            text.contains("program `no-such-program-firedrill` is not installed"),
            "{text}"
        );
    }
}
