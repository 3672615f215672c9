//! The unit tests' origin of time. The machines never read the clock (DESIGN.md §2): time
//! comes in as an argument, and the tests hand them offsets from this one instant, read
//! here and nowhere else in the crate.

use std::time::Instant;

/// Any instant will do: only offsets from it matter.
#[allow(clippy::disallowed_methods)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}
