//! `SharedBuilder`, and `Builder::build_shared`: a shared manager's
//! configuration, made in a `const fn` for a `static`.

use core::fmt;

use crate::manager::Builder;
use crate::size_class::SizeClasses;
use crate::source;
use crate::stats::Leaks;
use crate::{DefaultClasses, Error};

use super::{Config, SharedManager};

/// Configures a [`SharedManager`], as a [`Builder`] does a `MemoryManager`
/// (class table, chunk sizes, byte budget, name), with a leak hook that is
/// a function, `fn(&Leaks)`: [`build_shared`](Self::build_shared) is a
/// `const fn`, so that the manager can be a `static`, and a `static` cannot
/// hold a closure's captures. [`SharedManager::builder`] makes one.
#[derive(Clone, Copy)]
pub struct SharedBuilder<C: SizeClasses = DefaultClasses> {
    inner: Builder<C>,
}

impl<C: SizeClasses> fmt::Debug for SharedBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedBuilder").field(&self.inner).finish()
    }
}

impl SharedBuilder {
    /// The default configuration, as [`Builder::new`]'s.
    #[must_use]
    pub const fn new() -> Self {
        SharedBuilder {
            inner: Builder::new(),
        }
    }
}

impl Default for SharedBuilder {
    fn default() -> Self {
        SharedBuilder::new()
    }
}

impl<C: SizeClasses> SharedBuilder<C> {
    /// Uses the class table `D`, as [`Builder::classes`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{FineClasses, SharedManager};
    /// static MM: SharedManager<FineClasses> =
    ///     SharedManager::builder().classes::<FineClasses>().build_shared();
    /// assert_eq!(MM.classes().len(), 32);
    /// ```
    #[must_use]
    pub const fn classes<D: SizeClasses>(self) -> SharedBuilder<D> {
        SharedBuilder {
            inner: self.inner.classes(),
        }
    }

    /// A function called when the manager is dropped with allocations
    /// still live, with what leaked (see [`Builder::on_leak`]). A function
    /// item or a closure that captures nothing; a closure that captures
    /// does not compile (a `static` manager cannot hold its captures).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Leaks, SharedManager};
    ///
    /// fn report(leaks: &Leaks) {
    ///     eprintln!("jobs: {} allocations leaked", leaks.total());
    /// }
    ///
    /// static JOBS: SharedManager = SharedManager::builder().on_leak(report).build_shared();
    ///
    /// let mm = SharedManager::builder().on_leak(|leaks| assert_eq!(leaks.total(), 1)).build_shared();
    /// let _forgotten = mm.alloc_block(16)?;
    /// drop(mm); // calls the closure
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    ///
    /// A closure that captures is refused ("closures can only be coerced to
    /// `fn` types if they do not capture any variables"):
    ///
    /// ```compile_fail
    /// let subsystem = String::from("audio");
    /// let mm = memory_mgr::SharedManager::builder()
    ///     .on_leak(move |leaks| eprintln!("{subsystem}: {} leaked", leaks.total()))
    ///     .build_shared();
    /// ```
    #[must_use]
    pub const fn on_leak(self, hook: fn(&Leaks)) -> Self {
        SharedBuilder {
            inner: self.inner.on_leak(hook),
        }
    }

    /// A cap on the bytes the manager holds from the system allocator, all
    /// its heaps together, as [`Builder::budget`].
    #[must_use]
    pub const fn budget(self, bytes: usize) -> Self {
        SharedBuilder {
            inner: self.inner.budget(bytes),
        }
    }

    /// A name for the manager, as [`Builder::name`].
    #[must_use]
    pub const fn name(self, name: &'static str) -> Self {
        SharedBuilder {
            inner: self.inner.name(name),
        }
    }

    /// Size of each pool's first chunk, as
    /// [`Builder::initial_chunk_size`].
    #[must_use]
    pub const fn initial_chunk_size(self, bytes: usize) -> Self {
        SharedBuilder {
            inner: self.inner.initial_chunk_size(bytes),
        }
    }

    /// Cap on chunk sizes, as [`Builder::max_chunk_size`].
    #[must_use]
    pub const fn max_chunk_size(self, bytes: usize) -> Self {
        SharedBuilder {
            inner: self.inner.max_chunk_size(bytes),
        }
    }

    /// Builds the [`SharedManager`]: a `const fn`, for a `static`.
    ///
    /// # Panics
    ///
    /// If the chunk sizes are out of range (see [`Builder::build`]'s
    /// errors) — in a `static`, a compile-time error;
    /// [`try_build_shared`](Self::try_build_shared) returns it instead.
    ///
    /// # Examples
    ///
    /// ```
    /// static JOBS: memory_mgr::SharedManager =
    ///     memory_mgr::SharedManager::builder().name("jobs").build_shared();
    /// assert_eq!(JOBS.name(), Some("jobs"));
    /// ```
    #[must_use]
    pub const fn build_shared(self) -> SharedManager<C> {
        self.inner.build_shared()
    }

    /// Builds the [`SharedManager`], or says why the configuration is
    /// wrong.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, SharedManager};
    /// let bad = SharedManager::builder().initial_chunk_size(100).try_build_shared();
    /// assert!(matches!(bad, Err(Error::InvalidConfig(_))));
    /// ```
    pub fn try_build_shared(self) -> Result<SharedManager<C>, Error> {
        self.inner.try_build_shared()
    }
}

impl<C: SizeClasses> Builder<C> {
    /// Builds a [`SharedManager`]: a `const fn`, for a `static`. (With a
    /// leak hook, [`SharedManager::builder`] is the builder to use: its
    /// [`on_leak`](SharedBuilder::on_leak) takes a function as it is. This
    /// one keeps the hook's own type, so a function must be given to it as
    /// `f as fn(&Leaks)`.)
    ///
    /// # Panics
    ///
    /// If the chunk sizes are out of range (see [`Builder::build`]'s
    /// errors) — in a `static`, a compile-time error;
    /// [`try_build_shared`](Self::try_build_shared) returns it instead.
    ///
    /// # Examples
    ///
    /// ```
    /// static JOBS: memory_mgr::SharedManager =
    ///     memory_mgr::MemoryManager::builder().name("jobs").build_shared();
    /// assert_eq!(JOBS.name(), Some("jobs"));
    /// ```
    #[must_use]
    pub const fn build_shared(self) -> SharedManager<C> {
        match self.shared_config() {
            Ok(config) => SharedManager::with_config(config),
            Err(_) => panic!("memory_mgr: chunk sizes out of range (see Builder::build)"),
        }
    }

    /// Builds a [`SharedManager`], or says why the configuration is wrong.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let bad = MemoryManager::builder().initial_chunk_size(100).try_build_shared();
    /// assert!(matches!(bad, Err(Error::InvalidConfig(_))));
    /// ```
    pub fn try_build_shared(self) -> Result<SharedManager<C>, Error> {
        self.shared_config().map(SharedManager::with_config)
    }

    const fn shared_config(&self) -> Result<Config, Error> {
        let chunks = match self.chunk_config() {
            Ok(c) => c,
            Err(e) => return Err(e),
        };
        let (budget, name, on_leak) = self.parts();
        Ok(Config {
            chunks,
            budget,
            name,
            on_leak,
            source: source::Source::Global,
            map: true,
        })
    }
}
