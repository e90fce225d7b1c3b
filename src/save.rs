//! Save and load with serde (the `serde` feature): a store's slots as they
//! are, and the handles inside values, round-trip into another manager.
//!
//! [`MemoryManager::save_store`] writes every slot of `T`'s store in index
//! order — its generation, and its value if live — and a `Handle<T>` is
//! written as its slot's index and generation, with no manager id.
//! [`MemoryManager::load_store`] rebuilds the store slot by slot in a
//! manager with no value of `T` yet, with the same generations, so every
//! saved handle — live or stale — means in the new manager what it meant in
//! the old one: a handle deserialized during a load (inside the values, or
//! anywhere in the same deserialization) takes the loading manager's id and
//! its type's store there. Stores can be loaded in any order: a handle to a
//! type not loaded yet names the slot its store will have.

use core::cell::Cell;
use core::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};

use crate::budget::Budget;
use crate::store::{RawStore, SlotOf, Stores, GENERATION, STORE_SHIFT};
use crate::{Handle, MemoryManager, SizeClasses};

/// The manager a load is filling, for the handles deserialized meanwhile.
#[derive(Clone, Copy)]
struct Loading {
    id: u64,
    stores: *const Stores,
    budget: *const Budget,
}

std::thread_local! {
    /// Set by `load_store` for its duration (restored after, so loads may
    /// nest).
    static LOADING: Cell<Option<Loading>> = const { Cell::new(None) };
}

/// Restores the previous loading context when the load ends (also by a
/// panic).
struct Restore(Option<Loading>);

impl Drop for Restore {
    fn drop(&mut self) {
        LOADING.with(|l| l.set(self.0));
    }
}

/// A handle is written as `(index, generation)`: its slot, with no manager
/// id (a loading manager supplies its own).
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<T> Serialize for Handle<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bits = self.to_bits();
        let mut t = serializer.serialize_tuple(2)?;
        t.serialize_element(&(bits as u32))?;
        t.serialize_element(&((bits >> 32) as u32 & GENERATION))?;
        t.end()
    }
}

/// Only inside [`MemoryManager::load_store`] (anywhere else it is an
/// error): the handle takes the loading manager's id and its type's store.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de, T: 'static> Deserialize<'de> for Handle<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (index, generation) = <(u32, u32)>::deserialize(deserializer)?;
        if generation > GENERATION {
            return Err(de::Error::custom("a handle's generation out of range"));
        }
        let Some(loading) = LOADING.with(Cell::get) else {
            return Err(de::Error::custom(
                "a Handle deserializes only inside MemoryManager::load_store",
            ));
        };
        // SAFETY: set by `load_store` from its `&self` for the duration of
        // the deserialization this runs in (restored when it ends): the
        // manager's stores and budget are alive and not borrowed mutably.
        let (stores, budget) = unsafe { (&*loading.stores, &*loading.budget) };
        let store = stores.of::<T>(budget).map_err(de::Error::custom)?;
        let tag = (store.number() << STORE_SHIFT) | generation;
        Ok(Handle::from_parts(loading.id, index, tag))
    }
}

/// One saved slot: its index, generation, and value if live.
type Saved<'a, T> = (u32, u32, Option<&'a T>);

/// # Save and load (the `serde` feature)
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<C: SizeClasses> MemoryManager<C> {
    /// Writes `T`'s store: every slot in index order, with its generation
    /// and, if live, its value (a sequence of `(index, generation,
    /// Option<T>)`). Handles inside the values are written as slots, to be
    /// read back by [`load_store`](Self::load_store).
    ///
    /// # Errors
    ///
    /// The serializer's.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::MemoryManager;
    /// let mm = MemoryManager::new();
    /// mm.insert(String::from("saved"));
    /// let json = mm.save_store::<String, _>(serde_json::value::Serializer)?;
    /// assert_eq!(json.to_string(), r#"[[0,1,"saved"]]"#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn save_store<T: Serialize + 'static, S: Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let Some(store) = self.stores().find::<T>() else {
            return serializer.collect_seq(core::iter::empty::<Saved<'_, T>>());
        };
        let slots = store.slots().map(|(index, slot)| {
            // SAFETY: a slot below `len`.
            let tag = unsafe { RawStore::tag(slot) };
            let value = (tag & 1 == 1).then(|| {
                // SAFETY: a live slot of `T`'s store holds a `T`, which
                // stays while `&self` is borrowed (as in `get`).
                unsafe {
                    RawStore::value_of(slot, SlotOf::<T>::VALUE)
                        .cast::<T>()
                        .as_ref()
                }
            });
            (index, tag & GENERATION, value)
        });
        serializer.collect_seq(slots)
    }

    /// Rebuilds `T`'s store from what [`save_store`](Self::save_store)
    /// wrote, slot by slot with the same generations, in a manager that
    /// has no value of `T` (nor had one since its last reset or trim), so
    /// that every saved handle means here what it meant there — the handles
    /// inside the values (of any type) included.
    ///
    /// # Errors
    ///
    /// The deserializer's, and a custom one if `T`'s store is in use, if
    /// the slots are not in index order from 0 or a generation does not fit
    /// its slot, or if the budget refuses the store's pages. Values loaded
    /// before an error stay (with their handles valid).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Handle, MemoryManager};
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Node { next: Option<Handle<Node>>, v: u32 }
    ///
    /// let old = MemoryManager::new();
    /// let tail = old.insert(Node { next: None, v: 2 });
    /// let head = old.insert(Node { next: Some(tail), v: 1 });
    /// let json = serde_json::to_string(&old.save_store::<Node, _>(serde_json::value::Serializer)?)?;
    ///
    /// let new = MemoryManager::new();
    /// new.load_store::<Node, _>(&mut serde_json::Deserializer::from_str(&json))?;
    /// let (_, first) = new.iter::<Node>().find(|(_, n)| n.v == 1).unwrap();
    /// assert_eq!(new.get(first.next.unwrap())?.v, 2); // the handle inside, still right
    /// // Handles kept outside the stores (a world's roots) load with `load_with`.
    /// let root = serde_json::to_string(&head)?;
    /// let head = new.load_with(|| serde_json::from_str::<Handle<Node>>(&root))?;
    /// assert_eq!(new.get(head)?.v, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_store<'de, T, D>(&self, deserializer: D) -> Result<(), D::Error>
    where
        T: Deserialize<'de> + Send + 'static,
        D: Deserializer<'de>,
    {
        let budget = self.heap().budget();
        let store = self.stores().of::<T>(budget).map_err(de::Error::custom)?;
        if store.len() != 0 {
            return Err(de::Error::custom(
                "load_store: the manager's store of this type is in use",
            ));
        }
        let _restore = Restore(LOADING.with(|l| {
            l.replace(Some(Loading {
                id: self.blocks().id(),
                stores: self.stores(),
                budget,
            }))
        }));
        deserializer.deserialize_seq(LoadVisitor::<T> {
            store,
            budget,
            _values: PhantomData,
        })
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<C: SizeClasses> MemoryManager<C> {
    /// Runs `f` with this manager as the one that every [`Handle`]
    /// deserialized inside it belongs to: for handles kept outside the
    /// stores (a world's player, its lists of entities), read after (or
    /// before) the stores they name were loaded with
    /// [`load_store`](Self::load_store).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Handle, MemoryManager};
    /// let old = MemoryManager::new();
    /// let h = old.insert(5u32);
    /// let saved = (
    ///     serde_json::to_string(&h)?,
    ///     serde_json::to_string(&old.save_store::<u32, _>(serde_json::value::Serializer)?)?,
    /// );
    /// let new = MemoryManager::new();
    /// let h = new.load_with(|| serde_json::from_str::<Handle<u32>>(&saved.0))?;
    /// new.load_store::<u32, _>(&mut serde_json::Deserializer::from_str(&saved.1))?;
    /// assert_eq!(new.get(h), Ok(&5));
    /// // Outside `load_with` and `load_store` a handle does not deserialize.
    /// assert!(serde_json::from_str::<Handle<u32>>(&saved.0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _restore = Restore(LOADING.with(|l| {
            l.replace(Some(Loading {
                id: self.blocks().id(),
                stores: self.stores(),
                budget: self.heap().budget(),
            }))
        }));
        f()
    }
}

/// Reads the saved slots straight into the store.
struct LoadVisitor<'a, T> {
    store: &'a RawStore,
    budget: &'a Budget,
    _values: PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de> + Send + 'static> Visitor<'de> for LoadVisitor<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a sequence of (index, generation, value or null)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((index, generation, value)) = seq.next_element::<(u32, u32, Option<T>)>()? {
            if index as usize != self.store.len() {
                return Err(de::Error::custom("load_store: slots out of order"));
            }
            let (slot, _, tag) = self
                .store
                .push_loaded(generation, value.is_some(), self.budget)
                .map_err(de::Error::custom)?;
            if let Some(v) = value {
                // SAFETY: a slot of `T`'s store just taken for a live
                // value: its value place is ours to write, then it is made
                // live.
                unsafe {
                    RawStore::value_of(slot, SlotOf::<T>::VALUE)
                        .cast::<T>()
                        .write(v)
                };
                self.store.make_live(slot, tag);
            }
        }
        Ok(())
    }
}
