//! The rules of who may change and delete which user, and of the role a request asks for.

use serde_json::json;

use super::*;
use crate::store::users::UserChange;

#[test]
fn a_role_is_asked_by_role_or_by_groups_and_both_must_agree() -> ApiResult<()> {
    let admin = json!("https://h.example/api/v1/groups/1");
    let annotator = json!(2);
    assert_eq!(requested_role(None, None)?, None);
    assert_eq!(requested_role(None, Some(&[]))?, None);
    assert_eq!(requested_role(Some("admin"), None)?, Some("admin"));
    assert_eq!(
        requested_role(None, Some(std::slice::from_ref(&admin)))?,
        Some("admin")
    );
    assert_eq!(
        requested_role(
            Some("member"),
            Some(&[annotator.clone(), annotator.clone()])
        )?,
        Some("member")
    );
    assert!(requested_role(Some("admin"), Some(std::slice::from_ref(&annotator))).is_err());
    assert!(requested_role(None, Some(&[admin, annotator])).is_err());
    assert!(requested_role(None, Some(&[json!(7)])).is_err());
    assert!(requested_role(Some("owner"), None).is_err());
    Ok(())
}

#[test]
fn admins_change_and_delete_users_and_members_only_rename_themselves() {
    let ann = User {
        id: 2,
        organization_id: 1,
        username: "ann".into(),
        password_hash: String::new(),
        role: "member".into(),
        first_name: String::new(),
        last_name: String::new(),
        email: String::new(),
        is_active: true,
        date_joined: String::new(),
        last_login: None,
    };
    let rename = UserChange {
        first_name: Some("Anna".into()),
        ..UserChange::default()
    };
    let raise = UserChange {
        role: Some("admin".into()),
        ..UserChange::default()
    };
    let deactivate = UserChange {
        is_active: Some(false),
        ..UserChange::default()
    };
    let admin = Caller::User {
        id: 1,
        organization_id: 1,
        role: Role::Admin,
    };
    let herself = Caller::User {
        id: 2,
        organization_id: 1,
        role: Role::Member,
    };
    let colleague = Caller::User {
        id: 3,
        organization_id: 1,
        role: Role::Member,
    };
    let extension = Caller::Extension {
        user: 1,
        organization_id: 1,
        role: Role::Admin,
        hook_id: 4,
    };
    assert!(may_change(&Caller::Operator, &ann, &raise, true).is_ok());
    assert!(may_change(&admin, &ann, &raise, true).is_ok());
    assert!(may_change(&admin, &ann, &deactivate, false).is_ok());
    assert!(may_change(&herself, &ann, &rename, false).is_ok());
    assert!(may_change(&herself, &ann, &raise, false).is_err());
    assert!(may_change(&herself, &ann, &deactivate, false).is_err());
    assert!(may_change(&herself, &ann, &rename, true).is_err());
    assert!(may_change(&colleague, &ann, &rename, false).is_err());
    assert!(may_change(&extension, &ann, &rename, false).is_err());
    // Deletion: the operator and admins; a member not even themself.
    assert!(may_delete(&Caller::Operator, &ann).is_ok());
    assert!(may_delete(&admin, &ann).is_ok());
    assert!(may_delete(&herself, &ann).is_err());
    assert!(may_delete(&colleague, &ann).is_err());
    assert!(may_delete(&extension, &ann).is_err());

    let boss = User {
        id: 1,
        role: "admin".into(),
        ..ann
    };
    let lower = UserChange {
        role: Some("member".into()),
        ..UserChange::default()
    };
    assert!(may_change(&admin, &boss, &rename, true).is_ok());
    assert!(may_change(&admin, &boss, &lower, false).is_err());
    assert!(may_change(&admin, &boss, &deactivate, false).is_err());

    // An admin does not delete themself; the operator may.
    assert!(may_delete(&admin, &boss).is_err());
    assert!(may_delete(&Caller::Operator, &boss).is_ok());
}
