//! Cache keys: exactly what cached materials depend on, compared field by
//! field.
//!
//! # Why not a digest
//! A key is the request's own fields (partition, suite, policy, context,
//! EDKs, reproduced pairs), hashed with a fast seeded hasher to find the
//! bucket and compared in full on a hit. Two different requests therefore
//! never share materials, whatever the hash does: correctness rests on
//! equality, not on a digest's collision resistance. The previous design,
//! a SHA-256 over an encoding of those fields, cost about 7 % of a
//! cache-hit decrypt in the encoding and hashing alone.
//!
//! The hit path looks keys up through [`KeyRef`], which borrows from the
//! request, so a hit copies nothing; only a miss builds the owned
//! [`CacheId`] that the cache and the flight map keep.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::format::{EncryptedDataKey, EncryptionContext};
use crate::policy::CommitmentPolicy;
use crate::suite::AlgorithmSuite;

/// The fields cached materials depend on, borrowed from a request.
#[derive(Clone, Copy, Debug)]
pub(super) enum KeyRef<'a> {
    Encrypt {
        partition: &'a [u8],
        suite: Option<AlgorithmSuite>,
        policy: CommitmentPolicy,
        required_keys: &'a [String],
        context: &'a EncryptionContext,
    },
    Decrypt {
        partition: &'a [u8],
        suite: AlgorithmSuite,
        policy: CommitmentPolicy,
        /// In any order: EDK order does not change which data key they wrap.
        edks: &'a [EncryptedDataKey],
        context: &'a EncryptionContext,
        reproduced: Option<&'a EncryptionContext>,
    },
}

/// The owned form of a [`KeyRef`], kept by the cache and the flight map.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct CacheId(Arc<OwnedKey>);

#[derive(Debug)]
enum OwnedKey {
    Encrypt {
        partition: Arc<[u8]>,
        suite: Option<AlgorithmSuite>,
        policy: CommitmentPolicy,
        required_keys: Vec<String>,
        context: EncryptionContext,
    },
    Decrypt {
        partition: Arc<[u8]>,
        suite: AlgorithmSuite,
        policy: CommitmentPolicy,
        /// In the order of the request that missed; compared as a multiset.
        edks: Vec<EncryptedDataKey>,
        context: EncryptionContext,
        reproduced: Option<EncryptionContext>,
    },
}

fn edk_order(a: &EncryptedDataKey, b: &EncryptedDataKey) -> std::cmp::Ordering {
    (a.provider_id.as_bytes(), &a.provider_info, &a.ciphertext).cmp(&(
        b.provider_id.as_bytes(),
        &b.provider_info,
        &b.ciphertext,
    ))
}

/// A hash of a set of EDKs that ignores their order, without sorting (so a
/// hit on a multi-EDK message allocates nothing): the sum of each EDK's
/// own hash, seeded once per process.
fn hash_edk_set(edks: &[EncryptedDataKey]) -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
    let each = foldhash::fast::FixedState::with_seed(seed);
    edks.iter().fold(0u64, |sum, edk| {
        sum.wrapping_add(each.hash_one((&edk.provider_id, &edk.provider_info, &edk.ciphertext)))
    })
}

fn hash_context<H: Hasher>(context: &EncryptionContext, state: &mut H) {
    state.write_usize(context.len());
    for (key, value) in context.iter() {
        key.hash(state);
        value.hash(state);
    }
}

/// Equality of EDK lists as multisets: order does not matter, repeats do.
fn same_edks(a: &[EncryptedDataKey], b: &[EncryptedDataKey]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match a {
        // The usual case: one EDK, nothing to order.
        [only] => only == &b[0],
        // A handful (multi-keyrings): count matches, allocating nothing.
        _ if a.len() <= 8 => a
            .iter()
            .all(|x| a.iter().filter(|y| *y == x).count() == b.iter().filter(|y| *y == x).count()),
        _ => sorted(a) == sorted(b),
    }
}

fn sorted(edks: &[EncryptedDataKey]) -> Vec<&EncryptedDataKey> {
    let mut refs: Vec<&EncryptedDataKey> = edks.iter().collect();
    refs.sort_unstable_by(|x, y| edk_order(x, y));
    refs
}

impl KeyRef<'_> {
    /// The owned key: a copy of every field, made once per miss.
    pub(super) fn to_owned_id(self, partition: &Arc<[u8]>) -> CacheId {
        CacheId(Arc::new(match self {
            KeyRef::Encrypt {
                suite,
                policy,
                required_keys,
                context,
                ..
            } => OwnedKey::Encrypt {
                partition: partition.clone(),
                suite,
                policy,
                required_keys: required_keys.to_vec(),
                context: context.clone(),
            },
            KeyRef::Decrypt {
                suite,
                policy,
                edks,
                context,
                reproduced,
                ..
            } => OwnedKey::Decrypt {
                partition: partition.clone(),
                suite,
                policy,
                edks: edks.to_vec(),
                context: context.clone(),
                reproduced: reproduced.cloned(),
            },
        }))
    }

    fn same(&self, other: &KeyRef<'_>) -> bool {
        match (self, other) {
            (
                KeyRef::Encrypt {
                    partition: p1,
                    suite: s1,
                    policy: c1,
                    required_keys: r1,
                    context: x1,
                },
                KeyRef::Encrypt {
                    partition: p2,
                    suite: s2,
                    policy: c2,
                    required_keys: r2,
                    context: x2,
                },
            ) => p1 == p2 && s1 == s2 && c1 == c2 && r1 == r2 && x1 == x2,
            (
                KeyRef::Decrypt {
                    partition: p1,
                    suite: s1,
                    policy: c1,
                    edks: e1,
                    context: x1,
                    reproduced: r1,
                },
                KeyRef::Decrypt {
                    partition: p2,
                    suite: s2,
                    policy: c2,
                    edks: e2,
                    context: x2,
                    reproduced: r2,
                },
            ) => p1 == p2 && s1 == s2 && c1 == c2 && x1 == x2 && r1 == r2 && same_edks(e1, e2),
            _ => false,
        }
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            KeyRef::Encrypt {
                partition,
                suite,
                policy,
                required_keys,
                context,
            } => {
                state.write_u8(0);
                partition.hash(state);
                suite.map(AlgorithmSuite::id).hash(state);
                state.write_u8(policy.id_byte());
                required_keys.hash(state);
                hash_context(context, state);
            }
            KeyRef::Decrypt {
                partition,
                suite,
                policy,
                edks,
                context,
                reproduced,
            } => {
                state.write_u8(1);
                partition.hash(state);
                state.write_u16(suite.id());
                state.write_u8(policy.id_byte());
                state.write_usize(edks.len());
                state.write_u64(hash_edk_set(edks));
                hash_context(context, state);
                match reproduced {
                    Some(reproduced) => {
                        state.write_u8(1);
                        hash_context(reproduced, state);
                    }
                    None => state.write_u8(0),
                }
            }
        }
    }
}

/// Anything that can be viewed as a key: the owned [`CacheId`] and the
/// borrowed [`KeyRef`]. The cache is looked up through `dyn KeyLike`, so
/// both hash and compare the same way.
pub(super) trait KeyLike {
    fn key(&self) -> KeyRef<'_>;
}

impl KeyLike for KeyRef<'_> {
    fn key(&self) -> KeyRef<'_> {
        *self
    }
}

impl KeyLike for CacheId {
    fn key(&self) -> KeyRef<'_> {
        match &*self.0 {
            OwnedKey::Encrypt {
                partition,
                suite,
                policy,
                required_keys,
                context,
            } => KeyRef::Encrypt {
                partition,
                suite: *suite,
                policy: *policy,
                required_keys,
                context,
            },
            OwnedKey::Decrypt {
                partition,
                suite,
                policy,
                edks,
                context,
                reproduced,
            } => KeyRef::Decrypt {
                partition,
                suite: *suite,
                policy: *policy,
                edks,
                context,
                reproduced: reproduced.as_ref(),
            },
        }
    }
}

impl Hash for dyn KeyLike + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for dyn KeyLike + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key().same(&other.key())
    }
}

impl Eq for dyn KeyLike + '_ {}

impl Hash for CacheId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for CacheId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.key().same(&other.key())
    }
}

impl Eq for CacheId {}

impl<'a> Borrow<dyn KeyLike + 'a> for CacheId {
    fn borrow(&self) -> &(dyn KeyLike + 'a) {
        self
    }
}
