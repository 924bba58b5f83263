//! Users: people and service accounts of one organization.
//!
//! Usernames are global (a login names no organization, as Rossum's does) and compared
//! without regard to ASCII case: `AADMIN` is `aadmin` (the unique index of migration 5).
//! Other letters compare exactly; look-alike characters are a problem no case folding
//! solves. A refused username gets one answer, [`USERNAME_UNAVAILABLE`], whoever holds it.

use super::db::{params, Db, DbError, Row};

use super::{
    next_id, organizations, retire_ids, unique_violation, Page, SortColumn, Store, StoreError,
    Window,
};

impl Store {
    /// The users, reached by name: what `/users`, the login, the demo and the check of a
    /// hook's token owner read and write.
    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }
}

/// The user operations callers may ask for; each runs on the store's blocking pool.
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    store: &'a Store,
}

/// What the users list may be ordered by (then by id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    /// By id, the default.
    #[default]
    Id,
    /// `ordering=username` (or `-username`, descending).
    Username,
}

impl SortColumn for UserOrder {
    fn column(&self) -> &'static str {
        match self {
            UserOrder::Id => "id",
            UserOrder::Username => "username",
        }
    }
}

/// The stored name of the admin role (see `api::auth::Role`).
const ADMIN: &str = "admin";

impl Users<'_> {
    /// One user; none when there is no such user.
    pub async fn get(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.store.run(move |db| get(db, id)).await
    }

    /// The user a login names, without regard to ASCII case: the user of exactly that
    /// name if there is one (a case variant from before migration 5 keeps its own login),
    /// else the one whose name equals it but for case.
    pub async fn by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_owned();
        self.store.run(move |db| by_username(db, &username)).await
    }

    /// A page of the users of one organization (or of all).
    pub async fn list(
        &self,
        organization: Option<u64>,
        window: Window<UserOrder>,
    ) -> Result<Page<User>, StoreError> {
        self.store
            .run(move |db| list(db, organization, window))
            .await
    }

    /// Creates a user of an existing organization; none when `user.organization_id` names
    /// no organization. A username already used (in any case) is a conflict answering
    /// [`USERNAME_UNAVAILABLE`].
    pub async fn create(
        &self,
        user: &NewUser<'_>,
        created_at: &str,
    ) -> Result<Option<User>, StoreError> {
        let (user, created_at) = (OwnedNewUser::of(user), created_at.to_owned());
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                if organizations::get(&transaction, user.organization_id)?.is_none() {
                    return Ok(None);
                }
                let created = create(&transaction, &user.borrowed(), &created_at)?;
                transaction.commit()?;
                Ok(Some(created))
            })
            .await
    }

    /// Creates an organization named `organization_name` and `user` as its first user (the
    /// demo's): `user.organization_id` is not read, the new organization's id is used.
    /// One transaction: a refused user leaves no organization behind.
    pub async fn create_with_organization(
        &self,
        organization_name: &str,
        user: &NewUser<'_>,
        created_at: &str,
    ) -> Result<User, StoreError> {
        let organization_name = organization_name.to_owned();
        let (mut user, created_at) = (OwnedNewUser::of(user), created_at.to_owned());
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                let organization =
                    organizations::create(&transaction, &organization_name, &created_at)?;
                user.organization_id = organization.id;
                let created = create(&transaction, &user.borrowed(), &created_at)?;
                transaction.commit()?;
                Ok(created)
            })
            .await
    }

    /// Changes user `id` by the fields `change` gives (the others stay), in one
    /// transaction; a user deactivated by it loses every token it has (its logins and the
    /// tokens minted for its hooks' runs), so that reactivating it later revives none of
    /// them. Returns the user as stored; none when there is no such user. Who may change
    /// what is the caller's rule (`api::users`), not the store's.
    pub async fn update(&self, id: u64, change: UserChange) -> Result<Option<User>, StoreError> {
        self.store.run(move |db| update(db, id, &change)).await
    }

    /// Deletes user `id` with its tokens and its last login, in one transaction, unless a
    /// hook runs with its tokens (names it `token_owner`): then nothing is deleted and the
    /// hooks are named, so that no hook silently loses the API access its extension uses,
    /// as a module a hook uses is not deleted either. None when there is no such user. Who
    /// may delete whom (an admin not themself) is the caller's rule (`api::users`).
    pub async fn delete(&self, id: u64) -> Result<Option<UserDeletion>, StoreError> {
        self.store.run(move |db| delete(db, id)).await
    }

    /// Records that user `id` logged in at `at` (RFC 3339): Rossum's `last_login`.
    pub async fn record_login(&self, id: u64, at: &str) -> Result<(), StoreError> {
        let at = at.to_owned();
        self.store.run(move |db| record_login(db, id, &at)).await
    }

    /// The admins among `ids` (users that do not exist are left out), in the order asked:
    /// a member may not run a hook whose token owner is one of them.
    pub async fn admins_among(&self, ids: &[u64]) -> Result<Vec<u64>, StoreError> {
        let ids = ids.to_vec();
        self.store
            .run(move |db| {
                let mut admins = Vec::new();
                for id in ids {
                    if let Some(user) = get(db, id)? {
                        if user.role == ADMIN {
                            admins.push(user.id);
                        }
                    }
                }
                Ok(admins)
            })
            .await
    }
}

/// A user as stored (the password only as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id: what its sessions and hooks' `token_owner` name.
    pub id: u64,
    /// The one organization it belongs to and acts in.
    pub organization_id: u64,
    /// Unique across the installation, without regard to ASCII case.
    pub username: String,
    /// argon2 hash of the password.
    pub password_hash: String,
    /// `admin` or `member`.
    pub role: String,
    /// Presentation fields, as Rossum's user has them.
    pub first_name: String,
    /// See `first_name`.
    pub last_name: String,
    /// See `first_name`.
    pub email: String,
    /// Whether the user may log in (and its tokens work).
    pub is_active: bool,
    /// When it was created (RFC 3339): Rossum's `date_joined`.
    pub date_joined: String,
    /// When it last logged in (RFC 3339); none if it never has since migration 7.
    pub last_login: Option<String>,
}

/// The fields of a user an update writes; a field left `None` keeps its stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    /// See [`User`].
    pub first_name: Option<String>,
    /// See [`User`].
    pub last_name: Option<String>,
    /// See [`User`].
    pub email: Option<String>,
    /// `admin` or `member`.
    pub role: Option<String>,
    /// `Some(false)` deactivates the user and deletes its tokens.
    pub is_active: Option<bool>,
    /// A new password, as its argon2 hash.
    pub password_hash: Option<String>,
}

/// What [`Users::delete`] did with a user that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDeletion {
    /// Deleted, with every token it had (its sessions and its hooks' runs' tokens).
    Deleted,
    /// Not deleted, nothing written: these hooks (their ids) name it their `token_owner`.
    TokenOwner(Vec<u64>),
}

/// A user to create, its username already checked against the rules and its password
/// already hashed; the store checks that the name is free and the organization exists.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// See [`User`].
    pub organization_id: u64,
    /// See [`User`].
    pub username: &'a str,
    /// See [`User`].
    pub password_hash: &'a str,
    /// See [`User`].
    pub role: &'a str,
    /// See [`User`].
    pub first_name: &'a str,
    /// See [`User`].
    pub last_name: &'a str,
    /// See [`User`].
    pub email: &'a str,
}

/// A [`NewUser`] the blocking pool can own.
#[derive(Debug)]
struct OwnedNewUser {
    organization_id: u64,
    username: String,
    password_hash: String,
    role: String,
    first_name: String,
    last_name: String,
    email: String,
}

impl OwnedNewUser {
    fn of(user: &NewUser<'_>) -> Self {
        OwnedNewUser {
            organization_id: user.organization_id,
            username: user.username.to_owned(),
            password_hash: user.password_hash.to_owned(),
            role: user.role.to_owned(),
            first_name: user.first_name.to_owned(),
            last_name: user.last_name.to_owned(),
            email: user.email.to_owned(),
        }
    }

    fn borrowed(&self) -> NewUser<'_> {
        NewUser {
            organization_id: self.organization_id,
            username: &self.username,
            password_hash: &self.password_hash,
            role: &self.role,
            first_name: &self.first_name,
            last_name: &self.last_name,
            email: &self.email,
        }
    }
}

/// The columns of a [`User`], read `FROM users`. `last_login` comes from `user_logins`
/// (migration 7), which no cache watches: a session cached before a login holds the older
/// value, which nothing that authenticates reads.
const COLUMNS: &str = "id, organization_id, username, password_hash, role, first_name, \
     last_name, email, is_active, created_at, \
     (SELECT last_login FROM user_logins WHERE user_logins.user_id = users.id)";

fn from_row(row: &Row) -> Result<User, DbError> {
    Ok(User {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        username: row.get(2)?,
        password_hash: row.get(3)?,
        role: row.get(4)?,
        first_name: row.get(5)?,
        last_name: row.get(6)?,
        email: row.get(7)?,
        is_active: row.get(8)?,
        date_joined: row.get(9)?,
        last_login: row.get(10)?,
    })
}

/// The answer when a username is already used, by this organization or another, in any
/// case. The same words whoever holds it, so that it does not tell an admin that another
/// organization has a user of that name. (That the name is in use somewhere cannot be
/// hidden while usernames are global; scoping them per organization would change Rossum's
/// login, which names no organization.)
pub const USERNAME_UNAVAILABLE: &str = "this username cannot be used; choose another";

/// Creates a user, numbered past every id given before (a deleted user's too: see
/// `retire_ids`); a username already used (in any case) is a conflict answering
/// [`USERNAME_UNAVAILABLE`]. Run it in the caller's transaction (see `next_id`).
pub(super) fn create(
    db: &Db<'_>,
    user: &NewUser<'_>,
    created_at: &str,
) -> Result<User, StoreError> {
    let id = next_id(db, "users", "users")?;
    db.execute(
        "INSERT INTO users (id, organization_id, username, password_hash, role,
                            first_name, last_name, email, created_at)
         VALUES (?9, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user.organization_id,
            user.username,
            user.password_hash,
            user.role,
            user.first_name,
            user.last_name,
            user.email,
            created_at,
            id
        ],
    )
    .map_err(|error| unique_violation(error, "username", USERNAME_UNAVAILABLE))?;
    get(db, id)?.ok_or(StoreError::Database(DbError::NoRow))
}

pub(super) fn get(db: &Db<'_>, id: u64) -> Result<Option<User>, StoreError> {
    Ok(db.query_opt(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        params![id],
        from_row,
    )?)
}

/// One user by username, without regard to ASCII case: the user of exactly that name if
/// there is one (a case variant from before migration 5 keeps its own login), else the one
/// whose name equals it but for case.
pub(super) fn by_username(db: &Db<'_>, username: &str) -> Result<Option<User>, StoreError> {
    let exact = db.query_opt(
        &format!("SELECT {COLUMNS} FROM users WHERE username = ?1"),
        params![username],
        from_row,
    )?;
    if exact.is_some() {
        return Ok(exact);
    }
    Ok(db.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM users
             WHERE {} AND case_duplicate = 0",
            db.dialect().nocase_eq("username", "?1")
        ),
        params![username],
        from_row,
    )?)
}

/// Users in the window's order, of one organization or of all.
fn list(
    db: &Db<'_>,
    organization: Option<u64>,
    window: Window<UserOrder>,
) -> Result<Page<User>, StoreError> {
    super::page_where(
        db,
        "users",
        COLUMNS,
        "organization_id",
        organization,
        window,
        from_row,
    )
}

/// Changes a user by the fields `change` gives, deleting its tokens when it is
/// deactivated, in one transaction; none when there is no such user.
fn update(db: &Db<'_>, id: u64, change: &UserChange) -> Result<Option<User>, StoreError> {
    let transaction = db.transaction()?;
    let changed = transaction.execute(
        "UPDATE users SET first_name = COALESCE(?2, first_name),
                          last_name = COALESCE(?3, last_name),
                          email = COALESCE(?4, email),
                          role = COALESCE(?5, role),
                          is_active = COALESCE(?6, is_active),
                          password_hash = COALESCE(?7, password_hash)
         WHERE id = ?1",
        params![
            id,
            change.first_name,
            change.last_name,
            change.email,
            change.role,
            change.is_active,
            change.password_hash
        ],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    if change.is_active == Some(false) {
        transaction.execute("DELETE FROM tokens WHERE user_id = ?1", params![id])?;
    }
    let user = get(&transaction, id)?;
    transaction.commit()?;
    Ok(user)
}

/// Deletes a user with its tokens and last login in one transaction, unless hooks name it
/// their token owner (then nothing is written); none when there is no such user.
fn delete(db: &Db<'_>, id: u64) -> Result<Option<UserDeletion>, StoreError> {
    let transaction = db.transaction()?;
    if get(&transaction, id)?.is_none() {
        return Ok(None);
    }
    let hooks = transaction.query_map(
        "SELECT id FROM hooks WHERE token_owner_id = ?1 ORDER BY id",
        params![id],
        |row| row.get::<u64>(0),
    )?;
    if !hooks.is_empty() {
        return Ok(Some(UserDeletion::TokenOwner(hooks)));
    }
    retire_ids(&transaction, "users", id)?;
    // Each statement has a `WHERE`, so SQLite's update hook sees every deleted row (and on
    // PostgreSQL each statement's table is reported): cached sessions of the user's tokens
    // are stale at once.
    transaction.execute("DELETE FROM tokens WHERE user_id = ?1", params![id])?;
    transaction.execute("DELETE FROM user_logins WHERE user_id = ?1", params![id])?;
    transaction.execute("DELETE FROM users WHERE id = ?1", params![id])?;
    transaction.commit()?;
    Ok(Some(UserDeletion::Deleted))
}

/// Records a login of user `id` at `at`.
pub(super) fn record_login(db: &Db<'_>, id: u64, at: &str) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO user_logins (user_id, last_login) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET last_login = excluded.last_login",
        params![id, at],
    )?;
    Ok(())
}
