//! The one error type of the crate.
#![deny(unsafe_code)]

/// Everything that can go wrong in a [`MemoryManager`](crate::MemoryManager)
/// call.
///
/// Every rejected call leaves the manager unchanged and usable.
///
/// # Examples
///
/// ```
/// use memory_mgr::{Error, MemoryManager};
///
/// let mm = MemoryManager::new();
/// let b = mm.alloc_block(24)?;
/// mm.free(b)?;
/// assert_eq!(mm.free(b), Err(Error::DoubleFree));
/// assert!(matches!(mm.alloc_block(usize::MAX), Err(Error::LayoutOverflow { .. })));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The block was already freed. Its slot may since have been handed out
    /// again; that newer allocation is left untouched.
    #[error(
        "double free: this block was already freed (its slot may since hold another allocation)"
    )]
    DoubleFree,
    /// The block or handle was made by another memory manager (perhaps one
    /// since dropped).
    #[error("foreign block: this block or handle was made by another memory manager")]
    ForeignBlock,
    /// A [`Handle`](crate::Handle) whose value was removed (its slot may
    /// since hold another value, which is left untouched).
    #[error("removed: this handle's value was removed (its slot may since hold another value)")]
    Removed,
    /// The same handle twice in a call that needs distinct ones
    /// ([`get_disjoint_mut`](crate::MemoryManager::get_disjoint_mut)).
    #[error("duplicate handle: the same handle was given twice where each must be distinct")]
    DuplicateHandle,
    /// A read or write through a block that has been freed.
    #[error("use after free: this block was freed before the access")]
    UseAfterFree,
    /// A free, read or write through a block, or a use of a
    /// [`Handle`](crate::Handle), that its manager's
    /// [`reset`](crate::MemoryManager::reset) freed: the handle is from
    /// before the reset. (Not a second free of the program's own: the reset
    /// freed every block and value at once.)
    #[error("freed by a reset: this block or handle's value was freed when its manager was reset")]
    FreedByReset,
    /// The system allocator refused the request.
    #[error("out of memory: the system allocator refused {size} bytes at alignment {align}")]
    OutOfMemory {
        /// Bytes asked of the system allocator.
        size: usize,
        /// Alignment asked of the system allocator.
        align: usize,
    },
    /// The requested size, rounded up to the alignment (or a slice length
    /// times its element size), does not fit in `isize::MAX` bytes.
    #[error("layout overflow: {size} bytes at alignment {align} exceed isize::MAX")]
    LayoutOverflow {
        /// The requested size in bytes (saturated at `usize::MAX`).
        size: usize,
        /// The requested alignment.
        align: usize,
    },
    /// The requested alignment is not a power of two.
    #[error("invalid alignment {align}: an alignment must be a power of two")]
    InvalidAlignment {
        /// The alignment that was asked for.
        align: usize,
    },
    /// A read or write that does not fit inside the block.
    #[error("out of bounds: {len} bytes at offset {offset} do not fit in a block of {size} bytes")]
    OutOfBounds {
        /// Offset of the access in the block.
        offset: usize,
        /// Length of the access in bytes.
        len: usize,
        /// Usable size of the block.
        size: usize,
    },
    /// Growing would take the bytes the manager holds from the system past
    /// the budget it was built with (see [`Builder::budget`](crate::Builder::budget)).
    /// Nothing was allocated; freeing or trimming makes room again.
    #[error(
        "budget exceeded{}: {} needed {requested} more bytes, with {reserved} of the budget of {budget} reserved",
        In(*manager),
        Request(*size)
    )]
    BudgetExceeded {
        /// The allocation that was refused, in bytes: the block size of its
        /// class, or the size of an allocation above the classes (0 if not
        /// known).
        size: usize,
        /// Bytes the manager needed from the system allocator for it (a
        /// chunk, or the allocation and its record).
        requested: usize,
        /// Bytes it already held (pools and system allocations).
        reserved: usize,
        /// The budget.
        budget: usize,
        /// The manager's name ([`Builder::name`](crate::Builder::name)), if
        /// it has one.
        manager: Option<&'static str>,
    },
    /// A size (at an alignment) that no size class serves: such requests go
    /// to the system allocator one by one, so there is nothing to reserve.
    #[error("not pooled: {size} bytes at alignment {align} are above every size class")]
    NotPooled {
        /// The size asked for.
        size: usize,
        /// The alignment asked for.
        align: usize,
    },
    /// A manager keeps a store per type of [`Handle`](crate::Handle)
    /// value, up to `max` types; a value of one more type was inserted.
    #[error("too many types: a manager stores values of at most {max} types behind handles")]
    TooManyTypes {
        /// The most types a manager stores.
        max: usize,
    },
    /// Bits given to [`handle_from_bits`](crate::MemoryManager::handle_from_bits)
    /// that name no value of the type asked for.
    #[error("not a handle: these bits name no live value of this type in this manager")]
    NotAHandle,
    /// A [`Builder`](crate::Builder) setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

impl Error {
    /// Names the refused allocation (`size` bytes) and the manager in a
    /// [`Error::BudgetExceeded`]; any other error is returned as it is.
    #[cold]
    pub(crate) fn refusing(self, size: usize, manager: Option<&'static str>) -> Error {
        match self {
            Error::BudgetExceeded {
                requested,
                reserved,
                budget,
                ..
            } => Error::BudgetExceeded {
                size,
                requested,
                reserved,
                budget,
                manager,
            },
            e => e,
        }
    }
}

/// " in manager `name`", or nothing.
struct In(Option<&'static str>);

impl core::fmt::Display for In {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(name) => write!(f, " in manager `{name}`"),
            None => Ok(()),
        }
    }
}

/// "a 64-byte allocation", or "an allocation" when the size is not known.
struct Request(usize);

impl core::fmt::Display for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => write!(f, "an allocation"),
            n => write!(f, "a {n}-byte allocation"),
        }
    }
}
