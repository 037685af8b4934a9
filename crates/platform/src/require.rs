//! What a drill's steps need the platform file to describe beyond what they name themselves: a
//! region with a role. The platform file alone needs no region at all (one probe and one
//! command fault are a platform); validation asks for a role only when a selected drill has a
//! step that needs it, and then says which key to add.

use std::path::PathBuf;

use super::{Platform, Role};

impl Role {
    /// Its name, as the platform file writes it after `role:`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Failover => "failover",
        }
    }

    /// A region of the reference estate with this role, for hints.
    const fn example_region(self) -> &'static str {
        match self {
            Self::Primary => "us-west1",
            Self::Failover => "us-west2",
        }
    }
}

/// A region role a step needs and the platform file does not give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} (hint: {})", self.message(), self.hint())]
pub struct Unmet {
    /// The role no region has.
    pub role: Role,
    /// The platform file, as the user named it.
    pub file: PathBuf,
    /// The regions it does name.
    pub regions: Vec<String>,
}

impl Unmet {
    /// What is missing, and where.
    #[must_use]
    pub fn message(&self) -> String {
        let role = self.role.as_str();
        let file = self.file.display();
        if self.regions.is_empty() {
            format!("needs a {role} region, and platform file {file} has no `regions:`")
        } else {
            format!(
                "needs a {role} region, and no region of platform file {file} has `role: {role}`"
            )
        }
    }

    /// The key to add.
    #[must_use]
    pub fn hint(&self) -> String {
        let role = self.role.as_str();
        let region = self.role.example_region();
        if self.regions.is_empty() {
            format!("add to the platform file: regions: {{ {region}: {{ role: {role} }} }}")
        } else {
            format!(
                "add one under `regions:` (it names {}), e.g. {region}: {{ role: {role} }}",
                firedrill_core::diagnostic::one_of(&self.regions)
            )
        }
    }
}

impl Platform {
    /// Why a step needing a region with `role` cannot run against this platform, if it cannot.
    #[must_use]
    pub fn unmet(&self, role: Role) -> Option<Unmet> {
        self.region_with(role).is_none().then(|| Unmet {
            role,
            file: self.source.path.clone(),
            regions: self.regions.keys().cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Role;

    fn load(yaml: &str) -> crate::Platform {
        crate::load_str(Path::new("p.yaml"), yaml, &|_| None).unwrap_or_else(|p| panic!("{p}"))
    }

    #[test]
    fn a_platform_without_regions_names_the_missing_key_and_how_to_write_it() {
        let platform = load("name: minimal\nprobes:\n  site: { url: \"http://127.0.0.1:9/\" }\n");
        assert!(platform.regions.is_empty());
        let unmet = platform.unmet(Role::Failover).expect("no failover region");
        assert_eq!(
            unmet.to_string(),
            "needs a failover region, and platform file p.yaml has no `regions:` (hint: add to the platform file: regions: { us-west2: { role: failover } })"
        );
        assert_eq!(
            platform.unmet(Role::Primary).map(|u| u.hint()).as_deref(),
            Some("add to the platform file: regions: { us-west1: { role: primary } }")
        );
    }

    #[test]
    fn regions_without_the_role_are_named_in_the_hint() {
        let platform = load("name: one\nregions:\n  here: { role: primary }\n");
        assert_eq!(platform.unmet(Role::Primary), None);
        let unmet = platform.unmet(Role::Failover).expect("no failover region");
        assert_eq!(
            unmet.message(),
            "needs a failover region, and no region of platform file p.yaml has `role: failover`"
        );
        assert_eq!(
            unmet.hint(),
            "add one under `regions:` (it names \"here\"), e.g. us-west2: { role: failover }"
        );
    }
}
