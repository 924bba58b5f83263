//! API tokens, stored as their sha256 only: a stolen database holds no usable token.

use sha2::{Digest, Sha256};

use super::db::{params, Db};
use super::users::{self, User};
use super::{Store, StoreError};

impl Store {
    /// The API tokens, reached by name: what `crate::tokens::mint` (logins, the demo,
    /// hooks' runs) and the operator's token write. (A token's session is read through
    /// [`Store::session`]'s cache.)
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { store: self }
    }
}

/// The token operations callers may ask for; a token goes in as the caller holds it and
/// only its sha256 is stored.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    store: &'a Store,
}

impl Tokens<'_> {
    /// Stores a token (a login's, the demo's); `expires_at` in Unix seconds, none for no
    /// expiry.
    pub async fn insert(
        &self,
        token: &str,
        owner: Owner,
        expires_at: Option<i64>,
        created_at: &str,
    ) -> Result<(), StoreError> {
        let (token, created_at) = (token.to_owned(), created_at.to_owned());
        self.store
            .run(move |db| insert(db, &token, owner, expires_at, &created_at))
            .await
    }

    /// Stores a token minted for a run of hook `hook_id` on behalf of user `owner`: the API
    /// gives it only what an extension needs.
    pub async fn insert_for_hook(
        &self,
        token: &str,
        owner: u64,
        hook_id: u64,
        expires_at: i64,
        created_at: &str,
    ) -> Result<(), StoreError> {
        let (token, created_at) = (token.to_owned(), created_at.to_owned());
        self.store
            .run(move |db| insert_for_hook(db, &token, owner, hook_id, expires_at, &created_at))
            .await
    }

    /// Sets when a token stops working (Unix seconds): a minted token is cut to its
    /// hook's lifetime once its run ends.
    pub async fn set_expiry(&self, token: &str, expires_at: i64) -> Result<(), StoreError> {
        let token = token.to_owned();
        self.store
            .run(move |db| set_expiry(db, &token, expires_at))
            .await
    }

    /// Deletes a token (logout).
    pub async fn delete(&self, token: &str) -> Result<(), StoreError> {
        let token = token.to_owned();
        self.store.run(move |db| delete(db, &token)).await
    }

    /// Gives the operator a token at start: `configured` becomes its only token when
    /// given; else an existing one is kept, or a new one is generated, stored and
    /// returned (the only time it is seen: only its hash is stored).
    pub async fn ensure_operator(
        &self,
        configured: Option<String>,
        created_at: &str,
    ) -> Result<Option<String>, StoreError> {
        let created_at = created_at.to_owned();
        self.store
            .run(move |db| {
                // Replicas starting together each ensure the operator: one at a time, so
                // that they neither insert the same token twice nor each generate one.
                let transaction = db.transaction()?;
                transaction.serialize("wasmhook operator token")?;
                let generated = match configured {
                    Some(token) => {
                        if operator_hash(&transaction)?.as_deref() != Some(hash(&token).as_str()) {
                            replace_operator(&transaction, &token, &created_at)?;
                        }
                        None
                    }
                    None if operator_hash(&transaction)?.is_some() => None,
                    None => {
                        let token = generate()?;
                        replace_operator(&transaction, &token, &created_at)?;
                        Some(token)
                    }
                };
                transaction.commit()?;
                Ok(generated)
            })
            .await
    }

    /// Replaces the operator's token with a new one and returns it, on the calling thread:
    /// for `wasmhook operator rotate-token`, which runs without an async runtime.
    pub fn rotate_operator_blocking(&self, created_at: &str) -> Result<String, StoreError> {
        self.store.run_here(|db| {
            let transaction = db.transaction()?;
            transaction.serialize("wasmhook operator token")?;
            let token = generate()?;
            replace_operator(&transaction, &token, created_at)?;
            transaction.commit()?;
            Ok(token)
        })
    }
}

/// Whose a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The installation's operator.
    Operator,
    /// A user, by id: the token acts with that user's role and organization (within what
    /// an extension may do, when it was minted for a hook).
    User(u64),
}

/// The stored form of a token.
pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits, hex).
pub fn generate() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| StoreError::Task(format!("no randomness: {error}")))?;
    Ok(hex::encode(bytes))
}

/// Stores a token; `expires_at` in Unix seconds, none for no expiry.
fn insert(
    db: &Db<'_>,
    token: &str,
    owner: Owner,
    expires_at: Option<i64>,
    created_at: &str,
) -> Result<(), StoreError> {
    let (user_id, operator) = match owner {
        Owner::Operator => (None, 1),
        Owner::User(id) => (Some(id), 0),
    };
    db.execute(
        "INSERT INTO tokens (hash, user_id, operator, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash(token), user_id, operator, expires_at, created_at],
    )?;
    Ok(())
}

/// Stores a token minted for a run of hook `hook_id` on behalf of `owner`: the API gives
/// it only what an extension needs.
fn insert_for_hook(
    db: &Db<'_>,
    token: &str,
    owner: u64,
    hook_id: u64,
    expires_at: i64,
    created_at: &str,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO tokens (hash, user_id, operator, expires_at, created_at, hook_id)
         VALUES (?1, ?2, 0, ?3, ?4, ?5)",
        params![hash(token), owner, expires_at, created_at, hook_id],
    )?;
    Ok(())
}

/// A token as the API resolves it: whose it is, until when, and the user behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose it is: whose rights a request made with it has.
    pub owner: Owner,
    /// The hook it was minted for, when it is an extension's token rather than a person's.
    pub hook_id: Option<u64>,
    /// When it stops working (Unix seconds); none for never.
    pub expires_at: Option<i64>,
    /// The owner, when it is a user.
    pub user: Option<User>,
}

impl Session {
    /// Whether the token still works at `now` (Unix seconds).
    pub fn valid_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

/// The session of a token, by the token's [`hash`], whatever its expiry: the cache keeps
/// it, and the caller checks it against its clock on every use.
pub(super) fn session(db: &Db<'_>, hash: &str) -> Result<Option<Session>, StoreError> {
    // user_id, operator, expires_at, hook_id.
    type Columns = (Option<u64>, bool, Option<i64>, Option<u64>);
    let row: Option<Columns> = db.query_opt(
        "SELECT user_id, operator, expires_at, hook_id FROM tokens WHERE hash = ?1",
        params![hash],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    let Some((user_id, operator, expires_at, hook_id)) = row else {
        return Ok(None);
    };
    let (owner, user) = match (operator, user_id) {
        (true, _) => (Owner::Operator, None),
        (false, Some(id)) => match users::get(db, id)? {
            Some(user) => (Owner::User(id), Some(user)),
            None => return Ok(None),
        },
        (false, None) => return Ok(None),
    };
    Ok(Some(Session {
        owner,
        hook_id,
        expires_at,
        user,
    }))
}

/// Deletes a token (logout).
fn delete(db: &Db<'_>, token: &str) -> Result<(), StoreError> {
    db.execute("DELETE FROM tokens WHERE hash = ?1", params![hash(token)])?;
    Ok(())
}

/// The stored hash of the operator's token, if it has one.
fn operator_hash(db: &Db<'_>) -> Result<Option<String>, StoreError> {
    Ok(db.query_opt(
        "SELECT hash FROM tokens WHERE operator = 1 ORDER BY created_at DESC LIMIT 1",
        params![],
        |row| row.get::<String>(0),
    )?)
}

/// Makes `token` the operator's only token, inside the caller's transaction.
fn replace_operator(db: &Db<'_>, token: &str, created_at: &str) -> Result<(), StoreError> {
    db.execute("DELETE FROM tokens WHERE operator = 1", params![])?;
    insert(db, token, Owner::Operator, None, created_at)?;
    Ok(())
}

/// Sets when a token stops working (Unix seconds).
fn set_expiry(db: &Db<'_>, token: &str, expires_at: i64) -> Result<(), StoreError> {
    db.execute(
        "UPDATE tokens SET expires_at = ?2 WHERE hash = ?1",
        params![hash(token), expires_at],
    )?;
    Ok(())
}

/// Deletes tokens that expired before `now`; returns how many.
pub(super) fn delete_expired(db: &Db<'_>, now: i64) -> Result<usize, StoreError> {
    Ok(db.execute(
        "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        params![now],
    )?)
}
