//! Minting API tokens: the one place a token is made for someone, so that what a token is
//! (256 random bits, stored only as their hash with its owner, its expiry and, for an
//! extension's, its hook) and how long it lives are decided once, whoever asks: a login
//! (`api/login.rs`), the demo (`server/demo.rs`) or a hook's run (`dispatch`).
//!
//! It sits on the store and the model, below `dispatch`, `api` and `server`, which all
//! import it. The operator's token is not minted here: the store makes it at start, in the
//! transaction that replaces the old one (`Tokens::ensure_operator`).

use std::time::Duration;

use crate::model::{now_rfc3339, unix_now};
use crate::store::tokens::{generate, Owner};
use crate::store::{Store, StoreError};

/// What a token is minted for, which decides its owner, what it may do and when it stops
/// working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// A person's session (a login, the demo): the user's own rights, for `lifetime_s`
    /// seconds.
    User {
        /// The user the session is for: the token carries that user's role and organization.
        user_id: u64,
        /// Seconds it works from now.
        lifetime_s: i64,
    },
    /// A hook's run on behalf of its token owner: only what an extension may do (the
    /// API reads the hook from the token's session), valid while the run may last and
    /// `lifetime_s` after, then cut to `lifetime_s` from its end ([`expire_after_run`]).
    Run {
        /// The user the hook runs as (its `token_owner`).
        owner: u64,
        /// The hook being run, stored with the token: it makes the token an extension's
        /// (`Caller::Extension`), which may write this hook's settings and no other hook.
        hook_id: u64,
        /// The longest the run can take, every attempt and wait included.
        run_time: Duration,
        /// Seconds the token outlives the run (the hook's `token_lifetime_s`).
        lifetime_s: u64,
    },
}

impl Grant {
    /// When a token of this grant minted at `now` (Unix seconds) stops working: `now` plus
    /// a user's lifetime; for a run, `now` plus its run time, its lifetime and one second
    /// (the run time is counted in whole seconds).
    pub fn expires_at(&self, now: i64) -> i64 {
        match *self {
            Grant::User { lifetime_s, .. } => now.saturating_add(lifetime_s),
            Grant::Run {
                run_time,
                lifetime_s,
                ..
            } => {
                let valid_s = run_time
                    .as_secs()
                    .saturating_add(lifetime_s)
                    .saturating_add(1);
                now.saturating_add(i64::try_from(valid_s).unwrap_or(i64::MAX))
            }
        }
    }
}

/// Mints a token for `grant`: a fresh random one, stored as its hash with the grant's
/// owner, expiry (and hook, for a run), created now. The token itself is returned: this is
/// the only time it is seen.
pub async fn mint(store: &Store, grant: Grant) -> Result<String, StoreError> {
    let token = generate()?;
    let expires_at = grant.expires_at(unix_now());
    let created_at = now_rfc3339();
    let tokens = store.tokens();
    match grant {
        Grant::User { user_id, .. } => {
            tokens
                .insert(&token, Owner::User(user_id), Some(expires_at), &created_at)
                .await?;
        }
        Grant::Run { owner, hook_id, .. } => {
            tokens
                .insert_for_hook(&token, owner, hook_id, expires_at, &created_at)
                .await?;
        }
    }
    Ok(token)
}

/// Cuts (or extends) a run's token to `lifetime_s` seconds from now, once its run has
/// ended: it was minted for the worst case, and an extension's follow-up calls get the
/// hook's lifetime from the actual end.
pub async fn expire_after_run(
    store: &Store,
    token: &str,
    lifetime_s: u64,
) -> Result<(), StoreError> {
    let expires_at = unix_now().saturating_add(i64::try_from(lifetime_s).unwrap_or(i64::MAX));
    store.tokens().set_expiry(token, expires_at).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_token_lives_its_lifetime() {
        let grant = Grant::User {
            user_id: 1,
            lifetime_s: 162 * 3600,
        };
        assert_eq!(grant.expires_at(1_000), 1_000 + 162 * 3600);
    }

    #[test]
    fn a_runs_token_lives_through_the_run_and_its_lifetime() {
        let grant = Grant::Run {
            owner: 1,
            hook_id: 2,
            run_time: Duration::from_millis(30_900),
            lifetime_s: 600,
        };
        assert_eq!(grant.expires_at(1_000), 1_000 + 30 + 600 + 1);
    }

    #[test]
    fn no_lifetime_overflows() {
        let grant = Grant::Run {
            owner: 1,
            hook_id: 2,
            run_time: Duration::MAX,
            lifetime_s: u64::MAX,
        };
        assert_eq!(grant.expires_at(1_000), i64::MAX);
        let grant = Grant::User {
            user_id: 1,
            lifetime_s: i64::MAX,
        };
        assert_eq!(grant.expires_at(1_000), i64::MAX);
    }
}
