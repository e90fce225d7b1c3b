//! [`Builder`]: a manager's class table, chunk sizes, budget, name and
//! leak hook, checked when built.
#![deny(unsafe_code)]

use core::fmt;
use core::marker::PhantomData;

use super::{Hook, LeakHook, MemoryManager, DEFAULT_INITIAL_CHUNK, MIN_CHUNK};
use crate::chunk::SEGMENT;
use crate::pool::ChunkConfig;
use crate::size_class::SizeClasses;
use crate::stats::Leaks;
#[cfg(doc)] // (for the docs' links)
use crate::Block;
use crate::{DefaultClasses, Error};

/// Configures a [`MemoryManager`]: class table, chunk sizes, byte budget
/// and leak hook.
///
/// # Examples
///
/// ```
/// use memory_mgr::{Error, MemoryManager};
/// let mm = MemoryManager::builder()
///     .initial_chunk_size(4096)
///     .max_chunk_size(256 * 1024)
///     .build()?;
/// # drop(mm);
/// assert!(matches!(
///     MemoryManager::builder().max_chunk_size(1 << 30).build(),
///     Err(Error::InvalidConfig(_))
/// ));
/// # Ok::<(), Error>(())
/// ```
///
/// `H` is the type of the leak hook ([`on_leak`](Builder::on_leak)): a
/// function by default, any closure once set.
#[derive(Clone, Copy)]
pub struct Builder<C: SizeClasses = DefaultClasses, H = fn(&Leaks)> {
    initial: usize,
    max: usize,
    budget: Option<usize>,
    on_leak: Option<H>,
    name: Option<&'static str>,
    _classes: PhantomData<fn(C) -> C>,
}

impl<C: SizeClasses, H> fmt::Debug for Builder<C, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("classes", &C::TABLE.sizes())
            .field("initial_chunk_size", &self.initial)
            .field("max_chunk_size", &self.max)
            .field("budget", &self.budget)
            .field("name", &self.name)
            .field("on_leak", &self.on_leak.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Builder {
    /// The default configuration: [`DefaultClasses`], first chunks of
    /// 16 KiB, doubling up to 1 MiB.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::Builder::new().build()?;
    /// # drop(mm);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Builder {
            initial: DEFAULT_INITIAL_CHUNK,
            max: SEGMENT,
            budget: None,
            on_leak: None,
            name: None,
            _classes: PhantomData,
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl<C: SizeClasses, H: Copy> Builder<C, H> {
    /// Uses the class table `D`. (Before [`on_leak`](Builder::on_leak) is
    /// given a closure that is not `Copy`: these two are `const`, so they
    /// take a builder with nothing to drop.)
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{FineClasses, MemoryManager};
    /// let mm = MemoryManager::builder().classes::<FineClasses>().build()?;
    /// assert_eq!(mm.classes().len(), 32);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn classes<D: SizeClasses>(self) -> Builder<D, H> {
        let Builder {
            initial,
            max,
            budget,
            on_leak,
            name,
            ..
        } = self;
        Builder {
            initial,
            max,
            budget,
            on_leak,
            name,
            _classes: PhantomData,
        }
    }

    /// A hook called when the manager is dropped with allocations still
    /// live (raw [`Block`]s never freed, leaked boxes), with what leaked: a
    /// function, or a closure that captures what it needs (the subsystem's
    /// name, a logger). Without one, debug builds print the report to
    /// stderr; release builds say nothing. Dropping never panics on its own
    /// account. Values behind [`Handle`](crate::Handle)s are the manager's
    /// own, dropped with it, not leaks.
    ///
    /// A [`SharedManager`](crate::SharedManager) is built in a `const`
    /// context (to be a `static`), so its builder,
    /// [`SharedManager::builder`](crate::SharedManager::builder), takes a
    /// function (`fn(&Leaks)`: a function item, or a closure that captures
    /// nothing) — see [`SharedBuilder::on_leak`](crate::SharedBuilder::on_leak).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use memory_mgr::{Leaks, MemoryManager};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let sink = log.clone();
    /// let subsystem = String::from("audio");
    /// let mm = MemoryManager::builder()
    ///     .on_leak(move |leaks: &Leaks| {
    ///         sink.lock().unwrap().push(format!("{subsystem}: {} leaked", leaks.total()));
    ///     })
    ///     .build()?;
    /// let _forgotten = mm.alloc_block(16)?;
    /// drop(mm); // calls the closure
    /// assert_eq!(log.lock().unwrap()[0], "audio: 1 leaked");
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn on_leak<F: FnOnce(&Leaks) + Send + 'static>(self, hook: F) -> Builder<C, F> {
        let Builder {
            initial,
            max,
            budget,
            name,
            ..
        } = self;
        Builder {
            initial,
            max,
            budget,
            on_leak: Some(hook),
            name,
            _classes: PhantomData,
        }
    }
}

impl<C: SizeClasses, H> Builder<C, H> {
    /// A cap on the bytes the manager holds from the system allocator:
    /// every chunk of every pool plus every allocation above the largest
    /// class (headers included). Past it the `try_` calls and
    /// [`alloc_block`](MemoryManager::alloc_block) return
    /// [`Error::BudgetExceeded`] and the infallible calls panic with that
    /// message; nothing is allocated by the refused call. Only growth is
    /// checked, so the fast path pays nothing. Default: no budget.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let mm = MemoryManager::builder().budget(64 * 1024).build()?;
    /// let big = mm.alloc_block(40_000)?;
    /// assert!(matches!(mm.alloc_block(40_000), Err(Error::BudgetExceeded { .. })));
    /// mm.free(big)?;
    /// assert!(mm.alloc_block(40_000).is_ok()); // room again
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub const fn budget(mut self, bytes: usize) -> Self {
        self.budget = Some(bytes);
        self
    }

    /// A name for the manager — the subsystem it serves: it titles the
    /// stats table and the leak report, and every panic message of the
    /// manager says it, so a report from one of several managers says
    /// which.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().name("particles").build()?;
    /// let _p = mm.alloc(1u32);
    /// assert!(mm.stats().to_string().starts_with("particles"));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Size of each pool's first chunk, in bytes (4 KiB to 1 MiB; default
    /// 16 KiB). A class whose block does not fit gets a larger first chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().initial_chunk_size(64 << 10).build()?;
    /// # drop(mm);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn initial_chunk_size(mut self, bytes: usize) -> Self {
        self.initial = bytes;
        self
    }

    /// Cap on chunk sizes, in bytes (at least the initial size, at most
    /// 1 MiB; default 1 MiB). Chunks double from the initial size up to it.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().max_chunk_size(64 << 10).build()?;
    /// # drop(mm);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn max_chunk_size(mut self, bytes: usize) -> Self {
        self.max = bytes;
        self
    }

    /// Builds the manager.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a chunk size is out of range.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let r = MemoryManager::builder().initial_chunk_size(100).build();
    /// assert!(matches!(r, Err(Error::InvalidConfig(_))));
    /// ```
    pub fn build(self) -> Result<MemoryManager<C>, Error>
    where
        H: FnOnce(&Leaks) + Send + 'static,
    {
        let config = self.chunk_config()?;
        let hook = self.on_leak.map(|h| Hook::Boxed(alloc::boxed::Box::new(h)));
        Ok(MemoryManager::with_config(
            config,
            self.budget,
            hook,
            self.name,
        ))
    }

    /// The chunk sizes, checked.
    pub(crate) const fn chunk_config(&self) -> Result<ChunkConfig, Error> {
        if self.initial < MIN_CHUNK || self.initial > SEGMENT {
            return Err(Error::InvalidConfig(
                "initial chunk size must be 4 KiB to 1 MiB",
            ));
        }
        if self.max < self.initial || self.max > SEGMENT {
            return Err(Error::InvalidConfig(
                "max chunk size must be at least the initial size and at most 1 MiB",
            ));
        }
        Ok(ChunkConfig {
            initial: self.initial,
            max: self.max,
        })
    }
}

impl<C: SizeClasses> Builder<C> {
    /// The budget, the name and the leak hook set.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) const fn parts(&self) -> (Option<usize>, Option<&'static str>, Option<LeakHook>) {
        (self.budget, self.name, self.on_leak)
    }
}
