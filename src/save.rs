//! Save and load with serde (the `serde` feature): a store's slots as they
//! are, and the handles inside values, round-trip into another manager.
//!
//! [`MemoryManager::save_store`] writes `(id, floor, slots)`: the saving
//! manager's id, the generation the store's new slots start at, and every
//! slot in index order — its generation, and its value if live. A
//! `Handle<T>` is written as `(id, index, generation)`.
//! [`MemoryManager::load_store`] rebuilds the store slot by slot, with the
//! same generations and floor, in a manager whose store of `T` was not used
//! since its last reset, so that every saved handle — live or stale — means
//! in the new manager what it meant in the old one. A handle deserialized
//! during a load (inside the values, or through
//! [`load_with`](MemoryManager::load_with)) takes the loading manager's id
//! and its type's store there, if it was saved with the id of the manager
//! the stores came from; any other (a handle from before a reset of the old
//! manager, or of a third one) loads as a handle that names nothing.
//! Stores can be loaded in any order: a handle to a type not loaded yet
//! names the slot its store will have.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};
use serde::Deserialize;

use crate::budget::Budget;
use crate::store::{RawStore, SlotOf, Stores, GENERATION, STORE_SHIFT};
use crate::{Handle, MemoryManager, SizeClasses};

/// The manager a load is filling, for the handles deserialized meanwhile.
#[derive(Clone, Copy)]
struct Loading {
    id: u64,
    stores: *const Stores,
    budget: *const Budget,
    /// The manager's `loaded_from`: the id the loaded stores were saved
    /// with, 0 until known.
    loaded_from: *const Cell<u64>,
}

std::thread_local! {
    /// Set by `load_store` and `load_with` for their duration (restored
    /// after, so loads may nest).
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

/// Takes `id`, the id a loaded thing was saved with, as the source of this
/// manager's loads if none is known yet; whether it is that source.
fn from_source(loaded_from: &Cell<u64>, id: u64) -> bool {
    if loaded_from.get() == 0 {
        loaded_from.set(id);
    }
    loaded_from.get() == id
}

/// A handle is written as `(id, index, generation)`.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<T> Serialize for Handle<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bits = self.to_bits();
        let mut t = serializer.serialize_tuple(3)?;
        t.serialize_element(&((bits >> 64) as u64))?;
        t.serialize_element(&(bits as u32))?;
        t.serialize_element(&((bits >> 32) as u32 & GENERATION))?;
        t.end()
    }
}

/// Only inside [`MemoryManager::load_store`] or
/// [`MemoryManager::load_with`] (anywhere else it is an error): the handle
/// takes the loading manager's id and its type's store, or names nothing if
/// it was not saved with the id of the manager the stores came from.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de, T: 'static> Deserialize<'de> for Handle<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (id, index, generation) = <(u64, u32, u32)>::deserialize(deserializer)?;
        let Some(loading) = LOADING.with(Cell::get) else {
            return Err(de::Error::custom(
                "a Handle deserializes only inside MemoryManager::load_store or load_with",
            ));
        };
        // SAFETY: set by `load_store`/`load_with` from their `&self` for the
        // duration of the deserialization this runs in (restored when it
        // ends): the manager's stores, budget and `loaded_from` are alive
        // and not borrowed mutably.
        let (stores, budget, loaded_from) =
            unsafe { (&*loading.stores, &*loading.budget, &*loading.loaded_from) };
        let store = stores.of::<T>(budget).map_err(de::Error::custom)?;
        let number = store.number() << STORE_SHIFT;
        if generation & 1 == 0 || generation >= GENERATION - 1 || !from_source(loaded_from, id) {
            // Stale when saved, or another manager's: a handle of `T`'s store
            // that names nothing here: no slot has the last index (`add_page`
            // stops below it), which is what keeps it naming nothing, as
            // `find_in` compares tags only; its tag is even besides. Every
            // other handle made here is live (odd), checked above.
            return Ok(Handle::from_parts(loading.id, u32::MAX, number));
        }
        Ok(Handle::from_parts(loading.id, index, number | generation))
    }
}

/// One saved slot: its index, generation, and value if live.
type Saved<'a, T> = (u32, u32, Option<&'a T>);

/// The slots of a store, for `save_store`.
struct Slots<'a, T>(&'a RawStore, PhantomData<T>);

impl<T: Serialize + 'static> Serialize for Slots<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.slots().map(|(index, slot)| -> Saved<'_, T> {
            // SAFETY: a slot below `len`.
            let tag = unsafe { RawStore::tag(slot) };
            let value = (tag & 1 == 1).then(|| {
                // SAFETY: a live slot of `T`'s store holds a `T`, which
                // stays while the manager is borrowed (as in `get`).
                unsafe {
                    RawStore::value_of(slot, SlotOf::<T>::VALUE)
                        .cast::<T>()
                        .as_ref()
                }
            });
            (index, tag & GENERATION, value)
        }))
    }
}

/// # Save and load (the `serde` feature)
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<C: SizeClasses> MemoryManager<C> {
    /// Writes `T`'s store: `(id, floor, slots)` — this manager's id, the
    /// generation new slots start at, and every slot in index order with
    /// its generation and, if live, its value (`(index, generation,
    /// Option<T>)`). Handles inside the values are written with their ids,
    /// to be read back by [`load_store`](Self::load_store).
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
    /// assert_eq!(json[2].to_string(), r#"[[0,1,"saved"]]"#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn save_store<T: Serialize + 'static, S: Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut t = serializer.serialize_tuple(3)?;
        t.serialize_element(&self.blocks().id())?;
        match self.stores().find::<T>() {
            Some(store) => {
                t.serialize_element(&store.floor())?;
                t.serialize_element(&Slots::<T>(store, PhantomData))?;
            }
            None => {
                t.serialize_element(&0u32)?;
                t.serialize_element(&[(); 0])?;
            }
        }
        t.end()
    }

    /// Rebuilds `T`'s store from what [`save_store`](Self::save_store)
    /// wrote, slot by slot with the same generations, in a manager whose
    /// store of `T` was not used since its last reset (nor created with a
    /// trim since), so that every saved handle means here what it meant
    /// there — the handles inside the values (of any type) included.
    ///
    /// # Errors
    ///
    /// The deserializer's, and a custom one if `T`'s store was used since
    /// the last reset, if the stores loaded into this manager since then
    /// were saved by different managers, if the slots are not in index
    /// order from 0 or a generation does not fit its slot, or if the budget
    /// refuses the store's pages. Values loaded before an error stay (with
    /// their handles valid).
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
        let _restore = self.enter_loading();
        deserializer.deserialize_tuple(
            3,
            LoadVisitor::<T> {
                store,
                budget,
                loaded_from: &self.loaded_from,
                _values: PhantomData,
            },
        )
    }

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
        let _restore = self.enter_loading();
        f()
    }

    /// Makes this manager the one handles deserialize into, until the value
    /// returned is dropped.
    fn enter_loading(&self) -> Restore {
        Restore(LOADING.with(|l| {
            l.replace(Some(Loading {
                id: self.blocks().id(),
                stores: self.stores(),
                budget: self.heap().budget(),
                loaded_from: &self.loaded_from,
            }))
        }))
    }
}

/// Reads `(id, floor, slots)` straight into the store.
struct LoadVisitor<'a, T> {
    store: &'a RawStore,
    budget: &'a Budget,
    loaded_from: &'a Cell<u64>,
    _values: PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de> + Send + 'static> Visitor<'de> for LoadVisitor<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a saved store: (id, floor, slots)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let missing = || de::Error::custom("load_store: a saved store is (id, floor, slots)");
        let id: u64 = seq.next_element()?.ok_or_else(missing)?;
        let floor: u32 = seq.next_element()?.ok_or_else(missing)?;
        if !from_source(self.loaded_from, id) {
            return Err(de::Error::custom(
                "load_store: stores saved by another manager were loaded here since its last reset",
            ));
        }
        self.store.start_loading(floor).map_err(de::Error::custom)?;
        seq.next_element_seed(SlotsSeed::<T> {
            store: self.store,
            budget: self.budget,
            _values: PhantomData,
        })?
        .ok_or_else(missing)
    }
}

/// Reads the saved slots into the store.
struct SlotsSeed<'a, T> {
    store: &'a RawStore,
    budget: &'a Budget,
    _values: PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de> + Send + 'static> DeserializeSeed<'de> for SlotsSeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de> + Send + 'static> Visitor<'de> for SlotsSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of (index, generation, value or null)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((index, generation, value)) = seq.next_element::<(u32, u32, Option<T>)>()? {
            let (slot, tag) = self
                .store
                .push_loaded(index, generation, value.is_some(), self.budget)
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
