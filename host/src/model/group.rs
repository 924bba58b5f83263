//! Rossum's user roles ("groups", served at `/groups`) as wasmhook's two roles.
//!
//! Rossum gives each user groups such as `admin`, `manager`, `annotator`, `viewer` or
//! `approver`, and its client creates users with `groups` (their URLs). wasmhook has two
//! roles, so it serves two groups and maps each to one role:
//!
//! - `admin` is wasmhook's `admin`: both manage everything of their organization.
//! - `annotator` is wasmhook's `member`. A member reads, tests and invokes, and changes
//!   nothing of the organization's setup; of Rossum's roles, `annotator` is the one a
//!   working user of an organization has by default (Rossum's `viewer` cannot act, and its
//!   `manager` manages queues and users, which a member may not).
//!
//! Ids are fixed, so a group's URL is the same in every organization and every
//! installation. Rossum's other groups are not served: a user given one of them is
//! refused, naming the groups there are.

/// One of Rossum's user roles that wasmhook serves, and the role it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Its id in `/groups/{id}`.
    pub id: u64,
    /// Rossum's name of the role.
    pub name: &'static str,
    /// The stored name of the wasmhook role it stands for (`admin` or `member`).
    pub role: &'static str,
}

/// The groups served, by id.
pub const GROUPS: &[Group] = &[
    Group {
        id: 1,
        name: "admin",
        role: "admin",
    },
    Group {
        id: 2,
        name: "annotator",
        role: "member",
    },
];

impl Group {
    /// The group of this id; none when wasmhook serves no such group.
    pub fn by_id(id: u64) -> Option<Group> {
        GROUPS.iter().find(|group| group.id == id).copied()
    }

    /// The group a user of this stored role is in; none for a role no group stands for.
    pub fn of_role(role: &str) -> Option<Group> {
        GROUPS.iter().find(|group| group.role == role).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_one_group_and_back() {
        for role in ["admin", "member"] {
            let group = Group::of_role(role);
            assert_eq!(group.map(|group| group.role), Some(role));
            assert_eq!(group.and_then(|group| Group::by_id(group.id)), group);
        }
        assert_eq!(Group::of_role("owner"), None);
        assert_eq!(Group::by_id(0), None);
        assert_eq!(
            Group::of_role("member").map(|group| group.name),
            Some("annotator")
        );
    }
}
